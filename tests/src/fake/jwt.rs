//! Signing and checking the fake's JWTs (HS256 with a secret made per instance),
//! with the claims the live Tokens API puts in them.
//!
//! tapis-project/tokens-api, service/models.py: `TapisAccessToken.claims_to_dict`
//! and `TapisRefreshToken.claims_to_dict` (no `iat`; a refresh token carries no
//! `tapis/username` of its own, only the access token's claims nested under
//! `tapis/access_token`), and `TapisToken.__init__` (`expires_at` is
//! `exp.isoformat()`, with microseconds, while the JWT's `exp` is whole seconds).

use std::time::Duration;

use tapis_agent::clock::Clock;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// `tapis/token_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenType {
    Access,
    Refresh,
}

/// The claims of an access token, as tokens-api `TapisAccessToken.claims_to_dict`
/// writes them plus the Authenticator's extra claims (controllers.py,
/// `TokensResource.post`: `tapis/client_id`, null without a client,
/// `tapis/grant_type`, and `tapis/refresh_count` when a refresh token comes along).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) jti: String,
    pub(crate) iss: String,
    pub(crate) sub: String,
    #[serde(rename = "tapis/tenant_id")]
    pub(crate) tenant_id: String,
    #[serde(rename = "tapis/token_type")]
    pub(crate) token_type: TokenType,
    #[serde(rename = "tapis/delegation")]
    pub(crate) delegation: bool,
    #[serde(rename = "tapis/delegation_sub")]
    pub(crate) delegation_sub: Option<String>,
    #[serde(rename = "tapis/username")]
    pub(crate) username: String,
    #[serde(rename = "tapis/account_type")]
    pub(crate) account_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<i64>,
    #[serde(rename = "tapis/client_id", default)]
    pub(crate) client_id: Option<String>,
    #[serde(rename = "tapis/grant_type", default)]
    pub(crate) grant_type: Option<String>,
    #[serde(
        rename = "tapis/refresh_count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) refresh_count: Option<u64>,
    /// Only inside a refresh token: the access token's lifetime, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ttl: Option<u64>,
}

/// The claims of a refresh token (tokens-api `TapisRefreshToken.claims_to_dict`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefreshClaims {
    pub(crate) jti: String,
    pub(crate) iss: String,
    pub(crate) sub: String,
    #[serde(rename = "tapis/initial_ttl")]
    pub(crate) initial_ttl: u64,
    #[serde(rename = "tapis/tenant_id")]
    pub(crate) tenant_id: String,
    #[serde(rename = "tapis/token_type")]
    pub(crate) token_type: TokenType,
    pub(crate) exp: i64,
    #[serde(rename = "tapis/access_token")]
    pub(crate) access_token: AccessClaims,
}

/// What the fake reads back from any token it signed.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Claims {
    pub(crate) jti: String,
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) exp: i64,
    #[serde(rename = "tapis/tenant_id")]
    pub(crate) tenant_id: String,
    #[serde(rename = "tapis/token_type")]
    pub(crate) token_type: TokenType,
    #[serde(rename = "tapis/username", default)]
    username: Option<String>,
    #[serde(rename = "tapis/account_type", default)]
    pub(crate) account_type: Option<String>,
    #[serde(rename = "tapis/access_token", default)]
    pub(crate) access_token: Option<AccessClaims>,
}

impl Claims {
    /// The user: the token's own claim, or for a refresh token the nested one.
    pub(crate) fn username(&self) -> &str {
        self.username
            .as_deref()
            .or(self.access_token.as_ref().map(|a| a.username.as_str()))
            .unwrap_or("")
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// Not a JWT, or not signed by this instance.
    Parse(String),
    /// Signed by us, but `exp` has passed (it is `now`).
    Expired { exp: i64, now: i64 },
}

/// When a token expires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry {
    /// This long from now.
    After(Duration),
    /// At this unix second.
    At(i64),
}

