//! Answers of establish, revoke and check: one outcome per system.

use super::{JsonError, Rendered, choose, error_text};
use crate::exit;
use crate::ui::Ui;
use serde::Serialize;
use tapis_agent_proto::{Outcome, SystemOutcome};

/// establish, revoke, check: ok is true when every system succeeded;
/// exit_code is the code of the first failure in request order.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(super) struct Systems<'a> {
    /// One entry per requested system, in request order.
    systems: Vec<SystemJson<'a>>,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(inline))]
struct SystemJson<'a> {
    system: &'a str,
    /// The Tapis user the operation was for (empty when it could not be known).
    user: &'a str,
    /// The state reached; null when this system failed.
    #[cfg_attr(test, schemars(schema_with = "super::schema::cred_state_or_null"))]
    state: Option<&'static str>,
    /// Answered from the agent's cache without asking Tapis.
    cached: bool,
    error: Option<JsonError<'a>>,
}

/// Renders the per-system outcomes of `command` (`establish`, `revoke` or
/// `check`). Successes go to stdout, failures to stderr, in request order.
pub fn systems(ui: Ui, command: &str, outcomes: &[SystemOutcome]) -> Rendered {
    let code = exit::systems_code(outcomes);
    let body = Systems {
        systems: outcomes
            .iter()
            .map(|o| {
                let (state, error) = match &o.outcome {
                    Outcome::Ok(state) => (Some(state.as_str()), None),
                    Outcome::Err(e) => (None, Some(e.into())),
                };
                SystemJson {
                    system: &o.system,
                    user: &o.user,
                    state,
                    cached: o.cached,
                    error,
                }
            })
            .collect(),
    };
    choose(ui, command, code, body, || {
        let mut r = Rendered::new(code);
        for o in outcomes {
            match &o.outcome {
                Outcome::Ok(_) if ui.quiet => {}
                Outcome::Ok(state) => {
                    let cached = if o.cached { " (cached)" } else { "" };
                    r.out(format!("{}: {}{cached}\n", o.system, state.as_str()));
                }
                Outcome::Err(e) => {
                    r.err(error_text(
                        &system_message(command, &o.system, &e.message),
                        e.hint.as_deref(),
                    ));
                }
            }
        }
        r
    })
}

/// `establish corral.pki: <message>`, unless the agent's message already
/// names the system (e.g. `check corral.pki: Tapis answered 503`), so the
/// line never says it twice.
fn system_message(command: &str, system: &str, message: &str) -> String {
    if message.contains(&format!("{system}:")) {
        message.to_owned()
    } else {
        format!("{command} {system}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{human, json, parse};
    use super::*;
    use serde_json::json;
    use tapis_agent_proto::{CredState, ErrorKind, ErrorReply};

    fn sample() -> Vec<SystemOutcome> {
        let o = |system: &str, outcome, cached| SystemOutcome {
            system: system.into(),
            user: "testuser".into(),
            outcome,
            cached,
        };
        vec![
            o("stampede3", Outcome::Ok(CredState::Present), true),
            o(
                "corral.pki",
                Outcome::Err(
                    ErrorReply::new(ErrorKind::NotTmsKeys, "system uses PKI_KEYS")
                        .with_hint("ask the system's owner"),
                ),
                false,
            ),
            o("ls6", Outcome::Ok(CredState::Created), false),
        ]
    }

    #[test]
    fn human_lines_in_order() {
        let r = systems(human(), "establish", &sample());
        assert_eq!(r.code, 6);
        assert_eq!(r.stdout(), "stampede3: present (cached)\nls6: created\n");
        assert_eq!(
            r.stderr(),
            "tapis-cred: establish corral.pki: system uses PKI_KEYS\n  hint: ask the system's owner\n"
        );
    }

    #[test]
    fn quiet_keeps_only_errors() {
        let ui = Ui {
            quiet: true,
            ..human()
        };
        let r = systems(ui, "establish", &sample());
        assert_eq!(r.stdout(), "");
        assert!(r.stderr().contains("corral.pki"));
    }

    #[test]
    fn json_shape() {
        let r = systems(json(), "establish", &sample());
        assert_eq!(r.stderr(), "");
        assert_eq!(
            parse(&r),
            json!({
                "command": "establish", "ok": false, "exit_code": 6,
                "systems": [
                    {"system": "stampede3", "user": "testuser", "state": "present",
                     "cached": true, "error": null},
                    {"system": "corral.pki", "user": "testuser", "state": null,
                     "cached": false,
                     "error": {"kind": "not_tms_keys", "code": 6,
                               "message": "system uses PKI_KEYS",
                               "hint": "ask the system's owner"}},
                    {"system": "ls6", "user": "testuser", "state": "created",
                     "cached": false, "error": null}
                ]
            })
        );
    }

    #[test]
    fn all_ok_is_exit_zero() {
        let r = systems(json(), "revoke", &sample()[..1]);
        assert_eq!(r.code, 0);
        assert_eq!(parse(&r)["ok"], true);
    }

    #[test]
    fn system_named_once() {
        assert_eq!(
            system_message("establish", "ls6", "check ls6: Tapis answered 503"),
            "check ls6: Tapis answered 503"
        );
        assert_eq!(
            system_message("revoke", "ls6", "Tapis answered 503"),
            "revoke ls6: Tapis answered 503"
        );
    }
}
