//! Systems credential endpoints: `checkUserCredential`, `createUserCredential`,
//! `removeUserCredential`, as tapis-project/tapis-systems (branch tms-mvp)
//! answers them: tapis-systemsapi CredentialResource.java and ApiUtils.java,
//! tapis-systemslib CredentialsServiceImpl.java, CredUtils.java and AuthUtils.java.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde_json::{Map, Value};

use super::{
    FakeControl,
    caller::Caller,
    config::{AuthnMethod, DYNAMIC_EFFECTIVE_USER, FakeSystem},
    envelope::{ApiError, ApiResult, java_success},
    state::{CredFixture, Shared},
    systems::{api_who, existing_system, lib_who, unauthorized},
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
/// (`checkUserCredential`): `checkSystemExists`, the service's auth check
/// (`checkCred`), then CredUtils `checkCredentialForUser`. A missing credential
/// is a NotAuthorizedException (401 through the mapper); a stored one that fails
/// validation is answered by ApiUtils `checkCredValidationResult` as 401
/// `SYSAPI_CRED_VALID_FAIL ... Message: <the validation message>`.
pub(crate) async fn check_user_credential(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path((system, user)): Path<(String, String)>,
) -> ApiResult {
    let shared = &fake.shared;
    let sys = target(
        shared,
        &caller,
        &system,
        &user,
        "checkUserCredential",
        "checkCred",
    )?;
    let method = sys.default_authn_method.as_str();
    let state = shared.credential(&user, &system);
    if state == CredFixture::Absent {
        return Err(ApiError::mapped(
            StatusCode::UNAUTHORIZED,
            format!(
                "SYSLIB_CRED_NOT_FOUND Credential not found for operation. {} Operation: checkCred \
                 System: {system} SystemType: {} EffectiveUser: {user} AuthnMethod: {method}",
                lib_who(&caller),
                sys.system_type
            ),
        ));
    }
    if let Some(inner) = unreachable_host(shared, &caller, sys, &user).await {
        return Err(valid_fail(&caller, &system, &user, method, &inner));
    }
    let Some(inner) = validation_failure(&caller, sys, &user, state) else {
        return Ok(java_success(
            StatusCode::OK,
            format!(
                "SYSAPI_CRED_OK Credential validation succeeded. {} System: {system} User: {user}",
                api_who(&caller)
            ),
            Value::Null,
        ));
    };
    Err(valid_fail(&caller, &system, &user, method, &inner))
}

/// When `sys`'s host drops packets: waits as long as Tapis's SSH attempt
/// does, then gives its `SYSLIB_CRED_CONN_FAIL` validation message.
async fn unreachable_host(
    shared: &Shared,
    caller: &Caller,
    sys: &FakeSystem,
    user: &str,
) -> Option<String> {
    let ssh = shared.lock().unreachable.get(&sys.id).copied()?;
    tokio::time::sleep(ssh).await;
    validation_failure(caller, sys, user, CredFixture::ConnFail)
}

/// Uses up one refused creation of a new user's keys, if any are left.
fn propagating(shared: &Shared, user: &str, system: &str) -> bool {
    let mut inner = shared.lock();
    let key = (user.to_owned(), system.to_owned());
    let Some(left) = inner.propagating.get_mut(&key) else {
        return false;
    };
    *left -= 1;
    if *left == 0 {
        inner.propagating.remove(&key);
    }
    true
}

/// `SYSAPI_CRED_VALID_FAIL` around a validation message.
fn valid_fail(caller: &Caller, system: &str, user: &str, method: &str, inner: &str) -> ApiError {
    ApiError::java(
        StatusCode::UNAUTHORIZED,
        format!(
            "SYSAPI_CRED_VALID_FAIL Credential validation failed. {} System: {system} User: {user} \
             AuthnMethod: {method} Message: {inner}",
            api_who(caller)
        ),
    )
}

/// The validation message CredUtils `verifyConnection` leaves on a failing
/// credential, or `None` when it validates.
fn validation_failure(
    caller: &Caller,
    sys: &FakeSystem,
    user: &str,
    state: CredFixture,
) -> Option<String> {
    let (system, kind, host) = (&sys.id, &sys.system_type, &sys.host);
    let method = sys.default_authn_method.as_str();
    let who = lib_who(caller);
    let (t, u) = (&caller.tenant, &caller.username);
    Some(match state {
        CredFixture::Absent | CredFixture::Present => return None,
        // This one message says `jwtUser`, not `jwtUserId`.
        CredFixture::Rejected => format!(
            "SYSLIB_CRED_VALID_FAIL Invalid credentials. jwtTenant: {t} jwtUser: {u} OboTenant: {t} \
             OboUser: {u} System: {system} SystemType: {kind} Host: {host} EffectiveUser: {user} \
             AuthnMethod: {method} Message: No more authentication methods available"
        ),
        CredFixture::ConnFail => format!(
            "SYSLIB_CRED_CONN_FAIL Unable to connect to system using provided credential. {who} \
             System: {system} SystemType: {kind} Host: {host} EffectiveUser: {user} \
             AuthnMethod: {method} Error: Connection refused"
        ),
        CredFixture::Incomplete => incomplete(&who, sys, user),
        CredFixture::NotSupported => format!(
            "SYSLIB_CRED_NOT_SUPPORTED Credential validation failed. Not supported for system type. \
             {who} System: {system} SystemType: {kind} EffectiveUser: {user} AuthnMethod: {method}"
        ),
    })
}

/// `verifyConnection` on a credential without the parts its method needs.
fn incomplete(who: &str, sys: &FakeSystem, user: &str) -> String {
    format!(
        "SYSLIB_CRED_NOT_FOUND Credential not found for operation. {who} Operation: verifyCredentials \
         System: {} SystemType: {} EffectiveUser: {user} AuthnMethod: {}",
        sys.id,
        sys.system_type,
        sys.default_authn_method.as_str()
    )
}

/// `POST /v3/systems/credential/{systemId}/user/{userName}` (`createUserCredential`).
///
/// With `createTmsKeys=true`, CredUtils `createCredentialForUser` refuses a
/// system that is not LINUX (`SYSLIB_CRED_TMS_KEYS_INVALID_SYS_TYPE`) or one
/// with a static effective user or a `loginUser` mapping
/// (`SYSLIB_CRED_TMS_KEYS_NOT_ALLOWED`) with a BadRequestException, which
/// `createUserCredential` does not pass through: its final `catch (Exception)`
/// wraps it into 500 `SYSAPI_CRED_ERROR ... Error: SYSLIB_CRED_TMS_KEYS_...`.
/// The new credential is then validated with the system's default method.
pub(crate) async fn create_user_credential(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path((system, user)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let shared = &fake.shared;
    let op = "createUserCredential";
    let sys = existing_system(shared, &caller, &system, op)?;
    let who = api_who(&caller);
    // JsonValidator refuses an empty or non-object body; the resource throws a
    // WebApplicationException, which the mapper answers 500.
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiError::mapped(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "SYSAPI_CRED_JSON_INVALID Request payload did not conform to specification during \
                 attempt to operate on credential for system. {who} System: {system} User: {user} \
                 Error: the request body is not a JSON object"
            ),
        ));
    };
    authorize(shared, &caller, &system, &user, "setCred")?;
    // JAX-RS parses booleans case-insensitively; Python clients send `True`.
    let create_tms_keys = query
        .get("createTmsKeys")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if create_tms_keys && let Err(why) = tms_allowed(&caller, sys, &fields) {
        return Err(ApiError::mapped(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "SYSAPI_CRED_ERROR Unable to operate on credential for system. {who} System: {system} \
                 User: {user} Operation: {op} Error: {why}"
            ),
        ));
    }
    let has_secret = CREDENTIAL_FIELDS.iter().any(|f| fields.contains_key(*f));
    let method = sys.default_authn_method;
    // TMS keys satisfy a TMS_KEYS system; anything else needs the secrets of its
    // default method, which this fake takes any credential field for.
    let complete = if create_tms_keys {
        method == AuthnMethod::TmsKeys
    } else {
        has_secret
    };
    if !complete {
        let inner = incomplete(&lib_who(&caller), sys, &user);
        return Err(valid_fail(&caller, &system, &user, method.as_str(), &inner));
    }
    // The new credential is verified over SSH before it is stored
    // (`createUserCredential`, unless skipCredentialCheck): a host that
    // cannot be reached, or that does not know the user yet, leaves nothing.
    if let Some(inner) = unreachable_host(shared, &caller, sys, &user).await {
        return Err(valid_fail(&caller, &system, &user, method.as_str(), &inner));
    }
    if propagating(shared, &user, &system) {
        let inner =
            validation_failure(&caller, sys, &user, CredFixture::Rejected).unwrap_or_default();
        return Err(valid_fail(&caller, &system, &user, method.as_str(), &inner));
    }
    // Creating overwrites whatever was stored, rejected keys included.
    shared
        .lock()
        .creds
        .insert((user.clone(), system.clone()), CredFixture::Present);
    Ok(java_success(
        StatusCode::CREATED,
        format!("SYSAPI_CRED_UPDATED Credential updated. {who} System: {system} User: {user}"),
        Value::Null,
    ))
}

