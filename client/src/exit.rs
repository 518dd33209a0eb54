//! The one place where failures get their exit codes.
//!
//! A failure is the protocol's [`ErrorReply`]: the agent's errors arrive in
//! that shape already, and the client's own failures (usage, unreachable agent,
//! unreadable files) are built here with the matching [`ErrorKind`], so the
//! exit code always comes from [`ErrorKind::exit_code`].

use tapis_agent_proto::{ErrorKind, ErrorReply, Outcome, SystemOutcome};

/// A failed command: kind (hence exit code), message and optional hint.
pub type Failure = ErrorReply;

/// Exit code of success.
pub const SUCCESS: u8 = 0;

/// How to start the agent, shown whenever it cannot be reached.
pub const START_AGENT_HINT: &str =
    "start it with: tapis-agent   (or: systemctl --user start tapis-agent.socket)";

/// What to do when the client and the agent disagree on the protocol.
pub const REINSTALL_HINT: &str = "restart the agent or reinstall";

/// The exit code of a failure.
pub fn code(failure: &Failure) -> u8 {
    failure.kind.exit_code()
}

/// Exit code of an establish, revoke or check answer: success when every
/// system succeeded, else the code of the first failure in request order, so
/// a script sees the same code for the same problem however many systems it
/// names.
pub fn systems_code(outcomes: &[SystemOutcome]) -> u8 {
    outcomes
        .iter()
        .find_map(|o| match &o.outcome {
            Outcome::Ok(_) => None,
            Outcome::Err(e) => Some(code(e)),
        })
        .unwrap_or(SUCCESS)
}

/// Bad arguments (exit 2).
pub fn usage(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::Usage, message)
}

/// Anything without a more specific kind (exit 1).
pub fn other(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::Other, message)
}

/// No usable login or token (exit 3).
pub fn login_required(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::LoginRequired, message)
}

/// The agent cannot be reached, answers nothing, or speaks another protocol
/// (exit 7).
pub fn agent_unreachable(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::AgentUnreachable, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapis_agent_proto::CredState;

    fn outcome(system: &str, outcome: Outcome) -> SystemOutcome {
        SystemOutcome {
            system: system.into(),
            user: "testuser".into(),
            outcome,
            cached: false,
        }
    }

    #[test]
    fn first_failure_in_request_order_decides() {
        let ok = |s| outcome(s, Outcome::Ok(CredState::Present));
        let err = |s, kind| outcome(s, Outcome::Err(Failure::new(kind, "x")));
        assert_eq!(systems_code(&[]), 0);
        assert_eq!(systems_code(&[ok("a"), ok("b")]), 0);
        assert_eq!(
            systems_code(&[
                ok("a"),
                err("b", ErrorKind::NotTmsKeys),
                err("c", ErrorKind::SystemNotFound)
            ]),
            6
        );
    }

    #[test]
    fn client_failures_carry_their_codes() {
        assert_eq!(code(&usage("x")), 2);
        assert_eq!(code(&other("x")), 1);
        assert_eq!(code(&login_required("x")), 3);
        assert_eq!(code(&agent_unreachable("x")), 7);
    }
}
