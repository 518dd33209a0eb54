//! Reads JWT claims without verifying the signature (the server verifies;
//! this is what tapipy does too).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The claims the agent cares about. Read leniently: a claim of an unexpected
/// type counts as absent, so only a missing or unreadable `exp` fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds. Tapis tokens have none (tapis-project/tokens-api,
    /// service/models.py, `TapisAccessToken.claims_to_dict`).
    pub iat: Option<i64>,
    /// Tapis username (access tokens only; a refresh token nests it).
    pub username: Option<String>,
    /// Tenant id.
    pub tenant: Option<String>,
    /// `access` or `refresh`.
    pub token_type: Option<String>,
    /// OAuth client the token was issued to (`null` without one).
    pub client_id: Option<String>,
}

/// Seconds from a JSON number (integer or not) or a string of one.
pub fn seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.floor() as i64)
        }),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| f.is_finite().then(|| f.floor() as i64)),
        _ => None,
    }
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
    let payload: Value =
        serde_json::from_slice(&bytes).map_err(|_| JwtError("payload is not JSON"))?;
    let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(Claims {
        exp: payload
            .get("exp")
            .and_then(seconds)
            .ok_or(JwtError("payload lacks an exp claim"))?,
        iat: payload.get("iat").and_then(seconds),
        username: text("tapis/username"),
        tenant: text("tapis/tenant_id"),
        token_type: text("tapis/token_type"),
        client_id: text("tapis/client_id"),
    })
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
    fn odd_claim_types_do_not_break_reading() {
        let c = claims(&token(
            r#"{"exp":10.7,"iat":"x","tapis/username":7,"tapis/client_id":null}"#,
        ))
        .unwrap();
        assert_eq!(
            (c.exp, c.iat, c.username, c.client_id),
            (10, None, None, None)
        );
        assert_eq!(claims(&token(r#"{"exp":"12"}"#)).unwrap().exp, 12);
        assert!(claims(&token(r#"{"exp":true}"#)).is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(claims("abc").is_err());
        assert!(claims("a.b.c.d").is_err());
        assert!(claims(&token("{}")).is_err());
        assert!(claims("a.!!!.c").is_err());
    }
}
