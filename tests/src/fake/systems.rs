//! Systems endpoints: `getSystem`, `healthCheck`, `readyCheck`, and the lookup and
//! permission checks the credential endpoints share.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use super::{
    FakeControl,
    caller::Caller,
    config::{DYNAMIC_EFFECTIVE_USER, FakeSystem},
    envelope::{ApiError, ApiResult, success},
    state::{CredFixture, Shared},
};

/// `GET /v3/systems/{systemId}` (`getSystem`).
pub(crate) async fn get_system(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path(system): Path<String>,
) -> ApiResult {
    let shared = &fake.shared;
    let sys = readable_system(shared, &caller, &system, "read")?;
    let has_credentials = shared.credential(&caller.username, &system) != CredFixture::Absent;
    Ok(success(
        StatusCode::OK,
        format!("TAPIS_FOUND System found: {system} {}", who(&caller)),
        system_json(sys, &caller.tenant, has_credentials),
    ))
}

/// `GET /v3/systems/healthcheck` (`healthCheck`), no token needed.
pub(crate) async fn health_check() -> ApiResult {
    Ok(success(
        StatusCode::OK,
        "TAPIS_HEALTHY Health check received. Systems service is healthy.",
        Value::Null,
    ))
}

/// `GET /v3/systems/readycheck` (`readyCheck`), no token needed.
pub(crate) async fn ready_check() -> ApiResult {
    Ok(success(
        StatusCode::OK,
        "TAPIS_READY Ready check passed. Systems service is ready.",
        Value::Null,
    ))
}

/// Identity part of service messages, as the Java services print it.
pub(crate) fn who(caller: &Caller) -> String {
    let (t, u) = (&caller.tenant, &caller.username);
    format!("jwtTenant: {t} jwtUser: {u} OboTenant: {t} OboUser: {u}")
}

/// The system, unless it is unknown (404 `SYSAPI_NOSYSTEM`) or the caller is
/// forbidden from it (403 `SYSLIB_UNAUTH`).
pub(crate) fn readable_system<'a>(
    shared: &'a Shared,
    caller: &Caller,
    system: &str,
    operation: &str,
) -> Result<&'a FakeSystem, ApiError> {
    let Some(sys) = shared.systems.get(system) else {
        return Err(ApiError::not_found(format!(
            "SYSAPI_NOSYSTEM System not found. {} System: {system}",
            who(caller)
        )));
    };
    let forbidden = shared
        .lock()
        .forbidden
        .contains(&(caller.username.clone(), system.to_owned()));
    if forbidden {
        return Err(unauthorized(caller, system, operation));
    }
    Ok(sys)
}

/// 403 `SYSLIB_UNAUTH`.
pub(crate) fn unauthorized(caller: &Caller, system: &str, operation: &str) -> ApiError {
    ApiError::forbidden(format!(
        "SYSLIB_UNAUTH Authorization failed. {} Operation: {operation} System: {system}",
        who(caller)
    ))
}

/// The TapisSystem fields clients look at, with the usual defaults for the rest.
fn system_json(sys: &FakeSystem, tenant: &str, has_credentials: bool) -> Value {
    let dynamic = sys.effective_user_id == DYNAMIC_EFFECTIVE_USER;
    json!({
        "tenant": tenant,
        "id": sys.id,
        "description": format!("Fake system {}", sys.id),
        "systemType": sys.system_type,
        "owner": sys.owner,
        "host": sys.host,
        "enabled": sys.enabled,
        "effectiveUserId": sys.effective_user_id,
        "defaultAuthnMethod": sys.default_authn_method.as_str(),
        "authnCredential": null,
        "bucketName": null,
        "rootDir": "/",
        "port": 22,
        "useProxy": false,
        "proxyHost": null,
        "proxyPort": -1,
        "dtnSystemId": null,
        "canExec": sys.can_exec,
        "canRunBatch": sys.can_exec,
        "enableCmdPrefix": false,
        "allowChildren": false,
        "parentId": null,
        "jobRuntimes": if sys.can_exec { json!([{"runtimeType": "SINGULARITY", "version": null}]) } else { Value::Null },
        "jobWorkingDir": if sys.can_exec { json!("HOST_EVAL($SCRATCH)") } else { Value::Null },
        "batchScheduler": if sys.can_exec { json!("SLURM") } else { Value::Null },
        "tags": [],
        "notes": {},
        "deleted": false,
        "created": "2024-01-01T00:00:00Z",
        "updated": "2024-01-01T00:00:00Z",
        "hasCredentials": has_credentials,
        "isPublic": true,
        "isDynamicEffectiveUser": dynamic,
        "sharedWithUsers": [],
    })
}
