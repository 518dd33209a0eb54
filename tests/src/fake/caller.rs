//! The `X-Tapis-Token` checks in front of the endpoints. Two kinds, as at Tapis:
//! - [`Caller`]: the Java services' JWT filter (tapis-project/tapis-shared-java,
//!   sharedapi/jaxrs/filters/JWTValidateRequestFilter.java, `filter`), which
//!   answers 401 with a plain-text message from TapisMessages.properties;
//! - [`AuthnCaller`]: the Authenticator's own check (tapipy-tapisservice,
//!   tapisservice/auth.py `validate_request_token` / `validate_token`), whose
//!   errors are tapisservice errors: 400 with a JSON envelope.
//!
//! Neither looks revocations up. In front of both, the deployment's nginx
//! proxy asks the site router about every request that carries a token
//! (tapis-deployer, playbooks/roles/proxy/templates/kube/nginx/locations/
//! site-router-token-check.conf, `location /_auth`) and answers a revoked
//! one with its own 500 (`error_page 500 /token-revoked.json` in
//! locations/systems.conf and locations/authenticator.conf). The fake does
//! that only with `enforce_revocation`.

use axum::{
    Json,
    extract::FromRequestParts,
    http::{HeaderMap, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};

use super::{
    FakeControl,
    envelope::{ApiError, VERSION},
    jwt::{Claims, TokenType, VerifyError},
    state::Shared,
};
use serde_json::json;

/// The user a valid access token speaks for.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) username: String,
    pub(crate) tenant: String,
}

/// Why the token was refused.
#[derive(Debug)]
pub(crate) enum TokenRejection {
    Missing(Method),
    Parse(String),
    /// Expired at `now` (Unix seconds).
    Expired(Box<Claims>, i64),
    /// The proxy's check found the token revoked (`enforce_revocation`).
    Revoked,
    NotAccess(&'static str),
}

impl TokenRejection {
    /// The JWT filter's plain-text message.
    fn filter_message(&self) -> String {
        match self {
            TokenRejection::Missing(method) => format!(
                "TAPIS_SECURITY_MISSING_JWT_INFO HTTP {method} request rejected due to missing JSON Web Token information."
            ),
            TokenRejection::Parse(why) => {
                format!("TAPIS_SECURITY_JWT_PARSE_ERROR Unable to parse JWT. Error: {why}")
            }
            // `decodeJwt`: jjwt's ExpiredJwtException message, then `buildClaimsMsg`.
            TokenRejection::Expired(c, now) => {
                let now = *now;
                format!(
                    "TAPIS_SECURITY_JWT_EXPIRED Exception message: JWT expired at {}. Current time: {}, \
                     a difference of {} milliseconds.  Allowed clock skew: 0 milliseconds. Claims: \
                     iss: {} sub: {} tapis/tenant_id: {} tapis/username: {} tapis/account_type: {}",
                    utc(c.exp),
                    utc(now),
                    (now - c.exp).max(0) * 1000,
                    c.iss,
                    c.sub,
                    c.tenant_id,
                    c.username(),
                    c.account_type.as_deref().unwrap_or("null"),
                )
            }
            TokenRejection::Revoked => TOKEN_REVOKED.into(),
            TokenRejection::NotAccess(kind) => {
                format!(
                    "TAPIS_SECURITY_JWT_INVALID_CLAIM Invalid JWT claim tapis/token_type = {kind}"
                )
            }
        }
    }

    /// The Authenticator's JSON message (tapisservice/auth.py).
    fn authn_message(&self) -> &'static str {
        match self {
            TokenRejection::Missing(_) => "No Tapis access token found in the request.",
            TokenRejection::Parse(why) if why == NOT_A_JWT => {
                "Could not parse the Tapis access token."
            }
            _ => "Invalid Tapis token.",
        }
    }
}

/// jjwt prints instants as `yyyy-MM-ddTHH:mm:ssZ`.
fn utc(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The parse error of something that is not three dot-separated parts.
const NOT_A_JWT: &str = "JWT strings must contain exactly 2 period characters.";

/// The message of the proxy's `token-revoked.json`.
const TOKEN_REVOKED: &str = "Token is revoked.";

/// The proxy's answer for a revoked token: tapis-deployer,
/// playbooks/roles/proxy/templates/kube/nginx/token-revoked.json, served
/// with status 500 by `error_page 500`.
fn proxy_revoked() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({
            "status": "error",
            "message": TOKEN_REVOKED,
            "version": VERSION,
            "result": null,
        })),
    )
        .into_response()
}

impl IntoResponse for TokenRejection {
    fn into_response(self) -> Response {
        if matches!(self, TokenRejection::Revoked) {
            return proxy_revoked();
        }
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.filter_message(),
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
        counted(authenticate(parts, &fake.shared), &fake.shared)
    }
}

/// A caller of an Authenticator endpoint (the OAuth clients).
#[derive(Debug, Clone)]
pub(crate) struct AuthnCaller(pub(crate) Caller);

impl FromRequestParts<FakeControl> for AuthnCaller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        fake: &FakeControl,
    ) -> Result<Self, Self::Rejection> {
        counted(authenticate(parts, &fake.shared), &fake.shared)
            .map(AuthnCaller)
            .map_err(|r| match r {
                TokenRejection::Revoked => proxy_revoked(),
                r => ApiError::bad_request(r.authn_message()).into_response(),
            })
    }
}

/// Counts a refusal in the stats.
fn counted(
    result: Result<Caller, TokenRejection>,
    shared: &Shared,
) -> Result<Caller, TokenRejection> {
    if let Err(rejection) = &result {
        let mut inner = shared.lock();
        inner.stats.rejected_token += 1;
        if matches!(rejection, TokenRejection::Expired(..)) {
            inner.stats.expired_token += 1;
        }
    }
    result
}

fn authenticate(parts: &Parts, shared: &Shared) -> Result<Caller, TokenRejection> {
    let token = token_header(&parts.headers)
        .ok_or_else(|| TokenRejection::Missing(parts.method.clone()))?;
    if token.split('.').count() != 3 {
        return Err(TokenRejection::Parse(NOT_A_JWT.into()));
    }
    // The proxy asks before any service sees the call, expired or not.
    if shared.enforce_revocation
        && let Ok(claims) = shared.signer.verify_signature(token)
        && shared.lock().revoked.contains(&claims.jti)
    {
        return Err(TokenRejection::Revoked);
    }
    let claims = shared.signer.verify(token).map_err(|e| match e {
        VerifyError::Parse(why) => TokenRejection::Parse(why),
        VerifyError::Expired { now, .. } => match shared.signer.verify_signature(token) {
            Ok(claims) => TokenRejection::Expired(Box::new(claims), now),
            Err(VerifyError::Parse(why)) => TokenRejection::Parse(why),
            Err(VerifyError::Expired { .. }) => TokenRejection::Parse("expired".into()),
        },
    })?;
    if claims.token_type != TokenType::Access {
        return Err(TokenRejection::NotAccess("refresh"));
    }
    Ok(Caller {
        username: claims.username().to_owned(),
        tenant: claims.tenant_id,
    })
}

fn token_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-tapis-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
