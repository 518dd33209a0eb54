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

/// `$XDG_RUNTIME_DIR/tapis-agent/agent.sock`, else `/tmp/tapis-agent-$UID/agent.sock`.
pub fn default_socket() -> PathBuf {
    let dir = match env_dir("XDG_RUNTIME_DIR") {
        Some(rt) => rt.join("tapis-agent"),
        None => PathBuf::from(format!("/tmp/tapis-agent-{}", crate::uid::euid())),
    };
    dir.join("agent.sock")
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
