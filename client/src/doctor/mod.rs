//! `tapis-cred doctor`: checks the setup in the order things depend on each
//! other, and says how to fix each problem found.

mod files;
mod host;
mod jupyterhub;

use crate::conn::{Agent, Endpoint};
use crate::exit::Failure;
use crate::exit::SUCCESS;
use crate::render::{self, Rendered};
use crate::socket::effective_uid;
use crate::spinner::{Progress, Spinner};
use crate::time;
use crate::ui::Ui;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tapis_agent_proto::{
    AgentSettings, ErrorKind, LoginState, PROTOCOL_VERSION, Pong, Request, Response,
};

/// Latency above which Tapis counts as slow.
const SLOW_MS: u64 = 2000;

/// A check's name: stable, scripts may match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// `config`
    Config,
    /// `socket dir`
    SocketDir,
    /// `agent`
    Agent,
    /// `login`
    Login,
    /// `tapis`
    Tapis,
    /// `state dir`
    StateDir,
    /// `restarts`
    Restarts,
    /// `locks`
    Locks,
    /// `systemd`
    Systemd,
    /// `token file`
    TokenFile,
}

impl Name {
    /// Every check, in the order they run (for the schema).
    #[cfg(test)]
    pub const ALL: [Name; 10] = [
        Name::Config,
        Name::SocketDir,
        Name::Agent,
        Name::Login,
        Name::Tapis,
        Name::StateDir,
        Name::Restarts,
        Name::Locks,
        Name::Systemd,
        Name::TokenFile,
    ];

    /// The name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Config => "config",
            Name::SocketDir => "socket dir",
            Name::Agent => "agent",
            Name::Login => "login",
            Name::Tapis => "tapis",
            Name::StateDir => "state dir",
            Name::Restarts => "restarts",
            Name::Locks => "locks",
            Name::Systemd => "systemd",
            Name::TokenFile => "token file",
        }
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
impl schemars::JsonSchema for Name {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Name".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"enum": Name::ALL.map(Name::as_str)})
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(inline))]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but deserves a look.
    Warn,
    /// Broken; the fix says what to do.
    Fail,
    /// Does not apply here, or cannot be checked because an earlier check failed.
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(inline))]
pub struct Check {
    /// Short name, stable (scripts may match on it).
    pub name: Name,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it, for warnings and failures.
    pub fix: Option<String>,
}

impl Check {
    fn new(name: Name, status: Status, detail: String, fix: Option<String>) -> Self {
        Self {
            name,
            status,
            detail,
            fix,
        }
    }
    fn pass(name: Name, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Pass, detail.into(), None)
    }
    fn warn(name: Name, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail.into(), Some(fix.into()))
    }
    fn fail(name: Name, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, detail.into(), Some(fix.into()))
    }
    fn skip(name: Name, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Skip, detail.into(), None)
    }
}

