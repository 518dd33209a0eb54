//! The `X-Tapis-Token` check in front of every Tapis endpoint, answering like the
//! services' JWT filter: 401 with a plain-text body.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};

use super::{
    FakeControl,
    jwt::{TokenType, VerifyError, iso8601, now},
    state::Shared,
};

/// The user a valid access token speaks for.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) username: String,
    pub(crate) tenant: String,
}

/// Why the token was refused; answered as plain text like the real filter.
#[derive(Debug)]
pub(crate) enum TokenRejection {
    Missing,
    Parse(String),
    Expired(i64),
    Revoked,
    NotAccess,
}

impl IntoResponse for TokenRejection {
    fn into_response(self) -> Response {
        let message = match self {
            TokenRejection::Missing => {
                "TAPIS_SECURITY_MISSING_JWT_INFO No JWT found in the X-Tapis-Token header.".into()
            }
            TokenRejection::Parse(why) => {
                format!("TAPIS_SECURITY_JWT_PARSE_ERROR Unable to parse or validate the JWT: {why}")
            }
            TokenRejection::Expired(exp) => format!(
                "TAPIS_SECURITY_JWT_EXPIRED The JWT expired at {} (current time {}).",
                iso8601(exp),
                iso8601(now())
            ),
            TokenRejection::Revoked => {
                "TAPIS_SECURITY_JWT_REVOKED The JWT has been revoked.".into()
            }
            TokenRejection::NotAccess => {
                "TAPIS_SECURITY_JWT_INVALID_CLAIM Claim tapis/token_type must be access.".into()
            }
        };
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    }
}

impl FromRequestParts<FakeControl> for Caller {
    type Rejection = TokenRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        fake: &FakeControl,
    ) -> Result<Self, Self::Rejection> {
        let result = authenticate(&parts.headers, &fake.shared);
        if let Err(rejection) = &result {
            let mut inner = fake.shared.lock();
            inner.stats.rejected_token += 1;
            if matches!(rejection, TokenRejection::Expired(_)) {
                inner.stats.expired_token += 1;
            }
        }
        result
    }
}

fn authenticate(headers: &HeaderMap, shared: &Shared) -> Result<Caller, TokenRejection> {
    let token = headers
        .get("x-tapis-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(TokenRejection::Missing)?;
    let claims = shared.signer.verify(token).map_err(|e| match e {
        VerifyError::Parse(why) => TokenRejection::Parse(why),
        VerifyError::Expired { exp } => TokenRejection::Expired(exp),
    })?;
    if claims.token_type != TokenType::Access {
        return Err(TokenRejection::NotAccess);
    }
    if shared.enforce_revocation && shared.lock().revoked.contains(&claims.jti) {
        return Err(TokenRejection::Revoked);
    }
    Ok(Caller {
        username: claims.username,
        tenant: claims.tenant_id,
    })
}
