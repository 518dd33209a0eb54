//! The Tapis response envelopes and request-body parsing shared by all endpoints.
//!
//! Two families answer differently:
//! - the Python services (Authenticator, Tenants) through tapipy-tapisservice,
//!   tapisservice/tapisflask/utils.py `ok` and `error`:
//!   `{result, status: "success"|"error", version, message, metadata: {}}`;
//! - the Java services (Systems) through tapis-shared-java,
//!   sharedapi/utils/TapisRestUtils.java `createSuccessResponse` /
//!   `createErrorResponse` (`status` "success"/"error") and
//!   sharedapi/providers/ApiExceptionMapper.java `toResponse`, whose `status` is
//!   the HTTP reason phrase ("Unauthorized", "Internal Server Error"); both
//!   carry `version`, `commit`, `build`, and Gson writes nulls
//!   (`TapisGsonUtils.getGsonBuilder`: `serializeNulls`), so `result` and
//!   `metadata` are `null` on errors.

use axum::{
    Form, Json,
    body::Bytes,
    extract::{FromRequest, Request},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// `version` of every envelope.
pub(crate) const VERSION: &str = concat!("fake-tapis-", env!("CARGO_PKG_VERSION"));

/// Which service family answers, and for the Java one, which code path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// tapisservice `ok`/`error`.
    Python,
    /// `TapisRestUtils.createSuccessResponse` / `createErrorResponse`.
    Java,
    /// An exception turned into an answer by `ApiExceptionMapper`.
    JavaMapped,
}

/// A Python-service success envelope.
pub(crate) fn success(status: StatusCode, message: impl Into<String>, result: Value) -> Response {
    envelope(Style::Python, status, message.into(), result)
}

/// A Java-service success envelope; `message` starts with its key, e.g.
/// `SYSAPI_CRED_OK ...`.
pub(crate) fn java_success(
    status: StatusCode,
    message: impl Into<String>,
    result: Value,
) -> Response {
    envelope(Style::Java, status, message.into(), result)
}

fn envelope(style: Style, status: StatusCode, message: String, result: Value) -> Response {
    let outcome = if status.is_success() {
        "success"
    } else {
        "error"
    };
    let body = match style {
        Style::Python => json!({
            "result": result,
            "status": outcome,
            "version": VERSION,
            "message": message,
            "metadata": {},
        }),
        Style::Java | Style::JavaMapped => json!({
            "status": if style == Style::JavaMapped {
                status.canonical_reason().unwrap_or("error")
            } else {
                outcome
            },
            "message": message,
            "version": VERSION,
            "commit": "fake",
            "build": "fake",
            "metadata": null,
            "result": result,
        }),
    };
    (status, Json(body)).into_response()
}

/// An error answered as a JSON envelope with `result: null`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) style: Style,
}

impl ApiError {
    /// A Python-service error.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            style: Style::Python,
        }
    }

    /// A Java-service error built by `createErrorResponse`.
    pub(crate) fn java(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            style: Style::Java,
            ..Self::new(status, message)
        }
    }

    /// A Java-service exception answered by `ApiExceptionMapper`.
    pub(crate) fn mapped(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            style: Style::JavaMapped,
            ..Self::new(status, message)
        }
    }

    /// 400, the status of every tapisservice error unless it says otherwise.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        envelope(self.style, self.status, self.message, Value::Null)
    }
}

/// Result type of the Tapis endpoints.
pub(crate) type ApiResult = Result<Response, ApiError>;

/// Reads a body sent as JSON or, when the content type says so, as a form
/// (`from_form` then drops what a form cannot carry). JSON is accepted whatever
/// the content type, as the Python services do.
pub(crate) async fn json_or_form<T: DeserializeOwned>(
    req: Request,
    from_form: impl FnOnce(T) -> T,
) -> Result<T, String> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return Form::<T>::from_request(req, &())
            .await
            .map(|Form(body)| from_form(body))
            .map_err(|e| e.body_text());
    }
    let bytes = Bytes::from_request(req, &())
        .await
        .map_err(|e| e.body_text())?;
    json_body(&bytes)
}

/// A body for an Authenticator endpoint. Its request validator refuses what
/// does not parse with `Invalid POST data: [...]`; the exact list of
/// openapi-core errors is not reproduced.
pub(crate) async fn authn_body<T: DeserializeOwned>(
    req: Request,
    from_form: impl FnOnce(T) -> T,
) -> Result<T, ApiError> {
    json_or_form(req, from_form)
        .await
        .map_err(|e| ApiError::bad_request(format!("Invalid POST data: [{e}].")))
}

/// Parses a JSON body; an empty body reads as `{}`.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON body: {e}"))
}
