//! The Tapis response envelope and request-body parsing shared by all endpoints.

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

/// A success envelope; `message` starts with its key, e.g. `SYSAPI_CRED_OK ...`.
pub(crate) fn success(status: StatusCode, message: impl Into<String>, result: Value) -> Response {
    envelope(status, "success", message.into(), result)
}

fn envelope(status: StatusCode, outcome: &str, message: String, result: Value) -> Response {
    let body = json!({
        "status": outcome,
        "message": message,
        "result": result,
        "version": VERSION,
        "metadata": {},
    });
    (status, Json(body)).into_response()
}

/// An error answered as a JSON envelope with `result: null`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        envelope(self.status, "error", self.message, Value::Null)
    }
}

/// Result type of the Tapis endpoints.
pub(crate) type ApiResult = Result<Response, ApiError>;

/// Reads a body sent as JSON or, when the content type says so, as a form. JSON is
/// accepted whatever the content type, as the Python services do.
pub(crate) async fn json_or_form<T: DeserializeOwned>(req: Request) -> Result<T, String> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return Form::<T>::from_request(req, &())
            .await
            .map(|Form(body)| body)
            .map_err(|e| e.body_text());
    }
    let bytes = Bytes::from_request(req, &())
        .await
        .map_err(|e| e.body_text())?;
    json_body(&bytes)
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
