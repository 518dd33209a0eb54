//! systemd integration: socket activation and service-manager notifications.
//!
//! Both are inert outside systemd: without `LISTEN_FDS` the caller binds its
//! own socket, and without `NOTIFY_SOCKET` notifications go nowhere.

use interprocess::local_socket::tokio::Listener;
use interprocess::os::unix::uds_local_socket::tokio::Listener as UdsListener;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A listening socket handed over by the service manager.
#[derive(Debug)]
pub struct Activated {
    /// The socket, ready to accept.
    pub listener: Listener,
    /// Its path, when it has one (not for abstract sockets).
    pub path: Option<PathBuf>,
}

/// Takes the socket systemd passed in (`LISTEN_FDS`, `LISTEN_PID`), if any.
///
/// Call it once, inside a tokio runtime. Exactly one descriptor is accepted,
/// and it must be a listening Unix stream socket. The socket file belongs to
/// systemd: unlike a socket from [`crate::listener::bind`], dropping the
/// listener leaves it in place.
pub fn take_listener() -> io::Result<Option<Activated>> {
    let mut fds = sd_notify::listen_fds()?;
    let count = fds.len();
    let Some(fd) = fds.next() else {
        return Ok(None);
    };
    if count != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "systemd passed {count} sockets; tapis-agent.socket must listen on exactly one"
            ),
        ));
    }
    let fd = adopt(fd);
    check_listening_unix_stream(fd.as_fd())?;
    let std_listener = UnixListener::from(fd);
    let path = std_listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(PathBuf::from));
    let listener = UdsListener::try_from(OwnedFd::from(std_listener))?;
    Ok(Some(Activated {
        listener: Listener::from(listener),
        path,
    }))
}

/// The socket systemd passed in, else a fresh one bound at `socket` with
/// [`crate::listener::bind`]; plus where it listens, for logs and `STATUS=`.
pub fn listen_or_bind(socket: &Path) -> io::Result<(Listener, String)> {
    if let Some(activated) = take_listener()? {
        let place = match &activated.path {
            Some(path) => format!("{} (from systemd)", path.display()),
            None => "a socket from systemd".to_owned(),
        };
        return Ok((activated.listener, place));
    }
    let listener = crate::listener::bind(socket).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", socket.display()),
        )
    })?;
    Ok((listener, socket.display().to_string()))
}

/// Takes ownership of an inherited descriptor.
#[allow(unsafe_code)]
fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` comes from `sd_notify::listen_fds`, which has just set
    // FD_CLOEXEC on it and so proved it open. It was inherited from the
    // service manager for this process and nothing else in this process owns
    // it: `take_listener` is its only reader and is called once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Refuses anything but a listening `AF_UNIX` `SOCK_STREAM` socket: a
/// misconfigured unit (`ListenDatagram=`, a TCP port) fails at start with a
/// clear message instead of at the first connection.
fn check_listening_unix_stream(fd: BorrowedFd<'_>) -> io::Result<()> {
    let wrong = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the socket systemd passed {what}; use ListenStream= with a path"),
        )
    };
    let domain = socket_option(fd, libc::SO_DOMAIN)?;
    if domain != libc::AF_UNIX {
        return Err(wrong(format!("is not a Unix socket (family {domain})")));
    }
    if socket_option(fd, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Err(wrong("is not a stream socket".into()));
    }
    if socket_option(fd, libc::SO_ACCEPTCONN)? == 0 {
        return Err(wrong("is not listening".into()));
    }
    Ok(())
}

/// Reads an integer `SOL_SOCKET` option.
#[allow(unsafe_code)]
fn socket_option(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live, writable locals; `len` holds the
    // exact size of `value`, so the kernel writes within it. The descriptor
    // is borrowed, hence open for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Tells systemd the agent is ready (`READY=1`) and what it is doing.
pub fn notify_ready(status: &str) {
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Tells systemd the agent is shutting down (`STOPPING=1`).
pub fn notify_stopping() {
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("shutting down"),
    ]);
}

/// Pings the watchdog (`WATCHDOG=1`) at half the interval systemd asked for
/// (`WATCHDOG_USEC`). Runs until dropped; never completes when no watchdog
/// is configured. The pings come from the agent's runtime, so a wedged
/// runtime stops them and systemd restarts the agent.
pub async fn watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return std::future::pending().await;
    };
    let period = (interval / 2).max(Duration::from_millis(10));
    tracing::debug!(?period, "pinging the systemd watchdog");
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn only_listening_unix_stream_sockets_pass() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("s")).unwrap();
        assert!(check_listening_unix_stream(listener.as_fd()).is_ok());

        let dgram = UnixDatagram::bind(dir.path().join("d")).unwrap();
        let err = check_listening_unix_stream(dgram.as_fd()).unwrap_err();
        assert!(err.to_string().contains("not a stream socket"), "{err}");

        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = check_listening_unix_stream(tcp.as_fd()).unwrap_err();
        assert!(err.to_string().contains("not a Unix socket"), "{err}");

        let (stream, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let err = check_listening_unix_stream(stream.as_fd()).unwrap_err();
        assert!(err.to_string().contains("not listening"), "{err}");

        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(check_listening_unix_stream(file.as_fd()).is_err());
    }
}
