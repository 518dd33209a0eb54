//! What can go wrong talking to Tapis, with the 401s told apart.

use std::time::Duration;

/// A failed Tapis call. Messages carry Tapis's own message keys, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapisError {
    /// 401 from the JWT filter (plain text or `TAPIS_SECURITY_*`): the token
    /// itself is bad or expired.
    #[error("Tapis refused the access token: {0}")]
    TokenRejected(String),
    /// 401 `SYSLIB_CRED_NOT_FOUND`: no credentials stored.
    #[error("no credentials stored")]
    CredNotFound,
    /// 401 `SYSAPI_CRED_VALID_FAIL` with `SYSLIB_CRED_VALID_FAIL`: stored
    /// credentials are rejected by the system.
    #[error("stored credentials are rejected by the system: {0}")]
    CredRejected(String),
    /// 401 `SYSAPI_CRED_VALID_FAIL` with `SYSLIB_CRED_CONN_FAIL`: Tapis cannot
    /// reach the system's host.
    #[error("Tapis cannot reach the system's host: {0}")]
    CredConnFail(String),
    /// Any other 401 (e.g. a wrong password).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 403.
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 5xx or 429, after retries.
    #[error("Tapis answered {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Message or body snippet.
        message: String,
    },
    /// Connection refused, reset, DNS failure... after retries.
    #[error("cannot reach Tapis: {0}")]
    Transport(String),
    /// No (complete) answer in time, after retries.
    #[error("no answer from Tapis within {}", short_duration(*.0))]
    Timeout(Duration),
    /// An answer whose body is not the JSON every Tapis service sends (a
    /// proxy's maintenance page, a cut-off body). The body is not quoted: a
    /// token endpoint's answer carries tokens.
    #[error("Tapis answered {status} with a body that is not valid JSON ({detail})")]
    Garbled {
        /// HTTP status.
        status: u16,
        /// What is wrong with the body (length and parser position only).
        detail: String,
    },
    /// An answer that does not make sense (unexpected status or shape).
    #[error("unexpected answer from Tapis: {0}")]
    Protocol(String),
}

impl TapisError {
    /// True when a request may have reached Tapis and had its effect even
    /// though no answer came back: a create in this state must be re-checked,
    /// never blindly repeated.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            TapisError::Timeout(_)
                | TapisError::Transport(_)
                | TapisError::Server { .. }
                | TapisError::Garbled { .. }
        )
    }

    /// True for failures worth retrying on an idempotent call.
    pub fn is_transient(&self) -> bool {
        self.outcome_unknown()
    }
}

/// Reads a 401 answer the way tapis-api.md prescribes.
pub fn classify_401(body: &str, message: Option<&str>) -> TapisError {
    let Some(message) = message else {
        // Not JSON: the JWT filter answers in plain text.
        return TapisError::TokenRejected(snippet(body));
    };
    if message.starts_with("TAPIS_SECURITY_") {
        TapisError::TokenRejected(snippet(message))
    } else if message.starts_with("SYSLIB_CRED_NOT_FOUND") {
        TapisError::CredNotFound
    } else if message.starts_with("SYSAPI_CRED_VALID_FAIL") {
        if message.contains("SYSLIB_CRED_CONN_FAIL") {
            TapisError::CredConnFail(snippet(message))
        } else {
            TapisError::CredRejected(snippet(message))
        }
    } else {
        TapisError::Unauthorized(snippet(message))
    }
}

/// `1s`, `30s`, or `500ms` below a second.
fn short_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The `<title>` of an HTML error page (what a proxy such as nginx sends
/// for a 502), when the text is one.
pub fn html_title(text: &str) -> Option<String> {
    let start = text.trim_start();
    if !start.starts_with('<') {
        return None;
    }
    let lower = start.to_ascii_lowercase();
    let open = lower.find("<title>")? + "<title>".len();
    let close = open + lower[open..].find("</title>")?;
    let title = start.get(open..close)?.trim();
    (!title.is_empty()).then(|| format!("{} (HTML page)", snippet(title)))
}

/// First line of a message, at most 200 characters: enough to identify the
/// problem without echoing whole proxy pages into logs.
pub fn snippet(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("(empty body)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_401_is_a_token_problem() {
        assert!(matches!(
            classify_401("TAPIS_SECURITY_JWT_EXPIRED expired", None),
            TapisError::TokenRejected(_)
        ));
        assert!(matches!(
            classify_401("{}", Some("TAPIS_SECURITY_JWT_PARSE_ERROR x")),
            TapisError::TokenRejected(_)
        ));
    }

    #[test]
    fn credential_401s_are_told_apart() {
        assert_eq!(
            classify_401("", Some("SYSLIB_CRED_NOT_FOUND Credential not found")),
            TapisError::CredNotFound
        );
        assert!(matches!(
            classify_401(
                "",
                Some("SYSAPI_CRED_VALID_FAIL x Message: SYSLIB_CRED_VALID_FAIL y")
            ),
            TapisError::CredRejected(_)
        ));
        assert!(matches!(
            classify_401(
                "",
                Some("SYSAPI_CRED_VALID_FAIL x Message: SYSLIB_CRED_CONN_FAIL y")
            ),
            TapisError::CredConnFail(_)
        ));
        assert!(matches!(
            classify_401("", Some("Invalid username/password")),
            TapisError::Unauthorized(_)
        ));
    }

    #[test]
    fn html_pages_are_named_by_their_title() {
        let page = "<html>\r\n<head><title>502 Bad Gateway</title></head><body>x</body></html>";
        assert_eq!(
            html_title(page).as_deref(),
            Some("502 Bad Gateway (HTML page)")
        );
        assert_eq!(html_title("{\"message\":\"x\"}"), None);
        assert_eq!(html_title("<html><body>no title</body></html>"), None);
    }

    #[test]
    fn short_timeouts_read_in_milliseconds() {
        assert_eq!(
            TapisError::Timeout(Duration::from_millis(500)).to_string(),
            "no answer from Tapis within 500ms"
        );
        assert_eq!(
            TapisError::Timeout(Duration::from_secs(30)).to_string(),
            "no answer from Tapis within 30s"
        );
    }

    #[test]
    fn snippet_is_bounded() {
        let long = "x".repeat(1000);
        assert!(snippet(&long).chars().count() <= 201);
        assert_eq!(snippet("<html>\n<body>bad gateway"), "<html>");
        assert_eq!(snippet("  "), "(empty body)");
    }
}
