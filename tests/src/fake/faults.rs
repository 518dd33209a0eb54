//! Injectable faults: what to break, for which operation, how many times.
//!
//! JSON form (body of `POST /_fake/faults`):
//! `{"operation": "checkUserCredential", "kind": <kind>, "times": 1, "system": "ls6"}`
//! where `<kind>` is one of `{"status": 503}`, `{"status": 429, "retry_after": 1}`,
//! `{"status": 400, "message": "..."}` (an answer of the service itself, see
//! [`FaultKind::tokens_api_failure`]), `{"delay_ms": 2000}`, `{"slow_drip_ms": 50}`, or one of the strings `"drop"`,
//! `"reset_mid_body"`, `"html_502"`, `"truncated_json"`, `"hang"`, `"slow_drip"`,
//! `"non_json"`, `"jwt_refused"`. `times` defaults to 1, `system` to any system, and `operation`
//! `"*"` matches every Tapis operation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Interval between two bytes of a `"slow_drip"` answer.
pub const DEFAULT_DRIP_INTERVAL: Duration = Duration::from_millis(200);

/// How a matching call misbehaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "KindRepr", into = "KindRepr")]
pub enum FaultKind {
    /// Answer with this status and a JSON error envelope (plus `Retry-After`, if set).
    Status {
        /// HTTP status code.
        status: u16,
        /// Seconds for the `Retry-After` header.
        retry_after: Option<u64>,
    },
    /// Answer this status with this message in the service's JSON envelope:
    /// an error of the service itself, as opposed to an injected outage.
    Answer {
        /// HTTP status code.
        status: u16,
        /// The envelope's `message`.
        message: String,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Send the headers and half of the body, then reset the connection.
    ResetMidBody,
    /// Answer 502 with an HTML page, as a proxy in front of Tapis does.
    Html502,
    /// Answer the real status with the first half of the real JSON body.
    TruncatedJson,
    /// Never answer (until the server shuts down).
    Hang,
    /// Send the real answer one body byte per interval.
    SlowDrip(Duration),
    /// Answer 200 with a body that is not JSON.
    NonJson,
    /// Refuse the token as the Java services' JWT filter does, whatever it
    /// is: 401 plain text `TAPIS_SECURITY_JWT_PARSE_ERROR ...`
    /// (tapis-shared-java, `JWTValidateRequestFilter.filter`).
    JwtRefused,
}

impl FaultKind {
    /// `{"status": code}`.
    pub fn status(status: u16) -> Self {
        FaultKind::Status {
            status,
            retry_after: None,
        }
    }

    /// The Authenticator's answer when the Tokens API behind it fails: 400
    /// `Failure to generate an access token; please try again later.`
    /// (tapis-project/authenticator, service/controllers.py,
    /// `TokensResource.post`, around `t.tokens.create_token`). It answers a
    /// login and a refresh alike, whatever their credentials.
    pub fn tokens_api_failure() -> Self {
        FaultKind::Answer {
            status: 400,
            message: TRY_AGAIN_LATER.into(),
        }
    }

    /// The Authenticator's answer when `validate_token` of a refresh token
    /// raises anything (tapis-project/authenticator, service/controllers.py,
    /// `TokensResource.post`: `except Exception` → `Invalid refresh_token.`),
    /// a failed tenant or public-key lookup of tapipy-tapisservice's
    /// tapisservice/auth.py included: transient, or not, it reads the same.
    pub fn invalid_refresh_token() -> Self {
        FaultKind::Answer {
            status: 400,
            message: "Invalid refresh_token.".into(),
        }
    }
}

/// See [`FaultKind::tokens_api_failure`].
pub const TRY_AGAIN_LATER: &str = "Failure to generate an access token; please try again later.";

/// A fault for the next `times` calls of `operation` (optionally only for `system`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// An operationId such as `checkUserCredential` or `create_token`, or `*`.
    pub operation: String,
    /// What happens.
    pub kind: FaultKind,
    /// How many matching calls it applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Only calls whose `{systemId}` path parameter is this system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault for the next call of `operation`.
    pub fn new(operation: &str, kind: FaultKind) -> Self {
        Fault {
            operation: operation.into(),
            kind,
            times: 1,
            system: None,
        }
    }

    /// Applies to the next `times` matching calls instead of one.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Applies only to calls about `system`.
    pub fn system(mut self, system: &str) -> Self {
        self.system = Some(system.into());
        self
    }

    fn matches(&self, operation: &str, system: Option<&str>) -> bool {
        (self.operation == "*" || self.operation == operation)
            && self
                .system
                .as_deref()
                .is_none_or(|wanted| system == Some(wanted))
    }
}

/// Pending faults in injection order; each call consumes one use of the first match.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(Vec<Fault>);

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.0.push(fault);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn pending(&self) -> Vec<Fault> {
        self.0.clone()
    }

    /// The fault for this call, if any, used up by one.
    pub(crate) fn take(&mut self, operation: &str, system: Option<&str>) -> Option<FaultKind> {
        let index = self.0.iter().position(|f| f.matches(operation, system))?;
        let fault = &mut self.0[index];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.0.remove(index);
        }
        Some(kind)
    }
}

