//! One HTTP exchange with Tapis: bounded body, envelope parsing, status
//! mapping and retries with jittered exponential backoff.

use super::error::{TapisError, classify_5xx, classify_401, html_title, snippet};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// Largest answer body read from Tapis.
const MAX_BODY: usize = 1024 * 1024;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Whether a call may be repeated after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Idempotent: retry transient failures.
    Safe,
    /// Idempotent but costly upstream (Tapis SSHes to a host): retry
    /// transient failures except a timeout, which would only start another
    /// long SSH attempt behind the one still running.
    NotAfterTimeout,
    /// Has side effects: never repeat; the caller re-checks instead.
    Never,
}

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First delay; doubles each time, full jitter.
    pub base: Duration,
}

impl Backoff {
    /// Delay before retry number `attempt` (0-based): uniform in
    /// [base·2^attempt / 2, base·2^attempt].
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << attempt.min(16));
        let half = ceiling / 2;
        half + ceiling.saturating_sub(half).mul_f64(rand::random::<f64>())
    }
}

/// The envelope every Tapis service answers with. Unknown fields are ignored
/// and every field is optional, so a surprising answer never crashes.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    /// The service message, starting with a key like `SYSAPI_CRED_OK`; one
    /// that is not a string counts as absent.
    #[serde(default, deserialize_with = "text_or_none")]
    pub message: Option<String>,
    /// The payload.
    #[serde(default = "none")]
    pub result: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// A string field, or `None` for any other JSON value.
pub fn text_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(value.as_str().map(str::to_owned))
}

/// A successful answer: status and raw body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status (2xx).
    pub status: StatusCode,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Parses the body as an envelope with a `result` of type `T`.
    pub fn result<T: for<'de> Deserialize<'de>>(&self) -> Result<T, TapisError> {
        // The body is not quoted: a token endpoint's answer carries tokens.
        let env: Envelope<T> = serde_json::from_slice(&self.body).map_err(|e| {
            TapisError::Protocol(format!(
                "{} answer is not the expected JSON ({})",
                self.status,
                json_error(&e)
            ))
        })?;
        env.result
            .ok_or_else(|| TapisError::Protocol("answer has no result".into()))
    }
}

