//! Where the agent is: the socket-path and profile rules, and the state
//! directory the pointer to a private runtime directory lives in. The agent
//! (where it listens) and `tapis-cred` (where it connects) both use these,
//! so they cannot disagree.
//!
//! Functions that read the environment say so; the rest take what they
//! need as arguments (the effective uid among them: this crate makes no
//! system calls of its own beyond file access).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming the socket, below `--socket` in precedence.
pub const SOCKET_ENV: &str = "TAPIS_AGENT_SOCK";

/// Environment variable naming the profile, below `--profile` in precedence.
pub const PROFILE_ENV: &str = "TAPIS_PROFILE";

/// The socket's file name in its runtime directory.
pub const SOCKET_NAME: &str = "agent.sock";

/// Longest profile name.
pub const MAX_PROFILE_NAME: usize = 32;

/// On a JupyterHub server, the state directory that survives its restarts
/// when the user has created it (relative to the home directory): DesignSafe's
/// JupyterHub keeps only `~/MyData` (the user's own storage), projects and
/// `~/Work` (docs/install.md, "DesignSafe JupyterHub"). `tapis-cred doctor`
/// names it.
pub const JUPYTERHUB_STATE_DIR: &str = "MyData/.tapis-agent";

/// An absolute directory from environment variable `var` (a relative one is
/// ignored, as the XDG base-directory specification requires; empty is unset).
pub fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The user's home directory (`$HOME`, else `/`).
pub fn home() -> PathBuf {
    env_dir("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// `~/MyData/.tapis-agent` on a JupyterHub server (`JUPYTERHUB_USER` set)
/// where that directory exists, else `$XDG_STATE_HOME/tapis-agent`, else
/// `~/.local/state/tapis-agent`. The directory is the user's opt-in: the
/// agent never creates it there, since who may read `~/MyData` is the
/// hub's to say. Reads the environment.
pub fn default_state_dir() -> PathBuf {
    if std::env::var_os("JUPYTERHUB_USER").is_some() {
        let kept = home().join(JUPYTERHUB_STATE_DIR);
        if kept.is_dir() {
            return kept;
        }
    }
    env_dir("XDG_STATE_HOME")
        .unwrap_or_else(|| home().join(".local/state"))
        .join("tapis-agent")
}

/// The kernel's host name, else `localhost`. Read once.
pub fn hostname() -> String {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
    .clone()
}

/// The socket: `flag` (`--socket`), else `env_sock` (`$TAPIS_AGENT_SOCK`),
/// else `agent.sock` in [`runtime_dir`]'s directory (the fixed one when
/// that is taken: the agent then makes a private one). Empty values count
/// as unset.
pub fn resolve_socket(
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
    runtime_dir(xdg_runtime_dir, uid).path().join(SOCKET_NAME)
}

/// Where the default socket's directory is, as far as can be told without
/// creating anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeDir {
    /// A directory to use (it may not exist yet).
    Found(PathBuf),
    /// The fixed directory ([`fixed_runtime_dir`]) is unusable (another
    /// user made it) and no pointer names a private one: one must be made
    /// ([`make_private_runtime_dir`]).
    Taken(PathBuf),
}

impl RuntimeDir {
    /// The directory found, or the fixed one that is taken.
    pub fn path(&self) -> &Path {
        match self {
            RuntimeDir::Found(p) | RuntimeDir::Taken(p) => p,
        }
    }
}

/// `$XDG_RUNTIME_DIR/tapis-agent` when `xdg_runtime_dir` is absolute;
/// else the fixed directory `/tmp/tapis-agent-$UID` when it is missing or
/// a private directory of `uid`; else the private directory of
/// unpredictable name that [`runtime_pointer`] names, when it is still
/// `uid`'s and private; else [`RuntimeDir::Taken`].
///
/// Any user can create `/tmp/tapis-agent-$UID` first (as a directory open
/// to all, or theirs), which must be refused; a job must run anyway. So,
/// as ssh-agent does, a directory of unpredictable name is used then, and
/// its path written to a file in the user's own state directory, where
/// clients look it up. A neighbour can make the agent slower to find (one
/// more file read), never stop it. Reads the environment (for the pointer).
pub fn runtime_dir(xdg_runtime_dir: Option<OsString>, uid: u32) -> RuntimeDir {
    match xdg_runtime_dir.map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => return RuntimeDir::Found(dir.join("tapis-agent")),
        _ => {}
    }
    let fixed = fixed_runtime_dir(uid);
    if private_or_missing(&fixed, uid) {
        return RuntimeDir::Found(fixed);
    }
    match read_pointer(&runtime_pointer(), uid) {
        Some(dir) => RuntimeDir::Found(dir),
        None => RuntimeDir::Taken(fixed),
    }
}

/// `/tmp/tapis-agent-$UID`: the socket's directory without `XDG_RUNTIME_DIR`.
pub fn fixed_runtime_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/tapis-agent-{uid}"))
}

