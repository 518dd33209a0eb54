//! Checks that ask other programs: `tapis-agent config show` (the one parser
//! of the config file) and `systemctl --user`.

use super::{Check, Name};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a helper program.
const HELPER_TIMEOUT: Duration = Duration::from_secs(5);

/// The `tapis-agent` next to this executable, else the one on `PATH`.
fn agent_binary() -> Option<PathBuf> {
    let sibling = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("tapis-agent"))
        .filter(|p| p.is_file());
    sibling.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join("tapis-agent"))
            .find(|p| p.is_file())
    })
}

/// Runs `cmd`, killing it after [`HELPER_TIMEOUT`]: exit success, stdout, stderr.
fn run(mut cmd: Command) -> std::io::Result<(bool, String, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)?;
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err)?;
    }
    Ok((status.success(), out, err))
}

/// Whether the config file parses, as the agent reads it; on success also
/// the agent's effective settings (`config show --json`) of `profile`.
/// `file` is the file a running agent reported; else the default applies.
pub fn config(file: Option<&Path>, profile: Option<&str>) -> (Check, Option<serde_json::Value>) {
    const NAME: Name = Name::Config;
    let Some(agent) = agent_binary() else {
        return (
            Check::fail(
                NAME,
                "tapis-agent is neither next to tapis-cred nor on PATH",
                "install tapis-agent (cargo install --path daemon) next to tapis-cred",
            ),
            None,
        );
    };
    let mut cmd = Command::new(&agent);
    cmd.args(["config", "show", "--json"]);
    if let Some(file) = file {
        cmd.arg("--config").arg(file);
    }
    if let Some(profile) = profile {
        cmd.args(["--profile", profile]);
    }
    let (ok, out, err) = match run(cmd) {
        Ok(r) => r,
        Err(e) => {
            return (
                Check::fail(
                    NAME,
                    format!("cannot run {} config show: {e}", agent.display()),
                    "reinstall tapis-agent",
                ),
                None,
            );
        }
    };
    let doc = serde_json::from_str::<serde_json::Value>(&out).ok();
    match doc {
        Some(doc) if ok => {
            let file = doc["config_file"].as_str().unwrap_or("?").to_owned();
            let detail = if doc["config_file_found"] == true {
                format!("{file} parses")
            } else {
                format!("{file} does not exist: defaults apply")
            };
            let check = if doc["values"]["allow_insecure_http"]["value"] == true {
                let url = doc["values"]["base_url"]["value"].as_str().unwrap_or("?");
                Check::warn(
                    NAME,
                    format!(
                        "{detail}, with allow_insecure_http = true: a plain http:// base_url \
                         to another host is accepted, and the password and tokens would cross \
                         the network in clear (base_url is {url})"
                    ),
                    "use an https:// base_url and remove allow_insecure_http from the config file",
                )
            } else {
                Check::pass(NAME, detail)
            };
            (check, Some(doc))
        }
        _ => {
            let why = err.trim().trim_start_matches("tapis-agent: ");
            // A file others could write is refused with its own fix.
            let (why, fix) = why.split_once("; fix: ").unwrap_or((
                why,
                "edit the file at the line named; `tapis-agent config show` lists the keys \
                 (docs/configuration.md documents them)",
            ));
            (Check::fail(NAME, why, fix), None)
        }
    }
}

/// The systemd user units, when systemd runs.
pub fn systemd() -> Check {
    const NAME: Name = Name::Systemd;
    if !Path::new("/run/systemd/system").is_dir() {
        return Check::skip(NAME, "systemd is not running here");
    }
    let query = |verb: &str, unit: &str| {
        let mut cmd = Command::new("systemctl");
        cmd.args(["--user", verb, unit]);
        run(cmd).map(|(_, out, err)| (out.trim().to_owned(), err.trim().to_owned()))
    };
    let (socket, err) = match query("is-enabled", "tapis-agent.socket") {
        Ok(r) => r,
        Err(e) => return Check::skip(NAME, format!("systemctl --user: {e}")),
    };
    if err.contains("connect to bus") || err.contains("Failed to connect") {
        return Check::skip(NAME, "no systemd user instance for this login");
    }
    let (service, _) = query("is-enabled", "tapis-agent.service").unwrap_or_default();
    let (active, _) = query("is-active", "tapis-agent.socket").unwrap_or_default();
    verdict(&socket, &service, &active)
}

/// The systemd check from `systemctl --user is-enabled` of the socket and
/// service units and `is-active` of the socket unit.
fn verdict(socket: &str, service: &str, active: &str) -> Check {
    const NAME: Name = Name::Systemd;
    const INSTALL: &str =
        "tapis-agent install-units && systemctl --user enable --now tapis-agent.socket";
    let installed = |state: &str| !state.is_empty() && state != "not-found";
    if !installed(socket) && !installed(service) {
        return Check::warn(NAME, "tapis-agent units are not installed", INSTALL);
    }
    if socket == "enabled" || service == "enabled" {
        Check::pass(
            NAME,
            format!("tapis-agent.socket {socket} ({active}), tapis-agent.service {service}"),
        )
    } else {
        Check::warn(
            NAME,
            format!("tapis-agent.socket is {socket}, tapis-agent.service is {service}"),
            "systemctl --user enable --now tapis-agent.socket",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn systemd_verdicts() {
        assert_eq!(verdict("", "", "").status, Status::Warn);
        assert_eq!(
            verdict("not-found", "not-found", "inactive").status,
            Status::Warn
        );
        let c = verdict("disabled", "static", "inactive");
        assert_eq!(c.status, Status::Warn);
        assert_eq!(
            c.fix.as_deref(),
            Some("systemctl --user enable --now tapis-agent.socket")
        );
        let c = verdict("enabled", "static", "active");
        assert_eq!(c.status, Status::Pass);
        assert_eq!(
            c.detail,
            "tapis-agent.socket enabled (active), tapis-agent.service static"
        );
    }
}
