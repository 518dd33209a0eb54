//! Where things live: socket, state and config paths.

use std::path::{Path, PathBuf};

/// Longest socket path the kernel accepts (`sun_path` minus the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

use tapis_agent_proto::paths::{self as rule, RuntimeDir};
pub use tapis_agent_proto::paths::{
    JUPYTERHUB_STATE_DIR, SOCKET_ENV, default_state_dir, env_dir, home, runtime_pointer,
};

/// The default socket, by the rule `tapis-cred` uses too
/// ([`tapis_agent_proto::paths::runtime_dir`]):
/// `$XDG_RUNTIME_DIR/tapis-agent/agent.sock`, else `agent.sock` in the
/// fallback runtime directory ([`fallback_runtime_dir`]), which is created
/// when another user has made the fixed one unusable.
pub fn default_socket() -> PathBuf {
    let dir = match env_dir("XDG_RUNTIME_DIR") {
        Some(rt) => rt.join("tapis-agent"),
        None => fallback_runtime_dir(true).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot make a private runtime directory");
            rule::fixed_runtime_dir(crate::uid::euid())
        }),
    };
    dir.join(rule::SOCKET_NAME)
}

/// The runtime directory without `XDG_RUNTIME_DIR`
/// ([`tapis_agent_proto::paths::runtime_dir`] says why and how): the
/// fixed `/tmp/tapis-agent-$UID` when it is missing or usable; else the
/// private directory the pointer names; else, with `create`, a new private
/// one the pointer then names (`Err` only when that fails); without, the
/// fixed one.
pub fn fallback_runtime_dir(create: bool) -> std::io::Result<PathBuf> {
    let uid = crate::uid::euid();
    match rule::runtime_dir(None, uid) {
        RuntimeDir::Found(dir) => Ok(dir),
        RuntimeDir::Taken(fixed) if !create => Ok(fixed),
        RuntimeDir::Taken(fixed) => {
            tracing::warn!(dir = %fixed.display(), "the runtime directory is unusable (another user made it?); using a private one");
            rule::make_private_runtime_dir(uid).map_err(std::io::Error::other)
        }
    }
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
