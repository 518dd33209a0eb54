//! Checks of files and directories: who owns them and who else may read them.

use super::{Check, Name};
use crate::time;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use tapis_agent_proto::tokenfile::TokenFile;

/// The socket's directory: ours and 0700 (or a root-owned sticky directory
/// such as `/tmp` when a socket was placed there by hand), and the socket ours.
pub fn socket_dir(socket: &Path, uid: u32) -> Check {
    const NAME: Name = Name::SocketDir;
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Check::pass(NAME, format!("{} (current directory)", socket.display()));
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{}: {e}", dir.display()),
                "the agent creates it when it starts: tapis-agent (or: systemctl --user start tapis-agent.socket)",
            );
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    let shared_sticky = meta.uid() == 0 && mode & 0o1000 != 0;
    if meta.uid() != uid && !shared_sticky {
        return Check::fail(
            NAME,
            format!(
                "{} belongs to uid {}, not to you (uid {uid})",
                dir.display(),
                meta.uid()
            ),
            format!(
                "remove it (someone may have planted it), or pass --socket with a path of your own: rm -r {}",
                dir.display()
            ),
        );
    }
    if !shared_sticky && mode & 0o077 != 0 {
        return Check::fail(
            NAME,
            format!("{} has mode {mode:04o}, expected 0700", dir.display()),
            format!("chmod 700 {}", dir.display()),
        );
    }
    if let Ok(sock) = std::fs::metadata(socket)
        && sock.uid() != uid
    {
        return Check::fail(
            NAME,
            format!(
                "{} belongs to uid {}, not to you",
                socket.display(),
                sock.uid()
            ),
            format!("rm {}  and start your own agent", socket.display()),
        );
    }
    Check::pass(NAME, format!("{} is yours, mode {mode:04o}", dir.display()))
}

/// The state directory: ours, 0700, and every file in it 0600.
pub fn state_dir(dir: &Path, uid: u32) -> Check {
    const NAME: Name = Name::StateDir;
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::warn(
                NAME,
                format!("{} does not exist yet", dir.display()),
                "the agent creates it when it starts",
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{}: {e}", dir.display()),
                format!("ls -ld {}", dir.display()),
            );
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() != uid {
        return Check::fail(
            NAME,
            format!(
                "{} belongs to uid {}, not to you",
                dir.display(),
                meta.uid()
            ),
            "use a state directory of your own: --state-dir or state_dir in the config",
        );
    }
    if mode & 0o077 != 0 {
        return Check::fail(
            NAME,
            format!("{} has mode {mode:04o}, expected 0700", dir.display()),
            format!("chmod 700 {}", dir.display()),
        );
    }
    let open: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let m = entry.metadata().ok()?;
            (m.is_file() && m.permissions().mode() & 0o077 != 0)
                .then(|| entry.path().display().to_string())
        })
        .collect();
    if !open.is_empty() {
        return Check::fail(
            NAME,
            format!("readable by others: {}", open.join(", ")),
            format!("chmod 600 {}", open.join(" ")),
        );
    }
    Check::pass(NAME, format!("{} is yours, mode {mode:04o}", dir.display()))
}

/// The exported OpsUtils token file: present, 0600, not expired, and no
/// older than the agent's token (`agent_expires_at`) by more than a minute.
/// `log` says where the agent's log is.
pub fn token_file(path: &Path, now: i64, agent_expires_at: Option<i64>, log: &str) -> Check {
    const NAME: Name = Name::TokenFile;
    let fix = format!(
        "tapis-cred export-token-file   (the agent rewrites it after every refresh; \
         if it stays stale, see its log: {log})"
    );
    let fix = fix.as_str();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Check::fail(NAME, format!("{}: {e}", path.display()), fix),
    };
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        return Check::fail(
            NAME,
            format!(
                "{} has mode {:04o}: others can read the token",
                path.display(),
                meta.permissions().mode() & 0o7777
            ),
            format!("chmod 600 {}", path.display()),
        );
    }
    let expires_at = match TokenFile::parse(&text).map(|file| file.stated_expiry()) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Check::warn(
                NAME,
                format!("{} states no readable expires_at", path.display()),
                fix,
            );
        }
        Err(e) => return Check::fail(NAME, format!("{}: {e}", path.display()), fix),
    };
    if expires_at <= now {
        let ago = time::span(now.abs_diff(expires_at));
        return Check::fail(NAME, format!("{} expired {ago} ago", path.display()), fix);
    }
    if let Some(agent) = agent_expires_at
        && expires_at + 60 < agent
    {
        return Check::warn(
            NAME,
            format!(
                "{} holds an older token (valid until {}) than the agent's (until {})",
                path.display(),
                time::human(expires_at),
                time::human(agent)
            ),
            fix,
        );
    }
    Check::pass(
        NAME,
        format!(
            "{} valid until {} ({} left)",
            path.display(),
            time::human(expires_at),
            time::span(expires_at.abs_diff(now))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;
    use crate::socket::effective_uid;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn socket_dir_wants_0700() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let sock = run.join("agent.sock");
        let uid = effective_uid();
        assert_eq!(socket_dir(&sock, uid).status, Status::Fail);
        std::fs::create_dir(&run).unwrap();
        chmod(&run, 0o755);
        let c = socket_dir(&sock, uid);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(
            c.fix.as_deref(),
            Some(&*format!("chmod 700 {}", run.display()))
        );
        chmod(&run, 0o700);
        assert_eq!(socket_dir(&sock, uid).status, Status::Pass);
        assert_eq!(socket_dir(&sock, uid + 1).status, Status::Fail);
    }

    #[test]
    fn state_dir_files_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let uid = effective_uid();
        chmod(dir.path(), 0o700);
        let f = dir.path().join("tokens.json");
        std::fs::write(&f, "{}").unwrap();
        chmod(&f, 0o644);
        let c = state_dir(dir.path(), uid);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("tokens.json"), "{}", c.detail);
        chmod(&f, 0o600);
        assert_eq!(state_dir(dir.path(), uid).status, Status::Pass);
        assert_eq!(state_dir(&dir.path().join("no"), uid).status, Status::Warn);
    }

    #[test]
    fn token_file_freshness() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.json");
        let now = 1_795_456_800;
        assert_eq!(token_file(&f, now, None, "agent.log").status, Status::Fail);
        std::fs::write(
            &f,
            r#"{"access_token": "a.b.c", "expires_at": "2026-11-23T19:00:00+00:00"}"#,
        )
        .unwrap();
        chmod(&f, 0o600);
        assert_eq!(
            token_file(&f, now, Some(now + 3600), "agent.log").status,
            Status::Pass
        );
        assert_eq!(
            token_file(&f, now, Some(now + 7200), "agent.log").status,
            Status::Warn
        );
        let c = token_file(&f, now + 7200, None, "agent.log");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("expired 1 h ago"), "{}", c.detail);
        assert!(!c.detail.contains("a.b.c"));
        chmod(&f, 0o644);
        assert_eq!(token_file(&f, now, None, "agent.log").status, Status::Fail);
    }
}
