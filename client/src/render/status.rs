//! The agent's status: itself, the login, the credential cache.

use super::account::yes_no;
use super::{Rendered, choose};
use crate::exit::SUCCESS;
use crate::time;
use crate::ui::Ui;
use serde::Serialize;
use std::fmt::Write as _;
use tapis_agent_proto::{LoginState, StateDirStatus, StatusInfo};

#[derive(Serialize)]
struct Body<'a> {
    agent: Agent<'a>,
    login: Login<'a>,
    systems: Vec<System<'a>>,
    systems_total: u64,
    state_dir: StateDir<'a>,
}

/// The state directory, which agents on other nodes may share.
#[derive(Serialize)]
struct StateDir<'a> {
    path: &'a str,
    filesystem: Option<&'a str>,
    lock_method: &'a str,
    lock_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Agent<'a> {
    version: &'a str,
    pid: u32,
    uptime_secs: u64,
    base_url: &'a str,
}

/// Every login field is always present (null when it does not apply), so a
/// script can read the same keys whatever the state.
#[derive(Serialize, Default)]
struct Login<'a> {
    state: &'static str,
    username: Option<&'a str>,
    tenant: Option<&'a str>,
    reason: Option<&'a str>,
    expires_at: Option<String>,
    expires_at_unix: Option<i64>,
    has_refresh_token: Option<bool>,
    refresh_expires_at: Option<String>,
    refresh_expires_at_unix: Option<i64>,
    next_refresh_at: Option<String>,
    next_refresh_at_unix: Option<i64>,
    last_refresh_error: Option<&'a str>,
    refresh_problem: Option<&'a str>,
}

#[derive(Serialize)]
struct System<'a> {
    system: &'a str,
    user: &'a str,
    state: &'static str,
    checked_at: String,
    checked_at_unix: i64,
}

fn login_json(login: &LoginState) -> Login<'_> {
    match login {
        LoginState::LoggedOut => Login {
            state: "logged_out",
            ..Login::default()
        },
        LoginState::LoginRequired { username, reason } => Login {
            state: "login_required",
            username: username.as_deref(),
            reason: Some(reason),
            ..Login::default()
        },
        LoginState::LoggedIn {
            username,
            tenant,
            expires_at,
            has_refresh_token,
            refresh_expires_at,
            next_refresh_at,
            last_refresh_error,
            refresh_problem,
        } => Login {
            state: "logged_in",
            username: Some(username),
            tenant: Some(tenant),
            expires_at: Some(time::rfc3339(*expires_at)),
            expires_at_unix: Some(*expires_at),
            has_refresh_token: Some(*has_refresh_token),
            refresh_expires_at: refresh_expires_at.map(time::rfc3339),
            refresh_expires_at_unix: *refresh_expires_at,
            next_refresh_at: next_refresh_at.map(time::rfc3339),
            next_refresh_at_unix: *next_refresh_at,
            last_refresh_error: last_refresh_error.as_deref(),
            refresh_problem: refresh_problem.as_deref(),
            reason: None,
        },
    }
}

/// Renders a status answer as of `now` (Unix seconds). Always exit 0: the
/// agent answered, whatever the login state.
pub fn status(ui: Ui, info: &StatusInfo, now: i64) -> Rendered {
    let body = Body {
        agent: Agent {
            version: &info.agent_version,
            pid: info.pid,
            uptime_secs: info.uptime_secs,
            base_url: &info.base_url,
        },
        login: login_json(&info.login),
        systems: info
            .systems
            .iter()
            .map(|s| System {
                system: &s.system,
                user: &s.user,
                state: s.state.as_str(),
                checked_at: time::rfc3339(s.checked_at),
                checked_at_unix: s.checked_at,
            })
            .collect(),
        systems_total: info.systems_total,
        state_dir: StateDir {
            path: &info.state.dir,
            filesystem: info.state.filesystem.as_deref(),
            lock_method: &info.state.lock_method,
            lock_reason: info.state.lock_reason.as_deref(),
        },
    };
    choose(ui, "status", SUCCESS, body, || {
        let mut r = Rendered::new(SUCCESS);
        r.out(human(info, now));
        r
    })
}

/// `until` relative to `now`: `3 h left` or `expired 5 min ago`.
fn left(now: i64, until: i64) -> String {
    if until >= now {
        format!("{} left", time::span(until.abs_diff(now)))
    } else {
        format!("expired {} ago", time::span(until.abs_diff(now)))
    }
}

/// `flock`, or `lock files (why)`.
fn locks(state: &StateDirStatus) -> String {
    match (state.lock_method.as_str(), &state.lock_reason) {
        ("lockfile", Some(why)) => format!("lock files ({why})"),
        ("lockfile", None) => "lock files".to_owned(),
        (other, _) => other.to_owned(),
    }
}

