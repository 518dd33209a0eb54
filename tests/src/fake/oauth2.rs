//! Authenticator token endpoints: `create_token` (password, refresh_token and
//! device_code grants), `generate_device_code` and `revoke_token`, answering as
//! tapis-project/authenticator, service/controllers.py (`TokensResource.post`,
//! `DeviceCodeResource.post`, `RevokeTokensResource.post`) and service/models.py
//! (`DeviceCode`). Every error there is a tapisservice `ResourceError`, which
//! tapisservice/tapisflask/utils.py `handle_error` answers 400 with the message
//! as is (tapisservice/errors.py: `BaseTapisError` defaults to code 400).

use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    FakeControl,
    envelope::{ApiError, ApiResult, authn_body, success},
    jwt::{
        Expiry, Signed, Subject, TokenType, VerifyError, http_date, random_code, random_letters,
    },
    state::{DeviceGrant, Shared},
};

/// How long a device code can be entered and redeemed (models.py,
/// `DeviceCode.CODE_TTL`), and the clock-skew allowance of
/// `DeviceCode.validate_code`.
const DEVICE_CODE_TTL_SECS: i64 = 600;
const DEVICE_CODE_FUDGE_SECS: i64 = 6;

/// What `{session}` prints as in the Authenticator's messages: an API caller
/// sends no session cookie, so Flask's session is empty.
const SESSION: &str = "<SecureCookieSession {}>";

/// The grant types a tenant allows by default (models.py,
/// `initialize_tenant_configs`), as Python prints the list.
const ALLOWED_GRANTS: [&str; 5] = [
    "password",
    "implicit",
    "authorization_code",
    "refresh_token",
    "device_code",
];

/// Body of `POST /v3/oauth2/tokens` (NewToken in the spec). No `Debug`: it holds
/// secrets.
#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
}

impl TokenRequest {
    /// A form body carries no `client_id` or `device_code` (models.py,
    /// `TokenRequestBody` reads only the other fields).
    pub(crate) fn without_form_fields(mut self) -> Self {
        self.client_id = None;
        self.device_code = None;
        self
    }
}

/// Python's `f"{value}"` of an optional string.
fn py(value: Option<&str>) -> &str {
    value.unwrap_or("None")
}

/// `POST /v3/oauth2/tokens` (`create_token`), following `TokensResource.post`
/// step by step: the grant type, the client check, then the grant's own checks.
pub(crate) async fn create_token(State(fake): State<FakeControl>, req: Request) -> ApiResult {
    let shared = &fake.shared;
    if !req.headers().contains_key(header::CONTENT_TYPE) {
        // `request.content_type.startswith(...)` on None raises an
        // AttributeError, which `handle_error` answers 500.
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unrecognized exception type: <class 'AttributeError'>. Exception: 'NoneType' object has no attribute 'startswith'",
        ));
    }
    let (mut client_id, mut client_key) = basic_client(req.headers()).unzip();
    let body: TokenRequest = authn_body(req, TokenRequest::without_form_fields).await?;
    let Some(grant_type) = body.grant_type.clone() else {
        return Err(ApiError::bad_request(
            "Missing the required grant_type parameter.",
        ));
    };
    if !ALLOWED_GRANTS.contains(&grant_type.as_str()) {
        let allowed: Vec<String> = ALLOWED_GRANTS.iter().map(|g| format!("'{g}'")).collect();
        return Err(ApiError::bad_request(format!(
            "Invalid grant_type ({grant_type}); this grant type is not allowed for this tenant. \
             Allowable grant types: [{}]",
            allowed.join(", ")
        )));
    }
    let mut device_user = None;
    if grant_type == "device_code" {
        // The body's client id wins; the key is the one stored with the code.
        let grant = redeem_device_code(shared, &body)?;
        client_id = Some(grant.client_id);
        client_key = Some(grant.client_key);
        device_user = grant.approved_by;
    }
    let (id, key) = (client_id.as_deref(), client_key.as_deref());
    // A password grant may come without a client; everything else needs one.
    if !(id.is_none() && key.is_none() && grant_type == "password") {
        check_client(shared, id, key)?;
    }
    let with_client = id.is_some_and(|i| !i.is_empty()) && key.is_some_and(|k| !k.is_empty());
    let issued = match grant_type.as_str() {
        "password" => {
            let (Some(username), Some(password)) = (&body.username, &body.password) else {
                return Err(ApiError::bad_request(
                    "Missing required payload data; username and password are required for the password grant type.",
                ));
            };
            // service/ldap.py, `check_username_password`: an unknown user fails the
            // LDAP bind just as a wrong password does.
            if shared.users.get(username) != Some(password) {
                return Err(ApiError::bad_request(
                    "Invalid username/password combination.",
                ));
            }
            Issue::new(username.clone(), "password", shared.token_ttl, 0)
        }
        "refresh_token" => refresh_grant(shared, id, &body)?,
        "device_code" => Issue::new(
            device_user.unwrap_or_default(),
            "device_code",
            shared.device_token_ttl,
            0,
        ),
        // authorization_code and implicit are web flows this fake does not serve.
        _ => return Err(ApiError::bad_request("Invalid grant_type")),
    };
    let result = issue(shared, &issued, id.filter(|_| with_client), with_client)?;
    Ok(success(
        StatusCode::OK,
        "Token created successfully.",
        result,
    ))
}

