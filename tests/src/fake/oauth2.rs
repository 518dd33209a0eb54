//! Authenticator token endpoints: `create_token` (password, refresh_token and
//! device_code grants), `generate_device_code` and `revoke_token`.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    FakeControl,
    envelope::{ApiError, ApiResult, json_or_form, success},
    jwt::{Expiry, Signed, TokenType, VerifyError, iso8601, now, random_code},
    state::{DeviceGrant, Shared},
};

/// How long a device code can be approved and redeemed.
const DEVICE_CODE_TTL_SECS: i64 = 600;

/// Body of `POST /v3/oauth2/tokens` (NewToken in the spec). No `Debug`: it holds
/// secrets.
#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
}

/// `POST /v3/oauth2/tokens` (`create_token`).
pub(crate) async fn create_token(State(fake): State<FakeControl>, req: Request) -> ApiResult {
    let shared = &fake.shared;
    let client = basic_client(req.headers())?;
    let body: TokenRequest = json_or_form(req)
        .await
        .map_err(|e| ApiError::bad_request(format!("AUTH_INVALID_REQUEST {e}")))?;
    let result = match body.grant_type.as_deref() {
        Some("password") => password_grant(shared, client, &body)?,
        Some("refresh_token") => refresh_grant(shared, client, &body)?,
        Some("device_code") => device_grant(shared, &body)?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "AUTH_UNSUPPORTED_GRANT_TYPE Unsupported grant_type {other:?}; use password, refresh_token or device_code."
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "AUTH_INVALID_REQUEST grant_type is required.",
            ));
        }
    };
    Ok(success(
        StatusCode::CREATED,
        "AUTH_TOKEN_CREATED Token created successfully.",
        result,
    ))
}

fn password_grant(
    shared: &Shared,
    client: Option<(String, String)>,
    body: &TokenRequest,
) -> Result<Value, ApiError> {
    let (Some(username), Some(password)) = (&body.username, &body.password) else {
        return Err(ApiError::bad_request(
            "AUTH_INVALID_REQUEST The password grant requires username and password.",
        ));
    };
    if let Some((id, key)) = &client {
        check_client(shared, id, key)?;
    }
    if shared.users.get(username) != Some(password) {
        return Err(ApiError::unauthorized(
            "AUTH_INVALID_CREDENTIALS Invalid username/password combination.",
        ));
    }
    // Tapis issues a refresh token only to requests made with client credentials.
    let client_id = client.as_ref().map(|(id, _)| id.as_str());
    issue(shared, username, client_id, client_id.is_some())
}

fn refresh_grant(
    shared: &Shared,
    client: Option<(String, String)>,
    body: &TokenRequest,
) -> Result<Value, ApiError> {
    let Some((id, key)) = client else {
        return Err(ApiError::bad_request(
            "AUTH_INVALID_REQUEST The refresh_token grant requires client credentials (HTTP Basic auth).",
        ));
    };
    check_client(shared, &id, &key)?;
    let Some(token) = &body.refresh_token else {
        return Err(ApiError::bad_request(
            "AUTH_INVALID_REQUEST The refresh_token grant requires refresh_token.",
        ));
    };
    let invalid = |why: &str| ApiError::unauthorized(format!("AUTH_INVALID_REFRESH_TOKEN {why}"));
    let claims = shared.signer.verify(token).map_err(|e| match e {
        VerifyError::Expired { .. } => invalid("The refresh token has expired."),
        VerifyError::Parse(_) => invalid("The refresh token could not be validated."),
    })?;
    if claims.token_type != TokenType::Refresh {
        return Err(invalid("The token is not a refresh token."));
    }
    if claims.client_id.as_deref() != Some(id.as_str()) {
        return Err(invalid("The refresh token was not issued to this client."));
    }
    // Rotation (opt-in): each refresh token is good for exactly one refresh.
    // Otherwise it stays valid, as at Tapis, unless a fixture revoked it.
    let live = {
        let mut inner = shared.lock();
        if shared.rotate_refresh_tokens {
            inner.live_refresh.remove(&claims.jti)
        } else {
            inner.live_refresh.contains(&claims.jti)
        }
    };
    if !live {
        return Err(invalid(
            "The refresh token has been revoked or already used.",
        ));
    }
    issue(shared, &claims.username, Some(&id), true)
}

fn device_grant(shared: &Shared, body: &TokenRequest) -> Result<Value, ApiError> {
    let (Some(device_code), Some(client_id)) = (&body.device_code, &body.client_id) else {
        return Err(ApiError::bad_request(
            "AUTH_INVALID_REQUEST The device_code grant requires device_code and client_id.",
        ));
    };
    let username = {
        let mut inner = shared.lock();
        let grant = match inner.devices.get(device_code) {
            Some(grant) if &grant.client_id == client_id => grant,
            _ => {
                return Err(ApiError::bad_request(
                    "AUTH_INVALID_DEVICE_CODE Unknown device code for this client.",
                ));
            }
        };
        if grant.expires_at <= now() {
            inner.devices.remove(device_code);
            return Err(ApiError::bad_request(
                "AUTH_DEVICE_CODE_EXPIRED The device code has expired; request a new one.",
            ));
        }
        let Some(username) = grant.approved_by.clone() else {
            return Err(ApiError::bad_request(
                "AUTH_DEVICE_CODE_PENDING Device code not ready: authorization_pending; the user has not entered the code yet.",
            ));
        };
        inner.devices.remove(device_code);
        username
    };
    issue(shared, &username, Some(client_id), true)
}

