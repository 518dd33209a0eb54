//! `install-units` / `uninstall-units`: the systemd user units of
//! `systemd/`, written with this binary's path and the state directory.

use crate::config::effective::Effective;
use crate::{paths, store};
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The socket unit, as shipped.
pub const SOCKET_UNIT: &str = include_str!("../../../systemd/tapis-agent.socket");
/// The service unit, as shipped; [`render_service`] fills in the paths.
pub const SERVICE_UNIT: &str = include_str!("../../../systemd/tapis-agent.service");
/// File names of the units.
pub const SOCKET_NAME: &str = "tapis-agent.socket";
/// See [`SOCKET_NAME`].
pub const SERVICE_NAME: &str = "tapis-agent.service";

/// The binary path in the shipped service unit.
const SHIPPED_BIN: &str = "/usr/bin/tapis-agent";
/// The state directory in the shipped service unit.
const SHIPPED_STATE: &str = "%h/.local/state/tapis-agent";
/// The writable-paths line of the shipped service unit.
const STATE_WRITABLE: &str = "ReadWritePaths=-%h/.local/state/tapis-agent\n";

/// Options of `install-units` and `uninstall-units`.
#[derive(Debug, clap::Args)]
pub struct UnitsArgs {
    /// Per-user units in $XDG_CONFIG_HOME/systemd/user (the default and only kind)
    #[arg(long)]
    pub user: bool,
}

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub fn user_unit_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| paths::home().join(".config"))
        .join("systemd/user")
}

/// The service unit for `exe` and `state_dir`. A `token_dir` (where the
/// OpsUtils token file is written, atomically, so the whole directory) is
/// made writable too.
pub fn render_service(
    exe: &Path,
    state_dir: &Path,
    token_dir: Option<&Path>,
) -> Result<String, String> {
    let exe = unit_path(exe)?;
    let state = unit_path(state_dir)?;
    let mut writable = format!("ReadWritePaths=-{state}\n");
    if let Some(dir) = token_dir {
        writable.push_str(&format!(
            "# export_token_file is set in the config: its directory is writable.\n\
             ReadWritePaths=-{}\n",
            unit_path(dir)?
        ));
    }
    let unit = SERVICE_UNIT.replacen(STATE_WRITABLE, &writable, 1);
    Ok(unit
        .lines()
        .map(|line| match line.strip_prefix("ExecStart=") {
            Some(rest) => format!(
                "ExecStart={}",
                rest.replacen(SHIPPED_BIN, &exe, 1)
                    .replacen(SHIPPED_STATE, &state, 1)
            ),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n")
}

/// A path as a unit file needs it: absolute, `%` escaped. Paths that would
/// need quoting are refused rather than risk a unit that means something else.
fn unit_path(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", path.display()))?;
    if !path.is_absolute() {
        return Err(format!("{text} is not an absolute path"));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        return Err(format!(
            "{text} contains spaces, quotes or backslashes; copy systemd/{SERVICE_NAME} \
             from the source tree and edit the paths by hand"
        ));
    }
    Ok(text.replace('%', "%%"))
}

/// Writes both units into [`user_unit_dir`] and says how to enable them.
pub fn install(_args: &UnitsArgs, effective: &Effective) -> ExitCode {
    match try_install(effective) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapis-agent: install-units: {e}");
            ExitCode::FAILURE
        }
    }
}

fn try_install(effective: &Effective) -> Result<(), String> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| format!("cannot find this binary: {e}"))?;
    let state_dir = &effective.config.state_dir;
    let token_dir = effective
        .config
        .export_token_file
        .as_deref()
        .and_then(Path::parent);
    let service = render_service(&exe, state_dir, token_dir)?;
    // The unit makes only this directory writable; it must exist first.
    store::ensure_private_dir(state_dir)
        .map_err(|e| format!("state directory {}: {e}", state_dir.display()))?;
    let dir = user_unit_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, text) in [(SOCKET_NAME, SOCKET_UNIT), (SERVICE_NAME, service.as_str())] {
        let path = dir.join(name);
        store::write_atomic(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!(
        "\nThe agent runs {} with state in {}.",
        exe.display(),
        state_dir.display()
    );
    if let Some(dir) = token_dir {
        println!(
            "export_token_file is set: the service may also write to {}.",
            dir.display()
        );
    }
    println!(
        "Start it now and at every login:\n  \
         systemctl --user daemon-reload\n  \
         systemctl --user enable --now {SOCKET_NAME}"
    );
    Ok(())
}

/// Removes the units (and the enablement link) from [`user_unit_dir`].
pub fn uninstall(_args: &UnitsArgs) -> ExitCode {
    let dir = user_unit_dir();
    let files = [
        dir.join("sockets.target.wants").join(SOCKET_NAME),
        dir.join(SOCKET_NAME),
        dir.join(SERVICE_NAME),
    ];
    let mut removed = 0;
    for path in &files {
        match std::fs::remove_file(path) {
            Ok(()) => {
                println!("removed {}", path.display());
                removed += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!(
                    "tapis-agent: uninstall-units: cannot remove {}: {e}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if removed == 0 {
        println!("no tapis-agent units in {}", dir.display());
    } else {
        println!(
            "\nStop what still runs:\n  \
             systemctl --user stop {SOCKET_NAME} {SERVICE_NAME}\n  \
             systemctl --user daemon-reload"
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_gets_binary_and_state_paths() {
        let unit = render_service(
            Path::new("/opt/tapis 100%/bin/tapis-agent"),
            Path::new("/s"),
            None,
        );
        assert!(unit.unwrap_err().contains("spaces"));

        let unit = render_service(
            Path::new("/opt/t%/tapis-agent"),
            Path::new("/home/u/.local/state/tapis-agent"),
            Some(Path::new("/home/u")),
        )
        .unwrap();
        assert!(
            unit.contains(
                "\nExecStart=/opt/t%%/tapis-agent --state-dir /home/u/.local/state/tapis-agent\n"
            ),
            "{unit}"
        );
        assert!(unit.contains("\nReadWritePaths=-/home/u/.local/state/tapis-agent\n"));
        assert!(unit.contains("\nReadWritePaths=-/home/u\n"));
        assert!(!unit.contains(SHIPPED_BIN) && !unit.contains(SHIPPED_STATE));
        // Everything else is the shipped unit, line for line.
        let changed = SERVICE_UNIT
            .lines()
            .filter(|l| !unit.lines().any(|u| u == *l))
            .collect::<Vec<_>>();
        assert_eq!(changed.len(), 2, "{changed:?}");
    }

    #[test]
    fn shipped_units_have_what_the_renderer_replaces() {
        assert!(SERVICE_UNIT.contains(STATE_WRITABLE));
        assert!(SERVICE_UNIT.contains(&format!(
            "ExecStart={SHIPPED_BIN} --state-dir {SHIPPED_STATE}\n"
        )));
        assert!(SOCKET_UNIT.contains("ListenStream=%t/tapis-agent/agent.sock"));
    }

    #[test]
    fn relative_paths_are_refused() {
        assert!(render_service(Path::new("tapis-agent"), Path::new("/s"), None).is_err());
    }
}
