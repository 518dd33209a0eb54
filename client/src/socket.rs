//! Where the agent's socket is, and whether it is safe to talk to.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// Environment variable naming the socket, below `--socket` in precedence.
pub const SOCKET_ENV: &str = "TAPIS_AGENT_SOCK";

/// The effective user id of this process.
#[allow(unsafe_code)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory
    // owned by Rust.
    unsafe { libc::geteuid() }
}

/// The socket path from the process environment: `--socket`, else
/// `$TAPIS_AGENT_SOCK`, else the default path.
pub fn from_env(flag: Option<&Path>) -> PathBuf {
    resolve(
        flag,
        std::env::var_os(SOCKET_ENV),
        std::env::var_os("XDG_RUNTIME_DIR"),
        effective_uid(),
    )
}

/// Environment variable naming the profile, below `--profile` in precedence.
pub const PROFILE_ENV: &str = "TAPIS_PROFILE";

/// The profile asked for: `--profile`, else `$TAPIS_PROFILE` (empty counts
/// as unset). `Err` says what is wrong with the name.
pub fn profile(flag: Option<&str>) -> Result<Option<String>, String> {
    let env = std::env::var(PROFILE_ENV).ok().filter(|p| !p.is_empty());
    let Some(name) = flag.map(str::to_owned).or(env) else {
        return Ok(None);
    };
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if valid {
        Ok(Some(name))
    } else {
        Err(format!(
            "profile name {name:?}: use at most 32 letters, digits, '-' or '_'"
        ))
    }
}

/// The socket of profile `name`: `profile-NAME.sock` beside the default
/// socket, the agent's own rule.
pub fn for_profile(socket: PathBuf, name: Option<&str>) -> PathBuf {
    match name {
        Some(name) => socket.with_file_name(format!("profile-{name}.sock")),
        None => socket,
    }
}

/// Precedence rules, separated from the environment so they can be tested.
/// Empty variables count as unset, and a relative `XDG_RUNTIME_DIR` is
/// ignored as the XDG base-directory specification requires.
pub fn resolve(
    flag: Option<&Path>,
    env_sock: Option<OsString>,
    xdg_runtime_dir: Option<OsString>,
    uid: u32,
) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(path) = env_sock.filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    match xdg_runtime_dir.map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("tapis-agent").join("agent.sock"),
        _ => fallback_runtime_dir(uid).join("agent.sock"),
    }
}

/// `/tmp/tapis-agent-$UID`: the socket's directory without `XDG_RUNTIME_DIR`.
pub fn fixed_runtime_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/tapis-agent-{uid}"))
}

/// The agent's rule (`daemon/src/paths.rs`, `fallback_runtime_dir`): the
/// fixed directory when it is missing or a private directory of `uid`;
/// else, since another user made it unusable, the private directory of
/// unpredictable name the agent wrote to the pointer file in the user's
/// state directory ([`runtime_pointer`]), when it is still `uid`'s and
/// private; else the fixed one (autostart then makes a private one:
/// [`make_private_runtime_dir`]).
pub fn fallback_runtime_dir(uid: u32) -> PathBuf {
    let fixed = fixed_runtime_dir(uid);
    if private_or_missing(&fixed, uid) {
        return fixed;
    }
    read_pointer(&runtime_pointer(), uid).unwrap_or(fixed)
}

/// `<default state dir>/runtime-dir.<host>`, as the agent names it.
pub fn runtime_pointer() -> PathBuf {
    let env_dir = |var| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let state = env_dir("XDG_STATE_HOME")
        .unwrap_or_else(|| {
            env_dir("HOME")
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".local/state")
        })
        .join("tapis-agent");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    state.join(format!("runtime-dir.{host}"))
}

/// Whether `dir` is a directory (not a link) of `uid` closed to others.
pub fn is_private_dir(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
}

fn private_or_missing(dir: &Path, uid: u32) -> bool {
    match std::fs::symlink_metadata(dir) {
        Err(e) => e.kind() == io::ErrorKind::NotFound,
        Ok(_) => is_private_dir(dir, uid),
    }
}

/// The directory named by the pointer file, when the file is `uid`'s and
/// private and the directory too.
fn read_pointer(pointer: &Path, uid: u32) -> Option<PathBuf> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(pointer)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    let dir = PathBuf::from(text.trim());
    (dir.is_absolute() && is_private_dir(&dir, uid)).then_some(dir)
}

/// Makes a private runtime directory of unpredictable name beside the
/// unusable fixed one (`/tmp/tapis-agent-$UID.XXXXXXXXXXXXXXXX`, 0700) and
/// points the pointer file at it, as the agent does, for autostart.
pub fn make_private_runtime_dir(uid: u32) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fixed = fixed_runtime_dir(uid);
    let mut made = None;
    for _ in 0..16 {
        let dir = PathBuf::from(format!("{}.{:016x}", fixed.display(), random_u64()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                made = Some(dir);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    let dir =
        made.ok_or_else(|| format!("cannot create a directory beside {}", fixed.display()))?;
    if !is_private_dir(&dir, uid) {
        return Err(format!("{} is not private", dir.display()));
    }
    let pointer = runtime_pointer();
    let state = pointer.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state)
        .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    if !is_private_dir(state, uid) {
        return Err(format!(
            "{} must be a directory of yours that only you can enter (chmod 700)",
            state.display()
        ));
    }
    let tmp = state.join(format!(".runtime-dir.{:016x}.tmp", random_u64()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| writeln!(f, "{}", dir.display()))
        .and_then(|()| std::fs::rename(&tmp, &pointer));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", pointer.display()));
    }
    Ok(dir)
}

/// 64 random bits from the kernel (the client has no random crate).
fn random_u64() -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        // Unpredictable enough to a neighbour only with urandom; the
        // directory is still created exclusively and checked.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_ne_bytes(buf)
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
    fn flag_beats_env_beats_default() {
        let flag = Path::new("/x/flag.sock");
        assert_eq!(
            resolve(
                Some(flag),
                Some("/x/env.sock".into()),
                Some("/run".into()),
                1
            ),
            flag
        );
        assert_eq!(
            resolve(None, Some("/x/env.sock".into()), Some("/run".into()), 1),
            Path::new("/x/env.sock")
        );
        assert_eq!(
            resolve(None, None, Some("/run/user/1000".into()), 1000),
            Path::new("/run/user/1000/tapis-agent/agent.sock")
        );
    }

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
    fn falls_back_to_tmp_with_uid() {
        let tmp = Path::new("/tmp/tapis-agent-1000/agent.sock");
        assert_eq!(resolve(None, None, None, 1000), tmp);
        assert_eq!(resolve(None, Some("".into()), Some("".into()), 1000), tmp);
        assert_eq!(resolve(None, None, Some("relative".into()), 1000), tmp);
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