/// Who a token is for and how it came about.
#[derive(Debug, Clone)]
pub(crate) struct Subject<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) username: &'a str,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) grant_type: &'a str,
}

/// A freshly signed token with the fields of its JSON answer.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) jwt: String,
    pub(crate) jti: String,
    /// `expires_at` of the answer: `exp` with the microseconds the JWT drops.
    pub(crate) expires_at: String,
    /// `expires_in` of the answer: the requested lifetime.
    pub(crate) expires_in: u64,
}

/// Signs and checks tokens with this instance's secret, on its clock (the
/// agent's, when a test runs both in one process).
pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    clock: Clock,
}

impl Signer {
    pub(crate) fn new(issuer: String, clock: Clock) -> Self {
        let secret: [u8; 32] = rand::rng().random();
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked by `verify` itself: jsonwebtoken counts a token as expired
        // only after `exp` (plus leeway), Tapis from `exp` on, and a zero-TTL test
        // token must already be expired.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        Signer {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            issuer,
            clock,
        }
    }

    /// Unix seconds now, on this fake's clock.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    fn access_claims(&self, who: &Subject<'_>, refresh_count: Option<u64>) -> AccessClaims {
        AccessClaims {
            jti: new_id(),
            iss: self.issuer.clone(),
            sub: format!("{}@{}", who.username, who.tenant),
            tenant_id: who.tenant.into(),
            token_type: TokenType::Access,
            delegation: false,
            delegation_sub: None,
            username: who.username.into(),
            account_type: "user".into(),
            exp: None,
            client_id: who.client_id.map(str::to_owned),
            grant_type: Some(who.grant_type.into()),
            refresh_count,
            ttl: None,
        }
    }

    /// Signs an access token and, with `refresh_ttl`, a refresh token for it.
    pub(crate) fn sign_pair(
        &self,
        who: &Subject<'_>,
        expiry: Expiry,
        refresh: Option<(Duration, u64)>,
    ) -> Result<(Signed, Option<Signed>), jsonwebtoken::errors::Error> {
        let mut access = self.access_claims(who, refresh.map(|(_, count)| count));
        let now_ms = self.clock.now_ms();
        let (exp, expires_at, ttl) = expiry_of(expiry, now_ms);
        access.exp = Some(exp);
        let access_signed = Signed {
            jwt: self.encode(&access)?,
            jti: access.jti.clone(),
            expires_at,
            expires_in: ttl,
        };
        let Some((refresh_ttl, _)) = refresh else {
            return Ok((access_signed, None));
        };
        let (rexp, rexpires_at, rttl) = expiry_of(Expiry::After(refresh_ttl), now_ms);
        let mut nested = access;
        nested.exp = None;
        nested.ttl = Some(ttl);
        let claims = RefreshClaims {
            jti: new_id(),
            iss: self.issuer.clone(),
            sub: nested.sub.clone(),
            initial_ttl: rttl,
            tenant_id: nested.tenant_id.clone(),
            token_type: TokenType::Refresh,
            exp: rexp,
            access_token: nested,
        };
        let refresh_signed = Signed {
            jwt: self.encode(&claims)?,
            jti: claims.jti.clone(),
            expires_at: rexpires_at,
            expires_in: rttl,
        };
        Ok((access_signed, Some(refresh_signed)))
    }

    fn encode<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Checks the signature and the expiry.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_signature(token)?;
        let now = self.now();
        if claims.exp <= now {
            return Err(VerifyError::Expired {
                exp: claims.exp,
                now,
            });
        }
        Ok(claims)
    }

    /// Checks the signature only.
    pub(crate) fn verify_signature(&self, token: &str) -> Result<Claims, VerifyError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Parse(e.to_string()))
    }
}