/// What to sign.
struct Issue {
    username: String,
    grant_type: &'static str,
    access_ttl: Duration,
    refresh_count: u64,
}

impl Issue {
    fn new(
        username: String,
        grant_type: &'static str,
        access_ttl: Duration,
        refresh_count: u64,
    ) -> Self {
        Issue {
            username,
            grant_type,
            access_ttl,
            refresh_count,
        }
    }
}

/// The refresh grant's checks, in `TokensResource.post` order. The new access
/// token gets the tenant's default lifetime and the new refresh token a full
/// one; the used refresh token stays valid (no rotation) unless
/// `rotate_refresh_tokens` is set.
fn refresh_grant(
    shared: &Shared,
    header_client: Option<&str>,
    body: &TokenRequest,
) -> Result<Issue, ApiError> {
    let Some(token) = &body.refresh_token else {
        return Err(ApiError::bad_request(
            "Required refresh_token parameter missing.",
        ));
    };
    let invalid = || ApiError::bad_request("Invalid refresh_token.");
    let claims = shared.signer.verify(token).map_err(|_| invalid())?;
    if claims.token_type != TokenType::Refresh {
        return Err(ApiError::bad_request(format!(
            "Invalid token type. The refresh_token grant type required a token of type refresh. \
             Instead a token of type {} was passed.",
            match claims.token_type {
                TokenType::Access => "access",
                TokenType::Refresh => "refresh",
            }
        )));
    }
    let Some(nested) = &claims.access_token else {
        return Err(ApiError::bad_request(
            "Invalid refresh_token format; this token was missing the access_token claim.",
        ));
    };
    if header_client != nested.client_id.as_deref() {
        return Err(ApiError::bad_request(format!(
            "client_id from header ({}) does not match the client_id in the token claim ({}).",
            py(header_client),
            py(nested.client_id.as_deref())
        )));
    }
    // The fixture `revoke_all_refresh_tokens`, an enforced revocation and the
    // opt-in rotation are the only ways a signed, unexpired refresh token dies.
    let live = {
        let mut inner = shared.lock();
        if shared.rotate_refresh_tokens {
            inner.live_refresh.remove(&claims.jti)
        } else {
            inner.live_refresh.contains(&claims.jti)
        }
    };
    if !live {
        return Err(invalid());
    }
    Ok(Issue::new(
        nested.username.clone(),
        "refresh_token",
        shared.token_ttl,
        nested.refresh_count.unwrap_or(0) + 1,
    ))
}

/// `DeviceCode.validate_code` then `consume_code`: the code must exist, have
/// been entered by the user, and not be expired; then it is deleted, so a second
/// use is "not valid".
fn redeem_device_code(shared: &Shared, body: &TokenRequest) -> Result<DeviceGrant, ApiError> {
    let Some(client_id) = &body.client_id else {
        return Err(ApiError::bad_request(
            "Required client_id parameter missing.",
        ));
    };
    let Some(code) = &body.device_code else {
        return Err(ApiError::bad_request(
            "Required device_code parameter missing.",
        ));
    };
    let mut inner = shared.lock();
    let Some(grant) = inner.devices.get(code) else {
        return Err(ApiError::bad_request("device code not valid."));
    };
    if grant.approved_by.is_none() {
        return Err(ApiError::bad_request("device code not ready."));
    }
    if shared.now() > grant.expires_at + DEVICE_CODE_FUDGE_SECS {
        inner.devices.remove(code);
        return Err(ApiError::bad_request(
            "device code has expired and is now deleted.",
        ));
    }
    if &grant.client_id != client_id {
        return Err(ApiError::bad_request(
            "Client IDs do not match between device code and passed in client_id",
        ));
    }
    Ok(inner.devices.remove(code).expect("looked up above"))
}