fn human(info: &StatusInfo, now: i64) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(s, "{key:<9} {value}");
    };
    line(
        "agent",
        &format!(
            "tapis-agent {}, pid {}, up {}",
            info.agent_version,
            info.pid,
            time::span(info.uptime_secs)
        ),
    );
    line("tapis", &info.base_url);
    match &info.login {
        LoginState::LoggedOut => line("login", "not logged in (run: tapis-cred login)"),
        LoginState::LoginRequired { username, reason } => {
            let who = username
                .as_deref()
                .map(|u| format!(" for {u}"))
                .unwrap_or_default();
            line(
                "login",
                &format!("required{who}: {reason} (run: tapis-cred login)"),
            );
        }
        LoginState::LoggedIn {
            username,
            tenant,
            expires_at,
            has_refresh_token,
            refresh_expires_at,
            next_refresh_at,
            last_refresh_error,
            refresh_problem,
        } => {
            line("login", &format!("{username} ({tenant})"));
            line(
                "token",
                &format!(
                    "valid until {} ({})",
                    time::human(*expires_at),
                    left(now, *expires_at)
                ),
            );
            let mut refresh = match refresh_problem {
                Some(problem) => format!("NOT POSSIBLE: {problem}"),
                None => yes_no(*has_refresh_token).to_owned(),
            };
            if let Some(until) = refresh_expires_at {
                refresh += &format!(
                    ", valid until {} ({})",
                    time::human(*until),
                    left(now, *until)
                );
            }
            if let Some(next) = next_refresh_at {
                let when = time::span(next.abs_diff(now));
                let when = if *next >= now {
                    format!("in {when}")
                } else {
                    format!("{when} overdue")
                };
                refresh += &format!("; next refresh {} ({when})", time::human(*next));
            }
            line("refresh", &refresh);
            if let Some(e) = last_refresh_error {
                // The agent ends a login itself when it must (login required);
                // until then it retries on its own.
                line(
                    "last refresh error:",
                    &format!("{e} (the login is kept; the agent tries again by itself)"),
                );
            }
        }
    }
    let on = info
        .state
        .filesystem
        .as_deref()
        .map(|fs| format!(" on {fs}"))
        .unwrap_or_default();
    line("state", &format!("{}{on}", info.state.dir));
    line("locks", &locks(&info.state));
    line("systems", &format!("{} cached", info.systems_total));
    let width = |f: fn(&tapis_agent_proto::SystemStatus) -> usize| {
        info.systems.iter().map(f).max().unwrap_or(0)
    };
    let (sw, uw, stw) = (
        width(|x| x.system.len()),
        width(|x| x.user.len()),
        width(|x| x.state.as_str().len()),
    );
    for sys in &info.systems {
        let ago = if sys.checked_at >= now {
            "just now".to_owned()
        } else {
            format!("{} ago", time::span(sys.checked_at.abs_diff(now)))
        };
        let _ = writeln!(
            s,
            "  {:<sw$}  {:<uw$}  {:<stw$}  checked {ago}",
            sys.system,
            sys.user,
            sys.state.as_str()
        );
    }
    let listed = info.systems.len() as u64;
    if info.systems_total > listed {
        let _ = writeln!(s, "  ... {} more", info.systems_total - listed);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::tests::{human as human_ui, json, parse};
    use super::*;
    use serde_json::json;
    use tapis_agent_proto::{CredState, SystemStatus};

    const NOW: i64 = 1_795_456_800;

    fn info(login: LoginState) -> StatusInfo {
        StatusInfo {
            agent_version: "0.1.0".into(),
            pid: 4242,
            uptime_secs: 3 * 3600 + 12 * 60,
            base_url: "https://designsafe.tapis.io".into(),
            login,
            systems: vec![
                SystemStatus {
                    system: "stampede3".into(),
                    user: "testuser".into(),
                    state: CredState::Present,
                    checked_at: NOW - 42,
                },
                SystemStatus {
                    system: "ls6".into(),
                    user: "testuser".into(),
                    state: CredState::Created,
                    checked_at: NOW - 180,
                },
            ],
            systems_total: 5,
            state: StateDirStatus {
                dir: "/home/testuser/.local/state/tapis-agent".into(),
                filesystem: Some("nfs4 (fs1:/export/home on /home)".into()),
                lock_method: "lockfile".into(),
                lock_reason: Some("flock failed: ENOLCK".into()),
            },
        }
    }

    fn logged_in() -> LoginState {
        LoginState::LoggedIn {
            username: "testuser".into(),
            tenant: "designsafe".into(),
            expires_at: NOW + 4 * 3600,
            has_refresh_token: true,
            refresh_expires_at: Some(NOW + 14 * 86_400),
            next_refresh_at: Some(NOW + 3 * 3600 + 55 * 60),
            last_refresh_error: Some("Tapis answered 503".into()),
            refresh_problem: None,
        }
    }

    #[test]
    fn human_logged_in() {
        let r = status(human_ui(), &info(logged_in()), NOW);
        assert_eq!(r.code, 0);
        let out = r.stdout();
        assert_eq!(
            out,
            "\
agent     tapis-agent 0.1.0, pid 4242, up 3 h 12 min
tapis     https://designsafe.tapis.io
login     testuser (designsafe)
token     valid until 2026-11-23 22:00 UTC (4 h left)
refresh   yes, valid until 2026-12-07 18:00 UTC (14 d left); next refresh 2026-11-23 21:55 UTC (in 3 h 55 min)
last refresh error: Tapis answered 503 (the login is kept; the agent tries again by itself)
state     /home/testuser/.local/state/tapis-agent on nfs4 (fs1:/export/home on /home)
locks     lock files (flock failed: ENOLCK)
systems   5 cached
  stampede3  testuser  present  checked 42 s ago
  ls6        testuser  created  checked 3 min ago
  ... 3 more
"
        );
    }

    #[test]
    fn an_unrefreshable_login_says_why() {
        let login = LoginState::LoggedIn {
            username: "testuser".into(),
            tenant: "designsafe".into(),
            expires_at: NOW + 600,
            has_refresh_token: false,
            refresh_expires_at: None,
            next_refresh_at: None,
            last_refresh_error: None,
            refresh_problem: Some("Tapis issued no refresh token".into()),
        };
        let out = status(human_ui(), &info(login.clone()), NOW).stdout();
        assert!(
            out.contains("refresh   NOT POSSIBLE: Tapis issued no refresh token\n"),
            "{out}"
        );
        let v = parse(&status(json(), &info(login), NOW));
        assert_eq!(
            v["login"]["refresh_problem"],
            "Tapis issued no refresh token"
        );
    }

    #[test]
    fn human_other_login_states() {
        let out = status(human_ui(), &info(LoginState::LoggedOut), NOW).stdout();
        assert!(out.contains("login     not logged in"), "{out}");
        let required = LoginState::LoginRequired {
            username: Some("testuser".into()),
            reason: "access token expired and no refresh token".into(),
        };
        let out = status(human_ui(), &info(required), NOW).stdout();
        assert!(
            out.contains("required for testuser: access token expired"),
            "{out}"
        );
    }

    #[test]
    fn json_logged_in() {
        let v = parse(&status(json(), &info(logged_in()), NOW));
        assert_eq!(
            v,
            json!({
                "command": "status", "ok": true, "exit_code": 0,
                "agent": {"version": "0.1.0", "pid": 4242, "uptime_secs": 11520,
                          "base_url": "https://designsafe.tapis.io"},
                "login": {
                    "state": "logged_in", "username": "testuser", "tenant": "designsafe",
                    "reason": null,
                    "expires_at": "2026-11-23T22:00:00Z", "expires_at_unix": NOW + 14_400,
                    "has_refresh_token": true,
                    "refresh_expires_at": "2026-12-07T18:00:00Z",
                    "refresh_expires_at_unix": NOW + 14 * 86_400,
                    "next_refresh_at": "2026-11-23T21:55:00Z",
                    "next_refresh_at_unix": NOW + 14_100,
                    "last_refresh_error": "Tapis answered 503",
                    "refresh_problem": null
                },
                "systems": [
                    {"system": "stampede3", "user": "testuser", "state": "present",
                     "checked_at": "2026-11-23T17:59:18Z", "checked_at_unix": NOW - 42},
                    {"system": "ls6", "user": "testuser", "state": "created",
                     "checked_at": "2026-11-23T17:57:00Z", "checked_at_unix": NOW - 180}
                ],
                "systems_total": 5,
                "state_dir": {
                    "path": "/home/testuser/.local/state/tapis-agent",
                    "filesystem": "nfs4 (fs1:/export/home on /home)",
                    "lock_method": "lockfile",
                    "lock_reason": "flock failed: ENOLCK"
                }
            })
        );
    }

    #[test]
    fn json_login_keys_are_stable() {
        let keys = |login| {
            let v = parse(&status(json(), &info(login), NOW));
            let mut k: Vec<String> = v["login"].as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let required = LoginState::LoginRequired {
            username: None,
            reason: "r".into(),
        };
        assert_eq!(keys(LoginState::LoggedOut), keys(logged_in()));
        assert_eq!(keys(required), keys(logged_in()));
        let v = parse(&status(json(), &info(LoginState::LoggedOut), NOW));
        assert_eq!(v["login"]["state"], "logged_out");
        assert_eq!(v["login"]["username"], serde_json::Value::Null);
    }
}