/// `(exp, expires_at, ttl)` for a token made at `now_ms` (Unix
/// milliseconds): `exp` whole seconds (PyJWT drops the fraction), `expires_at`
/// with microseconds as Python's `datetime.isoformat()` prints them.
fn expiry_of(expiry: Expiry, now_ms: i64) -> (i64, String, u64) {
    let now = Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    match expiry {
        Expiry::After(ttl) => {
            let at = now.saturating_add(Duration::from_secs(ttl.as_secs()));
            let exp = i64::try_from(at.as_secs()).unwrap_or(i64::MAX);
            (exp, iso8601_micros(exp, at.subsec_micros()), ttl.as_secs())
        }
        Expiry::At(exp) => {
            let ttl = u64::try_from(exp.saturating_sub(now_of(now))).unwrap_or(0);
            (exp, iso8601_micros(exp, now.subsec_micros()), ttl)
        }
    }
}

fn now_of(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Python's `datetime.isoformat()` of an aware UTC time
/// (`2026-01-02T03:04:05.123456+00:00`): the fraction appears only when it is
/// not zero.
pub(crate) fn iso8601_micros(unix: i64, micros: u32) -> String {
    let Ok(t) = jiff::Timestamp::from_second(unix) else {
        return String::new();
    };
    let base = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// An HTTP-date (`Wed, 24 Jan 2024 15:27:53 GMT`): how Flask's JSON encoder
/// renders a `datetime` (flask/json/provider.py, `_default`: `http_date`).
pub(crate) fn http_date(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .ok()
        .and_then(|t| {
            jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&t)
                .ok()
        })
        .unwrap_or_default()
}

/// A random UUID-shaped id (for `jti`; tokens-api uses `uuid.uuid4()`).
pub(crate) fn new_id() -> String {
    let b: [u8; 16] = rand::rng().random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A random string of `len` letters and digits (client keys, device codes).
pub(crate) fn random_code(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A random string of `len` ASCII letters (the Authenticator's user codes:
/// models.py, `DeviceCode.generate_user_code`).
pub(crate) fn random_letters(len: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(LETTERS[rng.random_range(0..LETTERS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Subject<'static> {
        Subject {
            tenant: "designsafe",
            username: "u",
            client_id: Some("c"),
            grant_type: "password",
        }
    }

    #[test]
    fn signs_verifies_and_expires() {
        let s = Signer::new("http://x/v3/tokens".into(), Clock::system());
        let (t, r) = s
            .sign_pair(
                &who(),
                Expiry::After(Duration::from_secs(60)),
                Some((Duration::from_secs(600), 0)),
            )
            .unwrap();
        let c = s.verify(&t.jwt).unwrap();
        assert_eq!(c.username(), "u");
        assert_eq!(c.sub, "u@designsafe");
        assert_eq!(c.access_token.as_ref().map(|a| a.username.as_str()), None);
        assert_eq!(t.expires_in, 60);
        let r = s.verify(&r.unwrap().jwt).unwrap();
        assert_eq!(r.token_type, TokenType::Refresh);
        let nested = r.access_token.as_ref().expect("nested access claims");
        assert_eq!(r.username(), "u");
        assert_eq!(nested.client_id.as_deref(), Some("c"));
        let (old, _) = s
            .sign_pair(&who(), Expiry::After(Duration::ZERO), None)
            .unwrap();
        assert!(matches!(
            s.verify(&old.jwt),
            Err(VerifyError::Expired { .. })
        ));
        let other = Signer::new("x".into(), Clock::system());
        assert!(matches!(other.verify(&t.jwt), Err(VerifyError::Parse(_))));
        assert!(matches!(s.verify("nope"), Err(VerifyError::Parse(_))));
    }

    #[test]
    fn times_print_as_python_and_flask_do() {
        assert_eq!(iso8601_micros(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601_micros(0, 42), "1970-01-01T00:00:00.000042+00:00");
        assert_eq!(http_date(1_706_110_073), "Wed, 24 Jan 2024 15:27:53 GMT");
    }
}
