//! Where the agent's socket is, and whether it is safe to talk to.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
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
        _ => PathBuf::from(format!("/tmp/tapis-agent-{uid}/agent.sock")),
    }
}

/// Refuses a socket someone else could have planted: passwords and tokens go
/// through it, and the `/tmp` fallback is a place where any user can create
/// `tapis-agent-<our uid>` first. The socket must be ours, and its directory
/// ours or root's and, unless ours, not writable by others (a sticky
/// directory like `/tmp` is fine: nobody else can swap our file there).
pub fn check_owner(path: &Path, uid: u32) -> Result<(), String> {
    let socket = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = match dir {
        Some(dir) => Some(std::fs::metadata(dir).map_err(|e| e.to_string())?),
        None => None,
    };
    judge_owner(uid, socket.uid(), dir.as_ref().map(|d| (d.uid(), d.mode())))
}

/// The ownership rule of [`check_owner`] on plain numbers.
fn judge_owner(uid: u32, socket_uid: u32, dir: Option<(u32, u32)>) -> Result<(), String> {
    if socket_uid != uid {
        return Err(format!(
            "the socket belongs to uid {socket_uid}, not to you (uid {uid})"
        ));
    }
    if let Some((dir_uid, mode)) = dir {
        if dir_uid != uid && dir_uid != 0 {
            return Err(format!(
                "its directory belongs to uid {dir_uid}, not to you (uid {uid})"
            ));
        }
        let sticky = mode & 0o1000 != 0;
        if dir_uid != uid && mode & 0o022 != 0 && !sticky {
            return Err("its directory is writable by other users".into());
        }
    }
    Ok(())
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
    fn ownership_rules() {
        assert!(judge_owner(1000, 1000, Some((1000, 0o700))).is_ok());
        assert!(judge_owner(1000, 1000, Some((0, 0o755))).is_ok());
        assert!(judge_owner(1000, 1000, Some((0, 0o1777))).is_ok());
        assert!(judge_owner(1000, 1000, Some((1000, 0o777))).is_ok());
        assert!(judge_owner(1000, 1000, None).is_ok());
        let planted = judge_owner(1000, 1001, Some((1001, 0o700))).unwrap_err();
        assert!(planted.contains("uid 1001"), "{planted}");
        assert!(judge_owner(1000, 1000, Some((1001, 0o700))).is_err());
        assert!(judge_owner(1000, 1000, Some((0, 0o777))).is_err());
    }

    #[test]
    fn checks_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(check_owner(&path, effective_uid()), Ok(()));
        assert!(check_owner(&path, effective_uid() + 1).is_err());
        assert!(check_owner(&dir.path().join("nope"), effective_uid()).is_err());
    }
}