/// `DELETE /v3/systems/credential/{systemId}/user/{userName}` (`removeUserCredential`):
/// 201 even when nothing was stored.
pub(crate) async fn remove_user_credential(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path((system, user)): Path<(String, String)>,
) -> ApiResult {
    let shared = &fake.shared;
    target(
        shared,
        &caller,
        &system,
        &user,
        "removeUserCredential",
        "removeCred",
    )?;
    shared.lock().creds.remove(&(user.clone(), system.clone()));
    Ok(java_success(
        StatusCode::CREATED,
        format!(
            "SYSAPI_CRED_DELETED Credential removed. {} System: {system} User: {user}",
            api_who(&caller)
        ),
        Value::Null,
    ))
}

/// `checkSystemExists` then the service's authorization check.
fn target<'a>(
    shared: &'a Shared,
    caller: &Caller,
    system: &str,
    user: &str,
    operation: &str,
    auth_op: &str,
) -> Result<&'a FakeSystem, ApiError> {
    let sys = existing_system(shared, caller, system, operation)?;
    authorize(shared, caller, system, user, auth_op)?;
    Ok(sys)
}

/// AuthUtils `checkAuthOboUser` for the credential operations: a user may act on
/// their own credentials; another user's need the owner or a tenant admin
/// (`allow_cross_user`).
fn authorize(
    shared: &Shared,
    caller: &Caller,
    system: &str,
    user: &str,
    auth_op: &str,
) -> Result<(), ApiError> {
    if user != caller.username && !shared.allow_cross_user {
        return Err(unauthorized(caller, system, auth_op));
    }
    Ok(())
}

/// Why TMS keys cannot be created on `sys` (CredUtils `createCredentialForUser`).
fn tms_allowed(
    caller: &Caller,
    sys: &FakeSystem,
    fields: &Map<String, Value>,
) -> Result<(), String> {
    let who = lib_who(caller);
    if sys.system_type != "LINUX" {
        return Err(format!(
            "SYSLIB_CRED_TMS_KEYS_INVALID_SYS_TYPE Creation of TMS keys not supported for system type. \
             {who} System: {} SystemType: {}",
            sys.id, sys.system_type
        ));
    }
    let login_user = fields.get("loginUser").and_then(Value::as_str);
    let is_static = sys.effective_user_id != DYNAMIC_EFFECTIVE_USER;
    if login_user.is_some_and(|u| !u.trim().is_empty()) || is_static {
        return Err(format!(
            "SYSLIB_CRED_TMS_KEYS_NOT_ALLOWED Creation of TMS keys with loginUser mapping or static \
             effectiveUserId not supported. {who} System: {} LoginUser: {} IsStaticEffectiveUser: {is_static}",
            sys.id,
            login_user.unwrap_or("null")
        ));
    }
    Ok(())
}