/// The JSON spellings of [`FaultKind`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum KindRepr {
    Named(Named),
    // Before `Status`, which would take the same JSON without its message.
    Answer {
        status: u16,
        message: String,
    },
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    Delay {
        delay_ms: u64,
    },
    SlowDrip {
        slow_drip_ms: u64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Named {
    Drop,
    ResetMidBody,
    #[serde(rename = "html_502")]
    Html502,
    TruncatedJson,
    Hang,
    SlowDrip,
    NonJson,
    JwtRefused,
}

impl TryFrom<KindRepr> for FaultKind {
    type Error = String;

    fn try_from(repr: KindRepr) -> Result<Self, String> {
        Ok(match repr {
            KindRepr::Status {
                status,
                retry_after,
            } => {
                if !(100..=999).contains(&status) {
                    return Err(format!("status {status} is not an HTTP status code"));
                }
                FaultKind::Status {
                    status,
                    retry_after,
                }
            }
            KindRepr::Answer { status, message } => {
                if !(100..=999).contains(&status) {
                    return Err(format!("status {status} is not an HTTP status code"));
                }
                FaultKind::Answer { status, message }
            }
            KindRepr::Delay { delay_ms } => FaultKind::Delay(Duration::from_millis(delay_ms)),
            KindRepr::SlowDrip { slow_drip_ms } => {
                FaultKind::SlowDrip(Duration::from_millis(slow_drip_ms))
            }
            KindRepr::Named(named) => match named {
                Named::Drop => FaultKind::Drop,
                Named::ResetMidBody => FaultKind::ResetMidBody,
                Named::Html502 => FaultKind::Html502,
                Named::TruncatedJson => FaultKind::TruncatedJson,
                Named::Hang => FaultKind::Hang,
                Named::SlowDrip => FaultKind::SlowDrip(DEFAULT_DRIP_INTERVAL),
                Named::NonJson => FaultKind::NonJson,
                Named::JwtRefused => FaultKind::JwtRefused,
            },
        })
    }
}

impl From<FaultKind> for KindRepr {
    fn from(kind: FaultKind) -> Self {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match kind {
            FaultKind::Status {
                status,
                retry_after,
            } => KindRepr::Status {
                status,
                retry_after,
            },
            FaultKind::Answer { status, message } => KindRepr::Answer { status, message },
            FaultKind::Delay(d) => KindRepr::Delay {
                delay_ms: millis(d),
            },
            FaultKind::SlowDrip(d) => KindRepr::SlowDrip {
                slow_drip_ms: millis(d),
            },
            FaultKind::Drop => KindRepr::Named(Named::Drop),
            FaultKind::ResetMidBody => KindRepr::Named(Named::ResetMidBody),
            FaultKind::Html502 => KindRepr::Named(Named::Html502),
            FaultKind::TruncatedJson => KindRepr::Named(Named::TruncatedJson),
            FaultKind::Hang => KindRepr::Named(Named::Hang),
            FaultKind::NonJson => KindRepr::Named(Named::NonJson),
            FaultKind::JwtRefused => KindRepr::Named(Named::JwtRefused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_spelling() {
        let cases = [
            (r#"{"status":503}"#, FaultKind::status(503)),
            (
                r#"{"status":429,"retry_after":1}"#,
                FaultKind::Status {
                    status: 429,
                    retry_after: Some(1),
                },
            ),
            (
                r#"{"status":400,"message":"Failure to parse access token response; please try again later."}"#,
                FaultKind::Answer {
                    status: 400,
                    message: "Failure to parse access token response; please try again later."
                        .into(),
                },
            ),
            (
                r#"{"delay_ms":2000}"#,
                FaultKind::Delay(Duration::from_secs(2)),
            ),
            (
                r#"{"slow_drip_ms":5}"#,
                FaultKind::SlowDrip(Duration::from_millis(5)),
            ),
            (
                r#"{"status":400,"message":"Invalid refresh_token."}"#,
                FaultKind::invalid_refresh_token(),
            ),
            (r#""drop""#, FaultKind::Drop),
            (r#""jwt_refused""#, FaultKind::JwtRefused),
            (r#""reset_mid_body""#, FaultKind::ResetMidBody),
            (r#""html_502""#, FaultKind::Html502),
            (r#""truncated_json""#, FaultKind::TruncatedJson),
            (r#""hang""#, FaultKind::Hang),
            (r#""slow_drip""#, FaultKind::SlowDrip(DEFAULT_DRIP_INTERVAL)),
            (r#""non_json""#, FaultKind::NonJson),
        ];
        for (json, want) in cases {
            let got: FaultKind = serde_json::from_str(json).expect(json);
            assert_eq!(got, want, "{json}");
            let back = serde_json::to_string(&got).expect("serializes");
            assert_eq!(serde_json::from_str::<FaultKind>(&back).ok(), Some(want));
        }
        assert!(serde_json::from_str::<FaultKind>(r#""explode""#).is_err());
    }

    #[test]
    fn queue_uses_first_match_and_counts_down() {
        let mut q = FaultQueue::default();
        q.push(Fault::new("getSystem", FaultKind::Drop).system("ls6"));
        q.push(Fault::new("*", FaultKind::Hang).times(2));
        assert_eq!(q.take("getSystem", Some("ls6")), Some(FaultKind::Drop));
        assert_eq!(q.take("getSystem", Some("ls6")), Some(FaultKind::Hang));
        assert_eq!(q.take("create_token", None), Some(FaultKind::Hang));
        assert_eq!(q.take("create_token", None), None);
        let fault: Fault = serde_json::from_str(r#"{"operation":"x","kind":"drop"}"#).unwrap();
        assert_eq!(fault.times, 1);
    }
}
