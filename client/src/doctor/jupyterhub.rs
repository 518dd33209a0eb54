//! On a JupyterHub server: whether the state directory (and with it the
//! login) survives the server's restart. DesignSafe's JupyterHub keeps only
//! `~/MyData` (the user's own storage), `~/MyProjects` (shared with each
//! project's members) and `~/Work` (TACC's $WORK); the rest of the
//! container, `~/.local` included, is new at each start.

use super::{Check, Name};
use std::path::{Path, PathBuf};

use tapis_agent_proto::paths::JUPYTERHUB_STATE_DIR;

/// The user's own directories the hub keeps across restarts.
const KEPT: [&str; 2] = ["MyData", "Work"];
/// Kept too, but readable by the members of each project.
const SHARED: &str = "MyProjects";

const NAME: Name = Name::Restarts;

/// The check, when this is a JupyterHub server (`JUPYTERHUB_USER` or
/// `JUPYTERHUB_API_URL` set, as JupyterHub's spawners set them); `None`
/// elsewhere.
pub fn check(state_dir: Option<&Path>) -> Option<Check> {
    let hub = ["JUPYTERHUB_USER", "JUPYTERHUB_API_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if !hub {
        return None;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute());
    Some(match (state_dir, home) {
        (Some(dir), Some(home)) => verdict(dir, &home),
        (None, _) => Check::skip(NAME, "unknown state directory"),
        (_, None) => Check::skip(NAME, "HOME is not set"),
    })
}

/// Whether `dir` is under `home`'s `top` directory, as written or once
/// symlinks are resolved (a hub may mount MyData through one).
fn under(dir: &Path, home: &Path, top: &str) -> bool {
    let base = home.join(top);
    if dir.starts_with(&base) {
        return true;
    }
    match (dir.canonicalize(), base.canonicalize()) {
        (Ok(d), Ok(b)) => d.starts_with(b),
        _ => false,
    }
}

fn verdict(dir: &Path, home: &Path) -> Check {
    let move_it = format!(
        "mkdir -m 700 ~/{JUPYTERHUB_STATE_DIR}: the agent then keeps its state there \
         (only you can read it: 0700, files 0600; Tapis Files serves MyData to your own \
         tokens, see docs/install.md); then stop this agent (kill the pid tapis-cred status \
         shows) and log in once more"
    );
    if KEPT.iter().any(|top| under(dir, home, top)) {
        return Check::pass(
            NAME,
            format!(
                "{} survives a restart of this JupyterHub server",
                dir.display()
            ),
        );
    }
    if under(dir, home, SHARED) {
        return Check::warn(
            NAME,
            format!(
                "{} survives a restart, but project directories are shared with the \
                 project's members",
                dir.display()
            ),
            move_it,
        );
    }
    Check::warn(
        NAME,
        format!(
            "{} is lost when this JupyterHub server restarts, and the login with it",
            dir.display()
        ),
        move_it,
    )
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn kept_shared_and_lost() {
        let home = Path::new("/home/jupyter");
        for kept in [
            "/home/jupyter/MyData/.tapis-agent",
            "/home/jupyter/Work/ls6/x",
        ] {
            assert_eq!(
                verdict(Path::new(kept), home).status,
                Status::Pass,
                "{kept}"
            );
        }
        let shared = verdict(Path::new("/home/jupyter/MyProjects/PRJ-1/.t"), home);
        assert_eq!(shared.status, Status::Warn);
        assert!(shared.detail.contains("shared"), "{}", shared.detail);
        for lost in [
            "/home/jupyter/.local/state/tapis-agent",
            "/home/jupyter/MyDataX/t",
            "/tmp/t",
        ] {
            let c = verdict(Path::new(lost), home);
            assert_eq!(c.status, Status::Warn, "{lost}");
            assert!(c.detail.contains("is lost"), "{}", c.detail);
            assert!(
                c.fix
                    .unwrap()
                    .contains("mkdir -m 700 ~/MyData/.tapis-agent")
            );
        }
    }
}
