//! What can go wrong talking to Tapis, with the 401s told apart.

use super::message::{leading_key, nested_key, tapis_message};
use std::time::Duration;

/// A failed Tapis call. Messages carry Tapis's own message keys, never a token
/// or a client key: every text taken from Tapis goes through [`snippet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapisError {
    /// 401 from the JWT filter (plain text or `TAPIS_SECURITY_*`): the token
    /// itself is bad or expired.
    #[error("Tapis refused the access token: {0}")]
    TokenRejected(String),
    /// 500 `Token is revoked.` from the proxy in front of the services
    /// (tapis-deployer, proxy `locations/*.conf`: `auth_request /_auth` with
    /// `error_page 500 /token-revoked.json`). The proxy answers the same when
    /// its token check itself fails, so only a second answer for a freshly
    /// refreshed token says more than "refresh": that the check is failing.
    #[error("Tapis's proxy calls the access token revoked: {0}")]
    TokenRevoked(String),
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
    /// 401 `SYSAPI_CRED_VALID_FAIL` with any other inner key
    /// (`SYSLIB_CRED_NOT_FOUND`: the stored credential is incomplete;
    /// `SYSLIB_CRED_NOT_SUPPORTED`: Tapis cannot validate this kind): nothing
    /// says the keys are bad, so they are never replaced on it.
    #[error("Tapis cannot validate the stored credentials: {0}")]
    CredUnverified(String),
    /// 500 `SYSAPI_CRED_ERROR ... SYSLIB_CRED_TMS_KEYS_...`: Tapis refuses to
    /// create TMS keys on this system (not LINUX, a static effective user, a
    /// `loginUser` mapping). Asking again gives the same answer.
    #[error("Tapis refused to create TMS keys: {0}")]
    TmsRefused(String),
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
        // Only the inner key says what failed (CredUtils.java, `verifyConnection`).
        let shown = snippet(message);
        match nested_key(message) {
            Some("SYSLIB_CRED_VALID_FAIL") => TapisError::CredRejected(shown),
            Some("SYSLIB_CRED_CONN_FAIL") => TapisError::CredConnFail(shown),
            _ => TapisError::CredUnverified(shown),
        }
    } else {
        TapisError::Unauthorized(snippet(message))
    }
}

/// Reads a 5xx (or 429) answer. Two 500s of the Systems service are not
/// outages and would only fail again: a credential call on a system the
/// caller may not read (ApiUtils.java `checkSystemExists` wraps the
/// ForbiddenException: `SYSAPI_CHECK_ERROR ... Error: SYSLIB_UNAUTH ...`), and
/// a refused TMS key creation (CredentialResource.java `createUserCredential`
/// wraps the BadRequestException: `SYSAPI_CRED_ERROR ... SYSLIB_CRED_TMS_KEYS_...`).
pub fn classify_5xx(status: u16, message: &str) -> TapisError {
    if status == 500 && message.trim_start().starts_with(TOKEN_REVOKED) {
        return TapisError::TokenRevoked(snippet(message));
    }
    let inner = nested_key(message);
    match (leading_key(message), inner) {
        (Some("SYSAPI_CHECK_ERROR"), Some("SYSLIB_UNAUTH")) => {
            TapisError::Forbidden(snippet(message))
        }
        (Some("SYSAPI_CRED_ERROR"), Some(key)) if key.starts_with("SYSLIB_CRED_TMS_KEYS_") => {
            TapisError::TmsRefused(snippet(message))
        }
        _ => TapisError::Server {
            status,
            message: snippet(message),
        },
    }
}

/// The message of the proxy's `token-revoked.json` (tapis-deployer,
/// `playbooks/roles/proxy/templates/kube/nginx/token-revoked.json`).
const TOKEN_REVOKED: &str = "Token is revoked.";

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

/// A Tapis message fit to show: its first line, secrets redacted, the
/// identity boilerplate dropped, bounded in length with its message keys kept.
pub fn snippet(text: &str) -> String {
    tapis_message(text)
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
    fn inner_keys_decide_and_unknown_ones_are_never_rejections() {
        let valid_fail = |inner: &str| {
            classify_401(
                "",
                Some(&format!(
                    "SYSAPI_CRED_VALID_FAIL Credential validation failed. System: ls6 User: u \
                     AuthnMethod: TMS_KEYS Message: {inner} text"
                )),
            )
        };
        assert!(matches!(
            valid_fail("SYSLIB_CRED_NOT_FOUND"),
            TapisError::CredUnverified(_)
        ));
        assert!(matches!(
            valid_fail("SYSLIB_CRED_NOT_SUPPORTED"),
            TapisError::CredUnverified(_)
        ));
        assert!(matches!(
            valid_fail("SYSLIB_SOMETHING_NEW"),
            TapisError::CredUnverified(_)
        ));
        // The SSH cause quoted after the inner key's own `Message:` changes nothing.
        assert!(matches!(
            valid_fail(
                "SYSLIB_CRED_VALID_FAIL Invalid credentials. Message: SYSLIB_CRED_CONN_FAIL"
            ),
            TapisError::CredRejected(_)
        ));
    }

    #[test]
    fn some_500s_are_answers_not_outages() {
        let unreadable = "SYSAPI_CHECK_ERROR Unable to check for system. jwtTenant: t jwtUser: u \
                          OboTenant: t OboUser: u System: ls6 Operation: checkUserCredential Error: \
                          SYSLIB_UNAUTH Permission denied. jwtTenant: t jwtUserId: u OboTenant: t \
                          OboUser: u System: ls6 Operation: read";
        let e = classify_5xx(500, unreadable);
        assert!(matches!(e, TapisError::Forbidden(_)), "{e:?}");
        assert!(!e.is_transient());
        let tms = "SYSAPI_CRED_ERROR Unable to operate on credential for system. System: s User: u \
                   Operation: createUserCredential Error: SYSLIB_CRED_TMS_KEYS_NOT_ALLOWED Creation \
                   of TMS keys with loginUser mapping or static effectiveUserId not supported.";
        let e = classify_5xx(500, tms);
        assert!(matches!(e, TapisError::TmsRefused(_)), "{e:?}");
        assert!(!e.is_transient() && !e.outcome_unknown());
        assert!(
            e.to_string().contains("SYSLIB_CRED_TMS_KEYS_NOT_ALLOWED"),
            "{e}"
        );
        // Other check errors and credential errors are still outages.
        for other in [
            "SYSAPI_CHECK_ERROR Unable to check for system. System: s Error: connection refused",
            "SYSAPI_CRED_ERROR Unable to operate. Error: SYSLIB_CRED_SK_ERROR Error operating",
            "no key at all",
        ] {
            assert!(classify_5xx(503, other).is_transient(), "{other}");
        }
    }

    #[test]
    fn the_proxys_revoked_token_is_a_token_problem() {
        let e = classify_5xx(500, "Token is revoked.");
        assert!(matches!(e, TapisError::TokenRevoked(_)), "{e:?}");
        assert!(!e.is_transient() && !e.outcome_unknown());
        // Only the proxy's 500 says so; a 503 with that text is an outage.
        assert!(classify_5xx(503, "Token is revoked.").is_transient());
    }

    #[test]
    fn snippet_is_bounded() {
        let long = "x".repeat(1000);
        assert!(snippet(&long).chars().count() <= super::super::message::MAX_CHARS);
        assert_eq!(snippet("<html>\n<body>bad gateway"), "<html>");
        assert_eq!(snippet("  "), "(empty body)");
    }
}