/// Signs the tokens and renders the `TokenResponse`; a refresh token only for a
/// request made with client credentials.
fn issue(
    shared: &Shared,
    what: &Issue,
    client_id: Option<&str>,
    with_refresh: bool,
) -> Result<Value, ApiError> {
    let who = Subject {
        tenant: &shared.tenant,
        username: &what.username,
        client_id,
        grant_type: what.grant_type,
    };
    let refresh = with_refresh.then_some((shared.refresh_ttl, what.refresh_count));
    let (access, refresh) = shared
        .signer
        .sign_pair(&who, Expiry::After(what.access_ttl), refresh)
        .map_err(|_| {
            ApiError::bad_request("Failure to generate an access token; please try again later.")
        })?;
    let mut result = json!({ "access_token": token_json("access_token", &access) });
    if let Some(refresh) = refresh {
        shared.lock().live_refresh.insert(refresh.jti.clone());
        result["refresh_token"] = token_json("refresh_token", &refresh);
    }
    Ok(result)
}

fn token_json(field: &str, token: &Signed) -> Value {
    json!({
        field: token.jwt,
        "expires_at": token.expires_at,
        "expires_in": token.expires_in,
        "jti": token.jti,
    })
}

/// Client id and key from `Authorization: Basic ...`. Like Flask's
/// `request.authorization`, a malformed header counts as none.
fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let text = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, key) = text.split_once(':')?;
    Some((id.to_owned(), key.to_owned()))
}

/// The client check of `TokensResource.post`: a client with this id and key in
/// the tenant, active or not (the query does not filter on `active`). The
/// message echoes the key, as the live one does.
fn check_client(shared: &Shared, id: Option<&str>, key: Option<&str>) -> Result<(), ApiError> {
    let known = id
        .and_then(|id| shared.lock().clients.get(id).map(|c| c.client_key.clone()))
        .is_some_and(|stored| Some(stored.as_str()) == key);
    if known {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "Invalid client credentials: {}, {}. session: {SESSION}",
        py(id),
        py(key)
    )))
}

#[derive(Deserialize)]
pub(crate) struct DeviceCodeRequest {
    client_id: Option<String>,
}

/// `POST /v3/oauth2/device/code` (`generate_device_code`, `DeviceCodeResource.post`).
/// `expires_in` is the code's expiry time, a `datetime`, which Flask renders as
/// an HTTP-date string.
pub(crate) async fn generate_device_code(
    State(fake): State<FakeControl>,
    req: Request,
) -> ApiResult {
    let shared = &fake.shared;
    let body: DeviceCodeRequest = authn_body(req, |b| b).await?;
    // The spec makes client_id required, so the request validator refuses it.
    let Some(client_id) = body.client_id else {
        return Err(ApiError::bad_request(
            "Invalid POST data: ['client_id' is a required property].",
        ));
    };
    let device_code = random_code(40);
    let user_code = random_letters(8);
    let expires_at = shared.now() + DEVICE_CODE_TTL_SECS;
    {
        let mut inner = shared.lock();
        let Some(client_key) = inner.clients.get(&client_id).map(|c| c.client_key.clone()) else {
            return Err(ApiError::bad_request(format!(
                "Invalid client: {client_id}"
            )));
        };
        inner.devices.insert(
            device_code.clone(),
            DeviceGrant {
                client_id: client_id.clone(),
                client_key,
                user_code: user_code.clone(),
                expires_at,
                approved_by: None,
            },
        );
    }
    Ok(success(
        StatusCode::OK,
        "Token created successfully.",
        json!({
            "client_id": client_id,
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": format!("{}/v3/oauth2/device?client_id={client_id}", shared.base_url),
            "expires_in": http_date(expires_at),
        }),
    ))
}

#[derive(Deserialize)]
pub(crate) struct RevokeRequest {
    token: Option<String>,
}

/// `POST /v3/oauth2/tokens/revoke` (`revoke_token`, `RevokeTokensResource.post`).
/// The token must still validate (signature and expiry, tapisservice
/// `validate_token`); the revocation is recorded, and only refused later with
/// `enforce_revocation`.
pub(crate) async fn revoke_token(State(fake): State<FakeControl>, req: Request) -> ApiResult {
    let shared = &fake.shared;
    let body: RevokeRequest = authn_body(req, |b| b).await?;
    let Some(token) = body.token else {
        return Err(ApiError::bad_request(
            "No Tapis access token found in the request.",
        ));
    };
    let claims = shared.signer.verify(&token).map_err(|e| {
        let why = match e {
            VerifyError::Parse(_) if token.split('.').count() != 3 => {
                "Could not parse the Tapis access token."
            }
            _ => "Invalid Tapis token.",
        };
        ApiError::bad_request(format!(
            "Invalid POST data; could not validate the token: debug data: {why}."
        ))
    })?;
    let jti = claims.jti.clone();
    {
        let mut inner = shared.lock();
        if shared.enforce_revocation {
            inner.live_refresh.remove(&claims.jti);
        }
        inner.revoked.insert(claims.jti);
    }
    Ok(success(
        StatusCode::OK,
        format!("Token {jti} has been revoked."),
        json!(""),
    ))
}