/// Signs an access token (and a refresh token) and renders the `TokenResponse`.
fn issue(
    shared: &Shared,
    username: &str,
    client_id: Option<&str>,
    with_refresh: bool,
) -> Result<Value, ApiError> {
    let sign = |token_type, ttl| {
        shared
            .signer
            .sign(
                &shared.tenant,
                username,
                token_type,
                client_id,
                Expiry::After(ttl),
            )
            .map_err(|e| ApiError::internal(format!("AUTH_SIGNING_FAILED {e}")))
    };
    let access = sign(TokenType::Access, shared.token_ttl)?;
    let mut result = json!({ "access_token": token_json("access_token", &access) });
    if with_refresh {
        let refresh = sign(TokenType::Refresh, shared.refresh_ttl)?;
        shared
            .lock()
            .live_refresh
            .insert(refresh.claims.jti.clone());
        result["refresh_token"] = token_json("refresh_token", &refresh);
    }
    Ok(result)
}

fn token_json(field: &str, token: &Signed) -> Value {
    json!({
        field: token.jwt,
        "expires_at": iso8601(token.claims.exp),
        "expires_in": token.claims.exp - token.claims.iat,
        "jti": token.claims.jti,
    })
}

/// Client id and key from `Authorization: Basic ...`, if sent.
fn basic_client(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || ApiError::unauthorized("AUTH_INVALID_CLIENT Malformed HTTP Basic credentials.");
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(bad)?;
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, key) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((id.to_owned(), key.to_owned())))
}

fn check_client(shared: &Shared, id: &str, key: &str) -> Result<(), ApiError> {
    match shared.lock().clients.get(id) {
        Some(client) if client.client_key == key => Ok(()),
        _ => Err(ApiError::unauthorized(
            "AUTH_INVALID_CLIENT Invalid client credentials.",
        )),
    }
}

#[derive(Deserialize)]
struct DeviceCodeRequest {
    client_id: Option<String>,
}

/// `POST /v3/oauth2/device/code` (`generate_device_code`).
pub(crate) async fn generate_device_code(
    State(fake): State<FakeControl>,
    req: Request,
) -> ApiResult {
    let shared = &fake.shared;
    let body: DeviceCodeRequest = json_or_form(req)
        .await
        .map_err(|e| ApiError::bad_request(format!("AUTH_INVALID_REQUEST {e}")))?;
    let Some(client_id) = body.client_id else {
        return Err(ApiError::bad_request(
            "AUTH_INVALID_REQUEST client_id is required.",
        ));
    };
    let device_code = random_code(40);
    let user_code = random_code(8).to_uppercase();
    {
        let mut inner = shared.lock();
        if !inner.clients.contains_key(&client_id) {
            return Err(ApiError::bad_request(format!(
                "AUTH_INVALID_CLIENT Unknown client_id {client_id:?}."
            )));
        }
        inner.devices.insert(
            device_code.clone(),
            DeviceGrant {
                client_id: client_id.clone(),
                user_code: user_code.clone(),
                expires_at: now() + DEVICE_CODE_TTL_SECS,
                approved_by: None,
            },
        );
    }
    Ok(success(
        StatusCode::OK,
        "AUTH_DEVICE_CODE_CREATED Device code generated; enter the user code at the verification URI.",
        json!({
            "client_id": client_id,
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": format!("{}/v3/oauth2/device", shared.base_url),
            "expires_in": DEVICE_CODE_TTL_SECS,
        }),
    ))
}

#[derive(Deserialize)]
struct RevokeRequest {
    token: Option<String>,
}

/// `POST /v3/oauth2/tokens/revoke` (`revoke_token`).
pub(crate) async fn revoke_token(State(fake): State<FakeControl>, req: Request) -> ApiResult {
    let shared = &fake.shared;
    let body: RevokeRequest = json_or_form(req)
        .await
        .map_err(|e| ApiError::bad_request(format!("AUTH_INVALID_REQUEST {e}")))?;
    let Some(token) = body.token else {
        return Err(ApiError::bad_request(
            "AUTH_INVALID_REQUEST token is required.",
        ));
    };
    let claims = shared.signer.verify_signature(&token).map_err(|_| {
        ApiError::bad_request("AUTH_INVALID_TOKEN The token could not be validated.")
    })?;
    {
        let mut inner = shared.lock();
        if shared.enforce_revocation {
            inner.live_refresh.remove(&claims.jti);
        }
        inner.revoked.insert(claims.jti);
    }
    Ok(success(
        StatusCode::OK,
        "AUTH_TOKEN_REVOKED Token has been revoked.",
        Value::Null,
    ))
}