/// `<default state dir>/runtime-dir.<host>`: the file naming the private
/// runtime directory on this host (the state directory may be shared by
/// every node of a cluster; `/tmp` is not). Reads the environment.
pub fn runtime_pointer() -> PathBuf {
    default_state_dir().join(format!("runtime-dir.{}", hostname()))
}

/// Whether `dir` is a directory (not a link) of `uid` closed to others.
pub fn is_private_dir(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
}

/// Whether the fixed runtime directory is there but unusable: another user
/// made it (or made it open to all).
pub fn is_taken(dir: &Path, uid: u32) -> bool {
    !private_or_missing(dir, uid)
}

fn private_or_missing(dir: &Path, uid: u32) -> bool {
    match std::fs::symlink_metadata(dir) {
        Err(e) => e.kind() == io::ErrorKind::NotFound,
        Ok(_) => is_private_dir(dir, uid),
    }
}

/// The directory named by the pointer file, when the file is `uid`'s and
/// private (not a link) and the directory too.
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
/// points [`runtime_pointer`] at it (the state directory is made 0700 if
/// missing, and must be private). `Err` says what failed.
pub fn make_private_runtime_dir(uid: u32) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fixed = fixed_runtime_dir(uid);
    let mut made = None;
    // Another user can only guess: a few tries are plenty.
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
        .and_then(|mut f| {
            writeln!(f, "{}", dir.display())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &pointer));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", pointer.display()));
    }
    Ok(dir)
}

/// 64 random bits from the kernel.
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

/// Whether `name` can name a profile (and hence a socket file).
pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROFILE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

/// What is wrong with profile name `name`, as a message.
pub fn bad_profile_name(name: &str) -> String {
    format!("profile name {name:?}: use at most {MAX_PROFILE_NAME} letters, digits, '-' or '_'")
}

/// The profile asked for: `flag` (`--profile`), else `env`
/// (`$TAPIS_PROFILE`; empty counts as unset). `Err` says what is wrong with
/// the name.
pub fn profile(flag: Option<&str>, env: Option<String>) -> Result<Option<String>, String> {
    let env = env.filter(|p| !p.is_empty());
    match flag.map(str::to_owned).or(env) {
        None => Ok(None),
        Some(name) if valid_profile_name(&name) => Ok(Some(name)),
        Some(name) => Err(bad_profile_name(&name)),
    }
}

/// The socket of profile `name`: `profile-NAME.sock` beside the default
/// socket.
pub fn profile_socket(default_socket: &Path, name: &str) -> PathBuf {
    default_socket.with_file_name(format!("profile-{name}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_env_beats_default() {
        let flag = Path::new("/x/flag.sock");
        let r = |flag, env: Option<&str>, xdg: Option<&str>| {
            resolve_socket(flag, env.map(Into::into), xdg.map(Into::into), 1)
        };
        assert_eq!(r(Some(flag), Some("/x/env.sock"), Some("/run")), flag);
        assert_eq!(
            r(None, Some("/x/env.sock"), Some("/run")),
            Path::new("/x/env.sock")
        );
        assert_eq!(
            r(None, Some(""), Some("/run")),
            Path::new("/run/tapis-agent/agent.sock")
        );
    }

    #[test]
    fn falls_back_to_tmp_with_uid() {
        // A uid no one here has: its fixed directory is missing.
        let uid = 4_000_000_123;
        let tmp = PathBuf::from(format!("/tmp/tapis-agent-{uid}/agent.sock"));
        assert_eq!(resolve_socket(None, None, None, uid), tmp);
        assert_eq!(
            resolve_socket(None, Some("".into()), Some("".into()), uid),
            tmp
        );
        assert_eq!(
            resolve_socket(None, None, Some("relative".into()), uid),
            tmp
        );
    }

    #[test]
    fn profiles_name_sockets_beside_the_default() {
        assert_eq!(
            profile_socket(Path::new("/run/user/1/tapis-agent/agent.sock"), "tacc"),
            Path::new("/run/user/1/tapis-agent/profile-tacc.sock")
        );
        assert_eq!(profile(Some("a"), Some("b".into())), Ok(Some("a".into())));
        assert_eq!(profile(None, Some("b".into())), Ok(Some("b".into())));
        assert_eq!(profile(None, Some(String::new())), Ok(None));
        assert!(profile(Some("../x"), None).is_err());
        assert!(!valid_profile_name(&"a".repeat(MAX_PROFILE_NAME + 1)));
    }

    #[test]
    fn pointer_is_read_only_when_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let uid = std::fs::metadata(dir.path()).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        });
        let uid = uid.unwrap();
        let target = dir.path().join("rt");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let pointer = dir.path().join("pointer");
        std::fs::write(&pointer, format!("{}\n", target.display())).unwrap();
        std::fs::set_permissions(&pointer, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_pointer(&pointer, uid), None, "readable by others");
        std::fs::set_permissions(&pointer, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_pointer(&pointer, uid), Some(target.clone()));
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(read_pointer(&pointer, uid), None, "open directory");
    }
}