/// Runs every check of the agent at `endpoint` (serving `profile`, when
/// one was asked for) and renders the report. Exit 1 when any check failed.
pub fn run(endpoint: &Endpoint, profile: Option<&str>) -> Rendered {
    let now = time::now();
    let uid = effective_uid();
    let mut checks = Vec::new();

    // The agent is asked first (and reported third) so that the config
    // check reads the file the agent actually uses.
    // Agent::connect, not Endpoint::connect: the doctor looks and changes
    // nothing, so it must not start an agent either.
    let mut connected = Agent::connect(&endpoint.path, endpoint.timeout, endpoint.ui);
    let settings = match &mut connected {
        Ok(a) => match a.call(&Request::Settings) {
            Ok(Response::Settings(s)) => Some(s),
            _ => None,
        },
        Err(_) => None,
    };
    let agent_config = settings.as_ref().and_then(|s| s.config_file.as_deref());
    let (config_check, effective) = host::config(agent_config.map(Path::new), profile);
    checks.push(config_check);
    checks.push(files::socket_dir(&endpoint.path, uid));
    let mut agent = agent_check(endpoint, connected, &mut checks);
    let pid = agent.as_mut().and_then(|a| match a.call(&Request::Status) {
        Ok(Response::Status(info)) => Some(info.pid),
        _ => None,
    });
    let log = agent_log(
        pid,
        settings.as_ref().map(|s| Path::new(&s.state_dir)),
        crate::autostart::facts(&endpoint.path).socket_unit_installed,
    );
    let expires_at = match agent.as_mut() {
        Some(a) => login_check(a, settings.as_ref(), now, &log, &mut checks),
        None => {
            checks.push(Check::skip(Name::Login, "the agent is not reachable"));
            None
        }
    };
    checks.push(match agent.as_mut() {
        Some(a) => tapis_check(a, endpoint.ui, &log),
        None => Check::skip(Name::Tapis, "the agent is not reachable"),
    });

    // The agent's own view of its paths wins over `config show`, which sees
    // this shell's environment rather than the agent's.
    let from_config = |key: &str| {
        effective.as_ref()?["values"][key]["value"]
            .as_str()
            .map(PathBuf::from)
    };
    let state_dir = settings
        .as_ref()
        .map(|s| PathBuf::from(&s.state_dir))
        .or_else(|| from_config("state_dir"));
    checks.push(match &state_dir {
        Some(dir) => files::state_dir(dir, uid),
        None => Check::skip(
            Name::StateDir,
            "unknown: neither the agent nor the config says",
        ),
    });
    checks.extend(jupyterhub::check(state_dir.as_deref()));
    checks.push(match agent.as_mut() {
        Some(a) => locks_check(a),
        None => Check::skip(Name::Locks, "the agent is not reachable"),
    });
    checks.push(host::systemd());
    let export = match &settings {
        Some(s) => s.export_token_file.as_ref().map(PathBuf::from),
        None => from_config("export_token_file"),
    };
    checks.push(match export {
        Some(path) => files::token_file(&path, now, expires_at, &log),
        None => Check::skip(Name::TokenFile, "export_token_file is not set"),
    });
    report(endpoint.ui, &checks)
}

/// Where to read the agent's log: the journal when systemd runs the agent
/// (its pid is in `tapis-agent.service`'s cgroup), else `agent.log` in its
/// state directory, where an agent started by `tapis-cred` writes. For an
/// agent that does not answer: the journal when a socket unit would start it.
fn agent_log(pid: Option<u32>, state_dir: Option<&Path>, socket_unit: bool) -> String {
    const JOURNAL: &str = "journalctl --user -u tapis-agent";
    let by_systemd = match pid {
        Some(pid) => std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|c| c.contains("/tapis-agent.service")),
        None => socket_unit,
    };
    if by_systemd {
        return JOURNAL.into();
    }
    let log = state_dir.map_or_else(crate::autostart::log_path, |d| d.join("agent.log"));
    if log.exists() {
        log.display().to_string()
    } else {
        "the terminal or job where tapis-agent runs (it logs to its stderr)".into()
    }
}

fn agent_check(
    endpoint: &Endpoint,
    connected: Result<Agent, Failure>,
    checks: &mut Vec<Check>,
) -> Option<Agent> {
    match connected {
        Ok(agent) => {
            checks.push(Check::pass(
                Name::Agent,
                format!(
                    "tapis-agent {} answers at {} (protocol {PROTOCOL_VERSION})",
                    agent.agent_version(),
                    endpoint.path.display()
                ),
            ));
            Some(agent)
        }
        Err(f) => {
            let fix = f
                .hint
                .clone()
                .unwrap_or_else(|| crate::exit::START_AGENT_HINT.into());
            checks.push(Check::fail(Name::Agent, f.message, fix));
            None
        }
    }
}

