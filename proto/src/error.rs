//! Error kinds carried on the wire; each maps to one client exit code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What went wrong, as far as a caller needs to know to react. Each kind has
/// its own exit code (see [`ErrorKind::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Anything not covered below (exit 1).
    Other,
    /// The request itself is malformed: bad system id, bad arguments (exit 2).
    Usage,
    /// No valid token and none can be obtained without a new login (exit 3).
    LoginRequired,
    /// Tapis does not know the system (exit 4).
    SystemNotFound,
    /// Tapis refused the operation for this user (exit 5).
    PermissionDenied,
    /// The system does not use TMS_KEYS, so nothing can be created (exit 6).
    NotTmsKeys,
    /// The agent could not be reached or spoke another protocol (exit 7).
    AgentUnreachable,
    /// Tapis is unreachable or failing, after retries (exit 8).
    TapisUnavailable,
    /// The agent is at capacity and refused the request; try again (exit 9).
    Busy,
    /// Tapis refused the username or password of a login (exit 10). Any login
    /// held before stays in place.
    WrongPassword,
}

impl ErrorKind {
    /// Every kind, in exit-code order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Other,
        ErrorKind::Usage,
        ErrorKind::LoginRequired,
        ErrorKind::SystemNotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::NotTmsKeys,
        ErrorKind::AgentUnreachable,
        ErrorKind::TapisUnavailable,
        ErrorKind::Busy,
        ErrorKind::WrongPassword,
    ];

    /// The client's exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Other => 1,
            ErrorKind::Usage => 2,
            ErrorKind::LoginRequired => 3,
            ErrorKind::SystemNotFound => 4,
            ErrorKind::PermissionDenied => 5,
            ErrorKind::NotTmsKeys => 6,
            ErrorKind::AgentUnreachable => 7,
            ErrorKind::TapisUnavailable => 8,
            ErrorKind::Busy => 9,
            ErrorKind::WrongPassword => 10,
        }
    }

    /// Stable snake_case name, used in `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Other => "other",
            ErrorKind::Usage => "usage",
            ErrorKind::LoginRequired => "login_required",
            ErrorKind::SystemNotFound => "system_not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotTmsKeys => "not_tms_keys",
            ErrorKind::AgentUnreachable => "agent_unreachable",
            ErrorKind::TapisUnavailable => "tapis_unavailable",
            ErrorKind::Busy => "busy",
            ErrorKind::WrongPassword => "wrong_password",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: its kind, a one-line message without secrets, and an
/// optional hint telling the user what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The kind, which decides the exit code.
    pub kind: ErrorKind,
    /// What failed and why, e.g. `check stampede3: Tapis answered 503`.
    pub message: String,
    /// What the user can do about it, e.g. `run: tapis-cred login`.
    pub hint: Option<String>,
}

impl ErrorReply {
    /// An error without a hint.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorReply {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn exit_codes_are_one_to_one() {
        let codes: HashSet<u8> = ErrorKind::ALL.iter().map(|k| k.exit_code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert!(!codes.contains(&0), "0 is success");
        assert_eq!(ErrorKind::LoginRequired.exit_code(), 3);
        assert_eq!(ErrorKind::NotTmsKeys.exit_code(), 6);
        assert_eq!(ErrorKind::AgentUnreachable.exit_code(), 7);
        assert_eq!(ErrorKind::TapisUnavailable.exit_code(), 8);
        assert_eq!(ErrorKind::WrongPassword.exit_code(), 10);
    }

    /// The exit codes are defined once, by [`ErrorKind::exit_code`] and
    /// [`ErrorKind::as_str`]; the tables written for people and for Python
    /// must say the same: the README's table, docs/cli.md's list of kinds,
    /// and the exception classes of python/tapis_agent/errors.py. (The
    /// client's `--help` line is checked in client/src/cli.rs.)
    #[test]
    fn every_table_of_exit_codes_says_what_error_kind_says() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read =
            |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let ours: Vec<(&str, u8)> = ErrorKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.exit_code()))
            .collect();
        let mut codes: Vec<u8> = ours.iter().map(|(_, c)| *c).collect();
        codes.insert(0, 0);

        // README: the rows of the table under "| code | meaning |".
        let readme = read("README.md");
        let table = readme
            .split_once("| code | meaning |")
            .expect("README has the exit-code table")
            .1;
        let rows: Vec<u8> = table
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.split('|').nth(1).unwrap().trim().parse().expect("a code"))
            .collect();
        assert_eq!(rows, codes, "README.md's exit-code table");

        // docs/cli.md: "`kind` N" pairs after "`kind` names the exit code".
        let cli = read("docs/cli.md");
        let list = cli
            .split_once("`kind` names the exit code")
            .expect("docs/cli.md lists the kinds")
            .1;
        let list = &list[..list.find("```").unwrap_or(list.len())];
        let mut pairs = Vec::new();
        let mut rest = list;
        while let Some(start) = rest.find('`') {
            let after = &rest[start + 1..];
            let end = after.find('`').expect("closing backquote");
            let name = &after[..end];
            let tail = after[end + 1..].trim_start();
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(code) = digits.parse::<u8>() {
                pairs.push((name, code));
            }
            rest = &after[end + 1..];
        }
        assert_eq!(pairs, ours, "docs/cli.md's kinds and codes");

        // errors.py: each class's `exit_code = N` and `kind = "..."`.
        let py = read("python/tapis_agent/errors.py");
        let mut classes = Vec::new();
        for class in py.split("\nclass ").skip(1) {
            let field = |name: &str| {
                class
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(name))
                    .map(|v| v.trim().trim_matches('"').to_owned())
            };
            if let (Some(code), Some(kind)) = (
                field("exit_code: int = ").or(field("exit_code = ")),
                field("kind: str = ").or(field("kind = ")),
            ) {
                classes.push((kind, code.parse::<u8>().expect("a code")));
            }
        }
        for (kind, code) in &classes {
            assert!(
                ours.contains(&(kind.as_str(), *code)),
                "errors.py: kind {kind:?} with exit code {code} is not ErrorKind's"
            );
        }
        for (kind, _) in &ours {
            // A usage error is the generic class's (its exit code 2 as such).
            assert!(
                *kind == "usage" || classes.iter().any(|(k, _)| k == kind),
                "errors.py has no class for {kind:?}"
            );
        }
    }
}
