//! Systems endpoints: `getSystem`, `healthCheck`, `readyCheck`, and the lookup and
//! permission checks the credential endpoints share. Message texts are those of
//! tapis-project/tapis-systems (branch tms-mvp), SysApiMessages.properties and
//! SysLibMessages.properties, and tapis-shared-java TapisMessages.properties.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use super::{
    FakeControl,
    caller::Caller,
    config::{DYNAMIC_EFFECTIVE_USER, FakeSystem},
    envelope::{ApiError, ApiResult, java_success},
    state::{CredFixture, Shared},
};

/// `GET /v3/systems/{systemId}` (`getSystem`; SystemResource.java `getSystem`):
/// 404 `SYSAPI_NOT_FOUND` and 403 `SYSLIB_UNAUTH` come through the exception
/// mapper.
pub(crate) async fn get_system(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path(system): Path<String>,
) -> ApiResult {
    let shared = &fake.shared;
    let Some(sys) = shared.systems.get(&system) else {
        return Err(ApiError::mapped(
            StatusCode::NOT_FOUND,
            format!(
                "SYSAPI_NOT_FOUND Record not found. {} System: {system}",
                api_who(&caller)
            ),
        ));
    };
    if forbidden(shared, &caller, &system) {
        return Err(unauthorized(&caller, &system, "read"));
    }
    let has_credentials = shared.credential(&caller.username, &system) != CredFixture::Absent;
    Ok(java_success(
        StatusCode::OK,
        format!("TAPIS_FOUND System found: {system}"),
        system_json(sys, &caller.tenant, has_credentials),
    ))
}

/// `GET /v3/systems/healthcheck` (`healthCheck`), no token needed.
pub(crate) async fn health_check() -> ApiResult {
    Ok(java_success(
        StatusCode::OK,
        "TAPIS_HEALTHY Health check received. Systems service is healthy.",
        Value::Null,
    ))
}

/// `GET /v3/systems/readycheck` (`readyCheck`), no token needed.
pub(crate) async fn ready_check() -> ApiResult {
    Ok(java_success(
        StatusCode::OK,
        "TAPIS_READY Ready check passed. Systems service is ready.",
        Value::Null,
    ))
}

/// Identity part of SysApiMessages texts (ApiUtils.java, `getMsgAuth`).
pub(crate) fn api_who(caller: &Caller) -> String {
    let (t, u) = (&caller.tenant, &caller.username);
    format!("jwtTenant: {t} jwtUser: {u} OboTenant: {t} OboUser: {u}")
}

/// Identity part of most SysLibMessages texts (LibUtils.java, `getMsgAuth`),
/// which say `jwtUserId`.
pub(crate) fn lib_who(caller: &Caller) -> String {
    let (t, u) = (&caller.tenant, &caller.username);
    format!("jwtTenant: {t} jwtUserId: {u} OboTenant: {t} OboUser: {u}")
}

fn forbidden(shared: &Shared, caller: &Caller, system: &str) -> bool {
    shared
        .lock()
        .forbidden
        .contains(&(caller.username.clone(), system.to_owned()))
}

/// ApiUtils.java `checkSystemExists`, the first step of every credential
/// endpoint: 404 `SYSAPI_NOSYSTEM` for an unknown system. For a system the
/// caller may not read, `SystemsServiceImpl.checkForSystem` throws the
/// ForbiddenException of its read check, which `checkSystemExists` catches and
/// answers as 500 `SYSAPI_CHECK_ERROR ... Error: SYSLIB_UNAUTH ...`, not 403.
pub(crate) fn existing_system<'a>(
    shared: &'a Shared,
    caller: &Caller,
    system: &str,
    operation: &str,
) -> Result<&'a FakeSystem, ApiError> {
    let who = api_who(caller);
    let Some(sys) = shared.systems.get(system) else {
        return Err(ApiError::java(
            StatusCode::NOT_FOUND,
            format!(
                "SYSAPI_NOSYSTEM No system found. {who} System: {system} Operation: {operation}"
            ),
        ));
    };
    if forbidden(shared, caller, system) {
        let inner = unauthorized(caller, system, "read").message;
        return Err(ApiError::java(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "SYSAPI_CHECK_ERROR Unable to check for system. {who} System: {system} \
                 Operation: {operation} Error: {inner}"
            ),
        ));
    }
    Ok(sys)
}

/// 403 `SYSLIB_UNAUTH` (AuthUtils.java, `checkAuthOboUser`), through the
/// exception mapper.
pub(crate) fn unauthorized(caller: &Caller, system: &str, operation: &str) -> ApiError {
    ApiError::mapped(
        StatusCode::FORBIDDEN,
        format!(
            "SYSLIB_UNAUTH Permission denied. {} System: {system} Operation: {operation}",
            lib_who(caller)
        ),
    )
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