/// How the agents sharing the state directory take turns, as the agent
/// found it: `flock`, or lock files when `flock` fails or is node-local.
fn locks_check(agent: &mut Agent) -> Check {
    const NAME: Name = Name::Locks;
    let Ok(Response::Status(info)) = agent.call(&Request::Status) else {
        return Check::fail(
            NAME,
            "the agent did not report its status",
            "restart the agent",
        );
    };
    let state = info.state;
    let on = state
        .filesystem
        .map(|fs| format!(" on {fs}"))
        .unwrap_or_default();
    match (state.lock_method.as_str(), state.lock_reason) {
        ("flock", reason) => Check::pass(
            NAME,
            match reason {
                Some(why) => format!("flock{on}: {why}"),
                None => format!("flock{on}"),
            },
        ),
        (method, reason) => Check::warn(
            NAME,
            format!(
                "{method}{on}: {}",
                reason.unwrap_or_else(|| "configured".into())
            ),
            "lock files are safe here, only slower: a lock left by a crashed agent on another \
             host waits out its lease. flock is used only where it locks across hosts: on \
             Lustre, mount with -o flock (not localflock); on NFS, run the lock manager \
             (rpc.statd/lockd); where the filesystem is known to lock across hosts, set \
             state_lock = \"flock\"; then delete locks/lockfile-mode in the state directory \
             (docs/deployment.md, \"Shared home directories\")",
        ),
    }
}

/// The login check; returns the token's expiry when logged in.
fn login_check(
    agent: &mut Agent,
    settings: Option<&AgentSettings>,
    now: i64,
    log: &str,
    checks: &mut Vec<Check>,
) -> Option<i64> {
    const NAME: Name = Name::Login;
    const LOGIN: &str = "tapis-cred login";
    let info = match agent.call(&Request::Status) {
        Ok(Response::Status(info)) => info,
        Ok(_) | Err(_) => {
            checks.push(Check::fail(
                NAME,
                "the agent did not report its status",
                "restart the agent",
            ));
            return None;
        }
    };
    let (check, expires) = match info.login {
        LoginState::LoggedOut => (Check::fail(NAME, "not logged in", LOGIN), None),
        LoginState::LoginRequired { reason, .. } => (
            Check::fail(NAME, format!("login required: {reason}"), LOGIN),
            None,
        ),
        LoginState::LoggedIn {
            username,
            tenant,
            expires_at,
            has_refresh_token,
            last_refresh_error,
            refresh_problem,
            ..
        } => {
            let left = time::span(expires_at.abs_diff(now));
            let refreshable = has_refresh_token && refresh_problem.is_none();
            let detail = format!(
                "{username} ({tenant}), token valid until {} ({left} left), refresh: {}",
                time::human(expires_at),
                if refreshable { "yes" } else { "no" }
            );
            let configured = settings.and_then(|s| s.tenant.as_deref());
            let check = match (configured, last_refresh_error) {
                (Some(want), _) if want != tenant => Check::fail(
                    NAME,
                    format!("logged in to tenant {tenant}, but the agent is configured for {want}"),
                    "tapis-cred logout && tapis-cred login",
                ),
                (_, Some(e)) => Check::warn(
                    NAME,
                    format!("{detail}; the last refresh failed: {e}"),
                    format!(
                        "the agent retries; see the tapis check below and the agent's log: {log}"
                    ),
                ),
                _ if !refreshable => Check::warn(
                    NAME,
                    format!(
                        "{detail}; the login ends when the token expires: {}",
                        refresh_problem.as_deref().unwrap_or("no refresh token")
                    ),
                    format!(
                        "log in with a password or --device to get a refreshable login; \
                         the agent's log says more: {log}"
                    ),
                ),
                _ => Check::pass(NAME, detail),
            };
            (check, Some(expires_at))
        }
    };
    checks.push(check);
    expires
}

