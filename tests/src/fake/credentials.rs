//! Systems credential endpoints, answering as the table in `tapis-api.md`:
//! `checkUserCredential`, `createUserCredential`, `removeUserCredential`.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde_json::{Map, Value, json};

use super::{
    FakeControl,
    caller::Caller,
    config::{AuthnMethod, DYNAMIC_EFFECTIVE_USER, FakeSystem},
    envelope::{ApiError, ApiResult, success},
    state::{CredFixture, Shared},
    systems::{readable_system, unauthorized, who},
};

/// Body fields that carry a credential when no TMS keys are requested.
const CREDENTIAL_FIELDS: [&str; 8] = [
    "password",
    "privateKey",
    "publicKey",
    "accessKey",
    "accessSecret",
    "accessToken",
    "refreshToken",
    "certificate",
];

/// `POST /v3/systems/credential/{systemId}/user/{userName}/check`
/// (`checkUserCredential`).
pub(crate) async fn check_user_credential(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path((system, user)): Path<(String, String)>,
) -> ApiResult {
    let shared = &fake.shared;
    let sys = target(shared, &caller, &system, &user, "checkCredential")?;
    let state = shared.credential(&user, &system);
    let detail = format!(
        "{} System: {system} User: {user} AuthnMethod: {}",
        who(&caller),
        sys.default_authn_method.as_str()
    );
    let failed = |inner: String| {
        ApiError::unauthorized(format!(
            "SYSAPI_CRED_VALID_FAIL Credential validation failed. {detail} Message: {inner}"
        ))
    };
    match state {
        CredFixture::Present => Ok(success(
            StatusCode::OK,
            format!("SYSAPI_CRED_OK Credential check succeeded. {detail}"),
            Value::Null,
        )),
        CredFixture::Absent => Err(ApiError::unauthorized(format!(
            "SYSLIB_CRED_NOT_FOUND Credential not found for operation. {detail}"
        ))),
        CredFixture::Rejected => Err(failed(format!(
            "SYSLIB_CRED_VALID_FAIL Host {} rejected the registered credentials for user {user}.",
            sys.host
        ))),
        CredFixture::ConnFail => Err(failed(format!(
            "SYSLIB_CRED_CONN_FAIL Unable to connect to host {} port 22 to validate credentials.",
            sys.host
        ))),
    }
}

/// `POST /v3/systems/credential/{systemId}/user/{userName}` (`createUserCredential`).
pub(crate) async fn create_user_credential(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path((system, user)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let shared = &fake.shared;
    let sys = target(shared, &caller, &system, &user, "createCredential")?;
    let ctx = format!("{} System: {system} User: {user}", who(&caller));
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(format!(
            "SYSAPI_NULL_INPUT Request body is empty; send a JSON object. {ctx}"
        )));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiError::bad_request(format!(
            "SYSAPI_CRED_JSON_INVALID Request body is not a JSON object. {ctx}"
        )));
    };
    // Java parses booleans case-insensitively; Python clients send `True`.
    let create_tms_keys = query
        .get("createTmsKeys")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if create_tms_keys {
        tms_allowed(sys, &fields).map_err(|why| ApiError::bad_request(format!("{why} {ctx}")))?;
    } else if !CREDENTIAL_FIELDS.iter().any(|f| fields.contains_key(*f)) {
        return Err(ApiError::bad_request(format!(
            "SYSAPI_CRED_INPUT_EMPTY No credentials in the request and createTmsKeys is not true. {ctx}"
        )));
    }
    // Creating overwrites whatever was stored, rejected keys included.
    shared
        .lock()
        .creds
        .insert((user.clone(), system.clone()), CredFixture::Present);
    Ok(success(
        StatusCode::CREATED,
        format!("SYSAPI_CRED_UPDATED Credential updated. {ctx}"),
        Value::Null,
    ))
}

/// `DELETE /v3/systems/credential/{systemId}/user/{userName}` (`removeUserCredential`).
pub(crate) async fn remove_user_credential(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path((system, user)): Path<(String, String)>,
) -> ApiResult {
    let shared = &fake.shared;
    target(shared, &caller, &system, &user, "removeCredential")?;
    let removed = shared.lock().creds.remove(&(user.clone(), system.clone()));
    // Like the live service: 201 even when nothing was stored.
    Ok(success(
        StatusCode::CREATED,
        format!(
            "SYSAPI_CRED_DELETED Credential deleted. {} System: {system} User: {user}",
            who(&caller)
        ),
        json!({ "changes": u8::from(removed.is_some()) }),
    ))
}

/// The system, if the caller may manage `{user}`'s credentials on it.
fn target<'a>(
    shared: &'a Shared,
    caller: &Caller,
    system: &str,
    user: &str,
    operation: &str,
) -> Result<&'a FakeSystem, ApiError> {
    let sys = readable_system(shared, caller, system, operation)?;
    if user != caller.username && !shared.allow_cross_user {
        return Err(unauthorized(caller, system, operation));
    }
    Ok(sys)
}

/// Why TMS keys cannot be created on `sys`, as a `SYSLIB_CRED_TMS_KEYS_*` message.
fn tms_allowed(sys: &FakeSystem, fields: &Map<String, Value>) -> Result<(), String> {
    if sys.default_authn_method != AuthnMethod::TmsKeys {
        return Err(format!(
            "SYSLIB_CRED_TMS_KEYS_NOT_CONFIGURED TMS is not configured for system {}: its defaultAuthnMethod is {}.",
            sys.id,
            sys.default_authn_method.as_str()
        ));
    }
    if sys.effective_user_id != DYNAMIC_EFFECTIVE_USER {
        return Err(format!(
            "SYSLIB_CRED_TMS_KEYS_STATIC_USER TMS keys need a dynamic effectiveUserId; system {} uses {}.",
            sys.id, sys.effective_user_id
        ));
    }
    if fields.contains_key("loginUser") {
        return Err(
            "SYSLIB_CRED_TMS_KEYS_LOGIN_USER Mapping to a loginUser is not supported with TMS keys."
                .to_owned(),
        );
    }
    Ok(())
}
