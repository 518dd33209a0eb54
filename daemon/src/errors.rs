//! The one place where failures become wire errors (and so exit codes).

use crate::tapis::TapisError;
use tapis_agent_proto::{ErrorKind, ErrorReply};

/// Hint shown whenever a new login is needed.
pub const LOGIN_HINT: &str = "run: tapis-cred login";

/// "Log in again" with a reason.
pub fn login_required(reason: impl Into<String>) -> ErrorReply {
    ErrorReply::new(ErrorKind::LoginRequired, reason).with_hint(LOGIN_HINT)
}

/// Maps a Tapis failure during `what` (e.g. `check stampede3`) to an error.
pub fn from_tapis(what: &str, err: &TapisError) -> ErrorReply {
    let message = format!("{what}: {err}");
    match err {
        TapisError::TokenRejected(_) | TapisError::Unauthorized(_) => {
            ErrorReply::new(ErrorKind::LoginRequired, message).with_hint(LOGIN_HINT)
        }
        TapisError::NotFound(_) => ErrorReply::new(ErrorKind::SystemNotFound, message)
            .with_hint("check the system id: tapis-cred establish takes ids such as stampede3"),
        TapisError::Forbidden(_) => ErrorReply::new(ErrorKind::PermissionDenied, message)
            .with_hint("ask the system's owner to grant you access"),
        TapisError::TokenRevoked(_) => ErrorReply::new(ErrorKind::TapisUnavailable, message)
            .with_hint(
                "Tapis's proxy refused a freshly refreshed token too: its token check is failing; \
                 try again later",
            ),
        TapisError::CredConnFail(_) => ErrorReply::new(ErrorKind::TapisUnavailable, message)
            .with_hint(
                "the system may be down for maintenance; creating credentials would not help",
            ),
        TapisError::Server { .. }
        | TapisError::Transport(_)
        | TapisError::Timeout(_)
        | TapisError::Garbled { .. } => ErrorReply::new(ErrorKind::TapisUnavailable, message)
            .with_hint("Tapis is unreachable or failing; try again later"),
        TapisError::Protocol(_) => ErrorReply::new(ErrorKind::TapisUnavailable, message),
        TapisError::TmsRefused(_) => ErrorReply::new(ErrorKind::NotTmsKeys, message).with_hint(
            "Tapis creates TMS keys only on LINUX systems whose users log in as themselves; \
             ask the system's owner, or register credentials by hand (e.g. an SSH key pair)",
        ),
        TapisError::CredUnverified(_) => ErrorReply::new(ErrorKind::Other, message).with_hint(
            "nothing was changed; to replace the stored credentials: tapis-cred revoke SYSTEM, \
             then tapis-cred establish SYSTEM",
        ),
        TapisError::BadRequest(_) | TapisError::CredNotFound | TapisError::CredRejected(_) => {
            ErrorReply::new(ErrorKind::Other, message)
        }
    }
}

/// The operation did not finish within the deadline.
pub fn deadline(what: &str, secs: u64) -> ErrorReply {
    ErrorReply::new(
        ErrorKind::TapisUnavailable,
        format!("{what}: no result within {secs}s"),
    )
    .with_hint("Tapis is slow or unreachable; try again later")
}

/// An internal failure (a task died, a channel closed).
pub fn internal(what: &str) -> ErrorReply {
    ErrorReply::new(
        ErrorKind::Other,
        format!("{what}: internal error in the agent"),
    )
    .with_hint("see the agent's log")
}