fn tapis_check(agent: &mut Agent, ui: Ui, log: &str) -> Check {
    const NAME: Name = Name::Tapis;
    let fix = format!(
        "check base_url (tapis-agent config show), the network and any proxy; \
         the agent's log: {log}"
    );
    let probe = {
        let _waiting = Spinner::start(
            ui,
            Progress {
                doing: "doctor: checking Tapis".into(),
                waits_for: "Tapis",
            },
        );
        agent.call(&Request::Ping)
    };
    match probe {
        Ok(Response::Pong(Pong {
            url,
            tapis_latency_ms: Some(ms),
            ..
        })) if ms > SLOW_MS => Check::warn(NAME, format!("{url} answered, slowly: {ms} ms"), fix),
        Ok(Response::Pong(Pong {
            url,
            tapis_latency_ms: Some(ms),
            ..
        })) => Check::pass(NAME, format!("{url} answered in {ms} ms")),
        Ok(Response::Pong(Pong {
            url, tapis_error, ..
        })) => Check::fail(
            NAME,
            format!(
                "{url}: {}",
                tapis_error.unwrap_or_else(|| "no answer".into())
            ),
            fix,
        ),
        Err(e) if e.kind == ErrorKind::Usage || e.message.contains("bad request") => Check::fail(
            NAME,
            "the agent cannot probe Tapis (it predates `doctor`)",
            "restart the agent after upgrading: systemctl --user restart tapis-agent",
        ),
        Ok(_) | Err(_) => Check::fail(NAME, "the agent did not answer the probe", fix),
    }
}

/// ok is false and exit_code 1 when a check failed.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Report<'a> {
    /// The checks, in the order they ran.
    checks: &'a [Check],
}

fn report(ui: Ui, checks: &[Check]) -> Rendered {
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    let code = if failed { 1 } else { SUCCESS };
    render::text(ui, "doctor", code, Report { checks }, human(ui, checks))
}

/// `✓ name  detail` per check, with the fix under warnings and failures.
/// `-q` keeps only warnings and failures.
fn human(ui: Ui, checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.name.as_str().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        if ui.quiet && matches!(c.status, Status::Pass | Status::Skip) {
            continue;
        }
        let mark = match c.status {
            Status::Pass => ui.paint(32, "✓"),
            Status::Warn => ui.paint(33, "!"),
            Status::Fail => ui.paint(31, "✗"),
            Status::Skip => ui.paint(2, "-"),
        };
        out.push_str(&format!(
            "{mark} {:<width$}  {}\n",
            c.name.as_str(),
            c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("  {:<width$}  fix: {fix}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Check> {
        vec![
            Check::pass(Name::Config, "/c.toml parses"),
            Check::fail(Name::Agent, "cannot reach the agent", "start it"),
            Check::skip(Name::Systemd, "systemd is not running here"),
        ]
    }

    #[test]
    fn human_report_marks_and_fixes() {
        let r = report(Ui::default(), &sample());
        assert_eq!(r.code, 1);
        assert_eq!(
            r.stdout(),
            "✓ config   /c.toml parses\n\
             ✗ agent    cannot reach the agent\n           fix: start it\n\
             - systemd  systemd is not running here\n"
        );
        let quiet = Ui {
            quiet: true,
            ..Ui::default()
        };
        assert!(!report(quiet, &sample()).stdout().contains("config"));
    }

    #[test]
    fn colour_only_when_asked() {
        let ui = Ui {
            color: true,
            ..Ui::default()
        };
        assert!(report(ui, &sample()).stdout().contains("\x1b[32m✓\x1b[0m"));
    }

    #[test]
    fn json_report() {
        let ui = Ui {
            json: true,
            ..Ui::default()
        };
        let v: serde_json::Value = serde_json::from_str(&report(ui, &sample()).stdout()).unwrap();
        assert_eq!(v["command"], "doctor");
        assert_eq!(v["ok"], false);
        assert_eq!(v["checks"][1]["status"], "fail");
        assert_eq!(v["checks"][1]["fix"], "start it");
        assert_eq!(v["checks"][0]["fix"], serde_json::Value::Null);
    }
}
