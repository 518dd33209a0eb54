//! Reads JWT claims without verifying the signature (the server verifies;
//! this is what tapipy does too).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims the agent cares about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: Option<i64>,
    /// Tapis username.
    #[serde(rename = "tapis/username", default)]
    pub username: Option<String>,
    /// Tenant id.
    #[serde(rename = "tapis/tenant_id", default)]
    pub tenant: Option<String>,
    /// `access` or `refresh`.
    #[serde(rename = "tapis/token_type", default)]
    pub token_type: Option<String>,
    /// OAuth client the token was issued to.
    #[serde(rename = "tapis/client_id", default)]
    pub client_id: Option<String>,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Tapis JWT: {0}")]
pub struct JwtError(&'static str);

/// Decodes the payload of a JWT.
pub fn claims(token: &str) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError("expected three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| JwtError("payload is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError("payload lacks an exp claim"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_tapis_claims() {
        let c = claims(&token(
            r#"{"exp":10,"iat":1,"tapis/username":"u","tapis/tenant_id":"t","x":1}"#,
        ))
        .unwrap();
        assert_eq!(c.exp, 10);
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.tenant.as_deref(), Some("t"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(claims("abc").is_err());
        assert!(claims("a.b.c.d").is_err());
        assert!(claims(&token("{}")).is_err());
        assert!(claims("a.!!!.c").is_err());
    }
}
