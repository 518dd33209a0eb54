//! Where the agent's socket is, and whether it is safe to talk to.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use tapis_agent_proto::paths;
pub use tapis_agent_proto::paths::{PROFILE_ENV, SOCKET_ENV};

/// The effective user id of this process.
#[allow(unsafe_code)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory
    // owned by Rust.
    unsafe { libc::geteuid() }
}

/// The socket path from the process environment: `--socket`, else
/// `$TAPIS_AGENT_SOCK`, else the default path (the agent's own rule,
/// [`paths::resolve_socket`]).
pub fn from_env(flag: Option<&Path>) -> PathBuf {
    paths::resolve_socket(
        flag,
        std::env::var_os(SOCKET_ENV),
        std::env::var_os("XDG_RUNTIME_DIR"),
        effective_uid(),
    )
}

/// The profile asked for: `--profile`, else `$TAPIS_PROFILE` (empty counts
/// as unset). `Err` says what is wrong with the name.
pub fn profile(flag: Option<&str>) -> Result<Option<String>, String> {
    paths::profile(flag, std::env::var(PROFILE_ENV).ok())
}

/// The socket of profile `name` (the agent's rule: [`paths::profile_socket`]).
pub fn for_profile(socket: PathBuf, name: Option<&str>) -> PathBuf {
    match name {
        Some(name) => paths::profile_socket(&socket, name),
        None => socket,
    }
}

/// The uid of the process at the other end of a connected Unix socket, as
/// the kernel recorded it when the agent created its listening socket
/// (`SO_PEERCRED`). Unlike the socket file's owner, this cannot be swapped
/// between connecting and sending: it belongs to the connection.
#[allow(unsafe_code)]
pub fn peer_uid(socket: BorrowedFd<'_>) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a local of
    // exactly that size, and `socket` is an open descriptor for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Refuses an agent run by anyone but us: passwords and tokens go through
/// the connection, and the `/tmp` fallback is a place where any user can
/// create `tapis-agent-<our uid>` first. Checked on the connection itself,
/// before the first frame is written.
pub fn check_peer(socket: BorrowedFd<'_>, uid: u32) -> Result<(), String> {
    let peer = peer_uid(socket).map_err(|e| format!("cannot tell who runs it: {e}"))?;
    if peer == uid {
        Ok(())
    } else {
        Err(format!(
            "the process listening there runs as uid {peer}, not as you (uid {uid})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_socket_is_beside_the_default_one() {
        let base = PathBuf::from("/run/user/1/tapis-agent/agent.sock");
        assert_eq!(
            for_profile(base.clone(), Some("tacc")),
            Path::new("/run/user/1/tapis-agent/profile-tacc.sock")
        );
        assert_eq!(for_profile(base.clone(), None), base);
        assert!(profile(Some("../x")).is_err());
        assert_eq!(profile(Some("tacc")), Ok(Some("tacc".into())));
    }

    #[test]
    fn peer_is_the_listening_process() {
        use std::os::fd::AsFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let me = effective_uid();
        assert_eq!(peer_uid(stream.as_fd()).unwrap(), me);
        assert_eq!(check_peer(stream.as_fd(), me), Ok(()));
        let e = check_peer(stream.as_fd(), me + 1).unwrap_err();
        assert!(e.contains(&format!("runs as uid {me}")), "{e}");
    }
}