/// Sends the request built by `make` (called again for each attempt),
/// retrying transient failures when `retry` is [`Retry::Safe`].
pub async fn send(
    make: impl Fn() -> RequestBuilder,
    retry: Retry,
    backoff: Backoff,
    timeout: Duration,
) -> Result<Answer, TapisError> {
    let mut attempt = 0;
    loop {
        let (err, retry_after) = match once(make().timeout(timeout), timeout).await {
            Ok(answer) => return Ok(answer),
            Err(failure) => failure,
        };
        let slow = retry == Retry::NotAfterTimeout && matches!(err, TapisError::Timeout(_));
        if retry == Retry::Never || slow || !err.is_transient() || attempt >= backoff.retries {
            return Err(err);
        }
        let delay = retry_after
            .map(|d| d.min(MAX_RETRY_AFTER))
            .unwrap_or_else(|| backoff.delay(attempt));
        tracing::debug!(error = %err, attempt, delay_ms = delay.as_millis() as u64, "retrying Tapis call");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

type Failure = (TapisError, Option<Duration>);

async fn once(req: RequestBuilder, timeout: Duration) -> Result<Answer, Failure> {
    let resp = req
        .send()
        .await
        .map_err(|e| (transport(&e, timeout), None))?;
    let status = resp.status();
    let resp_location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_body(resp)
        .await
        .map_err(|e| (transport(&e, timeout), None))?;
    if status.is_success() {
        // Every Tapis answer is a JSON envelope: a 200 from a proxy's
        // maintenance page must not read as "credentials present".
        if let Err(detail) = json_check(&body) {
            return Err((garbled(status, detail), retry_after));
        }
        return Ok(Answer { status, body });
    }
    let text = String::from_utf8_lossy(&body);
    let envelope = serde_json::from_slice::<Envelope<serde_json::Value>>(&body);
    if status == StatusCode::UNAUTHORIZED && envelope.is_err() && text.trim_start().starts_with('{')
    {
        // A cut-off JSON 401 says nothing about the token: the JWT filter
        // answers in plain text. Reading it as "token refused" would
        // refresh for nothing, or worse, report a login problem.
        let detail = json_check(&body).err().unwrap_or_default();
        return Err((garbled(status, detail), retry_after));
    }
    let message = envelope.ok().and_then(|e| e.message);
    let shown = || {
        message
            .as_deref()
            .map(snippet)
            .or_else(|| html_title(&text))
            .unwrap_or_else(|| snippet(&text))
    };
    let err = match status.as_u16() {
        // The client follows no redirect (see `TapisClient::new`): a 3xx
        // would re-send the password and the token, in a header no client
        // strips, to whatever host it names.
        300..=399 => redirect(status, resp_location.as_deref()),
        401 => classify_401(&text, message.as_deref()),
        400 => TapisError::BadRequest(shown()),
        403 => TapisError::Forbidden(shown()),
        404 => TapisError::NotFound(shown()),
        429 | 500..=599 => match message.as_deref() {
            Some(m) => classify_5xx(status.as_u16(), m),
            None => TapisError::Server {
                status: status.as_u16(),
                message: shown(),
            },
        },
        other => TapisError::Protocol(format!("status {other}: {}", shown())),
    };
    Err((err, retry_after))
}

/// A redirect, refused: the message names where it pointed (without any
/// query, which could carry anything) so the user can fix `base_url`.
fn redirect(status: StatusCode, location: Option<&str>) -> TapisError {
    let to = location
        .map(|l| l.split(['?', '#']).next().unwrap_or_default())
        .map(snippet)
        .unwrap_or_else(|| "nowhere (no Location header)".into());
    TapisError::Protocol(format!(
        "Tapis answered {} redirecting to {to}; redirects are not followed \
         (they would carry the password and the token): set base_url to the \
         address Tapis answers at",
        status.as_u16()
    ))
}

/// Checks that a body is JSON (or empty); the error names the length and
/// the parser's complaint, never the content.
fn json_check(body: &[u8]) -> Result<(), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(drop)
        .map_err(|e| format!("{} bytes; {}", body.len(), json_error(&e)))
}

/// Where and what kind of JSON error, without serde's quote of the value
/// (which could be a token).
fn json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "cut off",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

fn garbled(status: StatusCode, detail: String) -> TapisError {
    TapisError::Garbled {
        status: status.as_u16(),
        detail,
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room < chunk.len() {
            break;
        }
    }
    Ok(body)
}

fn transport(e: &reqwest::Error, timeout: Duration) -> TapisError {
    if e.is_timeout() {
        return TapisError::Timeout(timeout);
    }
    // The innermost cause says what actually happened (refused, reset, ...).
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "answer cut off"
    } else {
        "request failed"
    };
    // reqwest's own Display includes the URL, which holds no secret; the
    // cause is enough and shorter.
    TapisError::Transport(format!("{what}: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_in_range() {
        let b = Backoff {
            retries: 3,
            base: Duration::from_millis(100),
        };
        for attempt in 0..4 {
            let ceiling = Duration::from_millis(100 << attempt);
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} for {attempt}");
            }
        }
    }

    #[test]
    fn envelope_tolerates_missing_and_unknown_fields() {
        let e: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"status":"success","extra":1}"#).unwrap();
        assert!(e.message.is_none() && e.result.is_none());
        // The Java services' error envelopes: a reason phrase for status,
        // null metadata and result, extra commit and build.
        let e: Envelope<serde_json::Value> = serde_json::from_str(
            r#"{"status":"Unauthorized","message":"SYSLIB_CRED_NOT_FOUND x","version":"1",
                "commit":"c","build":"b","metadata":null,"result":null}"#,
        )
        .unwrap();
        assert_eq!(e.message.as_deref(), Some("SYSLIB_CRED_NOT_FOUND x"));
        let e: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"message":{"odd":true},"result":1}"#).unwrap();
        assert!(e.message.is_none());
    }
}
