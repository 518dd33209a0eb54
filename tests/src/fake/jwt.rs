//! Signing and checking the fake's JWTs (HS256 with a secret made per instance).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The claims Tapis puts in its tokens (the subset clients read).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) jti: String,
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    #[serde(rename = "tapis/tenant_id")]
    pub(crate) tenant_id: String,
    #[serde(rename = "tapis/token_type")]
    pub(crate) token_type: TokenType,
    #[serde(rename = "tapis/delegation")]
    pub(crate) delegation: bool,
    #[serde(rename = "tapis/username")]
    pub(crate) username: String,
    #[serde(rename = "tapis/account_type")]
    pub(crate) account_type: String,
    #[serde(
        rename = "tapis/client_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) client_id: Option<String>,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// Not a JWT, or not signed by this instance.
    Parse(String),
    /// Signed by us, but `exp` has passed.
    Expired { exp: i64 },
}

/// When a token expires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry {
    /// This long after its `iat`.
    After(Duration),
    /// At this unix second.
    At(i64),
}

/// A freshly signed token.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) jwt: String,
    pub(crate) claims: Claims,
}

/// Signs and checks tokens with this instance's secret.
pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
}

impl Signer {
    pub(crate) fn new(issuer: String) -> Self {
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
        }
    }

    /// Signs a token for `username`.
    pub(crate) fn sign(
        &self,
        tenant: &str,
        username: &str,
        token_type: TokenType,
        client_id: Option<&str>,
        expiry: Expiry,
    ) -> Result<Signed, jsonwebtoken::errors::Error> {
        // One reading of the clock, so `exp - iat` is exactly the lifetime.
        let iat = now();
        let exp = match expiry {
            Expiry::After(ttl) => {
                iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
            }
            Expiry::At(exp) => exp,
        };
        let claims = Claims {
            jti: new_id(),
            iss: self.issuer.clone(),
            sub: format!("{username}@{tenant}"),
            iat,
            exp,
            tenant_id: tenant.into(),
            token_type,
            delegation: false,
            username: username.into(),
            account_type: "user".into(),
            client_id: client_id.map(str::to_owned),
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Signed { jwt, claims })
    }

    /// Checks the signature and the expiry.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_signature(token)?;
        if claims.exp <= now() {
            return Err(VerifyError::Expired { exp: claims.exp });
        }
        Ok(claims)
    }

    /// Checks the signature only (revoking an expired token is fine).
    pub(crate) fn verify_signature(&self, token: &str) -> Result<Claims, VerifyError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Parse(e.to_string()))
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// ISO-8601 UTC the way the Authenticator prints it (`2026-01-02T03:04:05+00:00`).
pub(crate) fn iso8601(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

/// A random UUID-shaped id (for `jti`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_expires() {
        let s = Signer::new("http://x/v3/tokens".into());
        let t = s
            .sign(
                "designsafe",
                "u",
                TokenType::Access,
                None,
                Expiry::After(Duration::from_secs(60)),
            )
            .unwrap();
        let c = s.verify(&t.jwt).unwrap();
        assert_eq!(c.username, "u");
        assert_eq!(c.sub, "u@designsafe");
        let old = s
            .sign(
                "designsafe",
                "u",
                TokenType::Access,
                None,
                Expiry::After(Duration::ZERO),
            )
            .unwrap();
        assert!(matches!(
            s.verify(&old.jwt),
            Err(VerifyError::Expired { .. })
        ));
        let other = Signer::new("x".into());
        assert!(matches!(other.verify(&t.jwt), Err(VerifyError::Parse(_))));
        assert!(matches!(s.verify("nope"), Err(VerifyError::Parse(_))));
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+00:00");
    }
}
