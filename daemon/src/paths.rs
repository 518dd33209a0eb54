//! Where things live: socket, state and config paths.

use std::path::{Path, PathBuf};

/// Longest socket path the kernel accepts (`sun_path` minus the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The user's home directory.
pub fn home() -> PathBuf {
    env_dir("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_RUNTIME_DIR/tapis-agent/agent.sock`, else `agent.sock` in the
/// fallback runtime directory ([`fallback_runtime_dir`]), which is created
/// when another user has made the fixed one unusable. `tapis-cred` applies
/// the same rule (`client/src/socket.rs`).
pub fn default_socket() -> PathBuf {
    let dir = match env_dir("XDG_RUNTIME_DIR") {
        Some(rt) => rt.join("tapis-agent"),
        None => fallback_runtime_dir(true).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot make a private runtime directory");
            fixed_runtime_dir()
        }),
    };
    dir.join("agent.sock")
}

/// `/tmp/tapis-agent-$UID`: where the socket goes without `XDG_RUNTIME_DIR`.
pub fn fixed_runtime_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/tapis-agent-{}", crate::uid::euid()))
}

/// The runtime directory without `XDG_RUNTIME_DIR`. Any user can create
/// `/tmp/tapis-agent-$UID` first (as a directory open to all, or theirs),
/// which the agent rightly refuses; a job must run anyway. So, as ssh-agent
/// does, the agent then uses a directory of unpredictable name,
/// `/tmp/tapis-agent-$UID.XXXXXXXXXXXXXXXX` (0700), and writes its path to
/// [`runtime_pointer`], a file in the user's own state directory where
/// clients look it up. A neighbour can make the agent slower to find (one
/// more file read), never stop it.
///
/// The fixed directory when it is missing or usable; else the directory
/// the pointer names if it is still ours and private; else, with `create`,
/// a new one (`Err` only when that fails); without, the fixed one.
pub fn fallback_runtime_dir(create: bool) -> std::io::Result<PathBuf> {
    let fixed = fixed_runtime_dir();
    if private_or_missing(&fixed) {
        return Ok(fixed);
    }
    let pointer = runtime_pointer();
    if let Some(dir) = read_pointer(&pointer) {
        return Ok(dir);
    }
    if !create {
        return Ok(fixed);
    }
    tracing::warn!(dir = %fixed.display(), "the runtime directory is unusable (another user made it?); using a private one");
    let dir = make_unpredictable_dir(&fixed)?;
    if let Some(parent) = pointer.parent() {
        crate::store::ensure_private_dir(parent)?;
    }
    crate::store::write_atomic(&pointer, format!("{}\n", dir.display()).as_bytes())?;
    Ok(dir)
}

/// `<default state dir>/runtime-dir.<host>`: the file naming the private
/// runtime directory on this host (the state directory may be shared by
/// every node of a cluster; `/tmp` is not).
pub fn runtime_pointer() -> PathBuf {
    default_state_dir().join(format!("runtime-dir.{}", crate::host::hostname()))
}

/// Whether `dir` is missing, or a directory (not a link) of ours closed to
/// others.
fn private_or_missing(dir: &Path) -> bool {
    match std::fs::symlink_metadata(dir) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(_) => crate::store::check_private_dir(dir).is_ok(),
    }
}

/// The directory the pointer names, if it is absolute, exists and is ours
/// and private.
fn read_pointer(pointer: &Path) -> Option<PathBuf> {
    let text = crate::store::read_private_text(pointer).ok()?;
    let dir = PathBuf::from(text.trim());
    (dir.is_absolute() && crate::store::check_private_dir(&dir).is_ok()).then_some(dir)
}

/// `BASE.XXXXXXXXXXXXXXXX`, created 0700 with a random name (`mkdtemp`).
fn make_unpredictable_dir(base: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut last = None;
    // Another user can only guess: a few tries are plenty.
    for _ in 0..16 {
        let dir = PathBuf::from(format!("{}.{:016x}", base.display(), rand::random::<u64>()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                crate::store::check_private_dir(&dir)?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into()))
}

/// On a JupyterHub server, the state directory that survives its restarts
/// when the user has created it (relative to the home directory): DesignSafe's
/// JupyterHub keeps only `~/MyData` (the user's own storage), projects and
/// `~/Work` (docs/install.md, "DesignSafe JupyterHub"). `tapis-cred doctor`
/// names it.
pub const JUPYTERHUB_STATE_DIR: &str = "MyData/.tapis-agent";

/// `~/MyData/.tapis-agent` on a JupyterHub server (`JUPYTERHUB_USER` set)
/// where that directory exists, else `$XDG_STATE_HOME/tapis-agent`, else
/// `~/.local/state/tapis-agent`. The directory is the user's opt-in: the
/// agent never creates it there, since who may read `~/MyData` is the
/// hub's to say.
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

/// `$XDG_CONFIG_HOME/tapis-agent/config.toml`, else `~/.config/tapis-agent/config.toml`.
pub fn default_config_file() -> PathBuf {
    env_dir("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("tapis-agent/config.toml")
}

/// Checks that a socket path fits in `sun_path`.
pub fn check_socket_path(path: &Path) -> std::io::Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "socket path {} is {len} bytes; the limit is {MAX_SOCKET_PATH}",
                path.display()
            ),
        ));
    }
    Ok(())
}
