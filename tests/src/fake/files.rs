//! Files endpoint `insert` (upload), only as far as tapipy's `Tapis.upload` needs.
//! tapis-project/tapis-files, api/.../resources/OperationsApiResource.java
//! `upload`: `POST /v3/files/ops/{systemId}/{path}`, multipart form data with the
//! file in the part named `file`, behind the same JWT filter as Systems; the
//! answer is `TapisResponse.createSuccessResponse(msg, null)` with
//! FilesApiMessages.properties `FAPI_OP_COMPLETE`. Nothing is stored.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
};
use serde_json::Value;

use super::{
    FakeControl,
    caller::Caller,
    envelope::{ApiError, ApiResult, java_success},
    systems::api_who,
};

/// `POST /v3/files/ops/{systemId}/{path}` (`insert`).
pub(crate) async fn upload(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path((system, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    if !fake.shared.systems.contains_key(&system) {
        // FilesMessages.properties `FILES_SYS_NOTFOUND`, through the mapper.
        let (t, u) = (&caller.tenant, &caller.username);
        return Err(ApiError::mapped(
            StatusCode::NOT_FOUND,
            format!(
                "FILES_SYS_NOTFOUND System not found. Tenant: {t} ApiUserId: {u} OboTenant: {t} \
                 OboUser: {u} System: {system}"
            ),
        ));
    }
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let has_file = body.windows(11).any(|w| w == b"name=\"file\"");
    if !multipart || !has_file {
        // Jersey refuses a body it cannot bind to the `file` form part.
        return Err(ApiError::mapped(
            StatusCode::BAD_REQUEST,
            "FAPI_UPLOAD_NO_FILE multipart/form-data with a part named file is required (fake Tapis).",
        ));
    }
    Ok(java_success(
        StatusCode::OK,
        format!(
            "FAPI_OP_COMPLETE Operation completed. {} Operation: upload System: {system} Path: {path}",
            api_who(&caller)
        ),
        Value::Null,
    ))
}
