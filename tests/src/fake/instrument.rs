//! Per-operation middleware: counts each call under its operationId and makes it
//! misbehave when an injected fault matches.

use std::{io, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::{ConnectInfo, RawPathParams, Request, State, rejection::RawPathParamsRejection},
    http::{HeaderValue, StatusCode, header, response::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::stream;

use super::{FakeControl, conn::Conn, envelope::ApiError, faults::FaultKind, state::Shared};

/// How long `reset_mid_body` waits after the first half so the client surely reads
/// the headers and that half before the reset.
const RESET_PAUSE: Duration = Duration::from_millis(100);

/// State of the middleware of one route: the fake plus the route's operationId.
#[derive(Clone)]
pub(crate) struct Operation {
    pub(crate) fake: FakeControl,
    pub(crate) name: &'static str,
}

/// Counts the call, then answers it normally or through the matching fault.
pub(crate) async fn instrument(
    State(op): State<Operation>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let system = params.ok().and_then(|params| {
        params
            .iter()
            .find(|(key, _)| *key == "system")
            .map(|(_, value)| value.to_owned())
    });
    let shared = &op.fake.shared;
    shared.count(op.name);
    let fault = shared.lock().faults.take(op.name, system.as_deref());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match fault {
        None => next.run(req).await,
        Some(kind) => {
            tracing::info!(operation = op.name, fault = ?kind, "injecting fault");
            misbehave(shared, &conn, kind, req, next).await
        }
    };
    tracing::debug!(
        operation = op.name,
        %method,
        path,
        peer = %conn.peer,
        status = response.status().as_u16(),
        "request"
    );
    response
}

async fn misbehave(
    shared: &Arc<Shared>,
    conn: &Conn,
    kind: FaultKind,
    req: Request,
    next: Next,
) -> Response {
    match kind {
        FaultKind::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                ApiError::new(code, format!("FAKE_INJECTED_FAULT Injected status {status}."))
                    .into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        FaultKind::Answer { status, message } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError::new(code, message).into_response()
        }
        FaultKind::Delay(delay) => {
            tokio::select! {
                () = tokio::time::sleep(delay) => next.run(req).await,
                () = shared.shutting_down() => cut(conn),
            }
        }
        FaultKind::Drop => cut(conn),
        FaultKind::Hang => {
            shared.shutting_down().await;
            cut(conn)
        }
        FaultKind::Html502 => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        FaultKind::JwtRefused => {
            // Counted as the filter counts the tokens it refuses.
            shared.lock().stats.rejected_token += 1;
            (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "TAPIS_SECURITY_JWT_PARSE_ERROR Unable to parse JWT. Error: refused by an injected fault",
        )
            .into_response()
        }
        FaultKind::NonJson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><h1>Scheduled maintenance</h1><p>Tapis will be back soon.</p></body></html>",
        )
            .into_response(),
        FaultKind::TruncatedJson => {
            let (parts, body) = real_answer(req, next).await;
            let half = body.slice(..body.len() / 2);
            Response::from_parts(parts, Body::from(half))
        }
        FaultKind::ResetMidBody => {
            let (parts, body) = real_answer(req, next).await;
            let len = body.len();
            let half = body.slice(..len / 2);
            let switch = conn.switch.clone();
            let shared = shared.clone();
            let chunks = stream::unfold(ResetStep::Half(half), move |step| {
                let (switch, shared) = (switch.clone(), shared.clone());
                async move {
                    match step {
                        ResetStep::Half(half) => Some((Ok(half), ResetStep::Cut)),
                        ResetStep::Cut => {
                            tokio::select! {
                                () = tokio::time::sleep(RESET_PAUSE) => {}
                                () = shared.shutting_down() => {}
                            }
                            switch.reset();
                            // An erroring body makes hyper drop the connection; the
                            // switch turns that close into an RST.
                            let err = io::Error::new(io::ErrorKind::ConnectionReset, "injected");
                            Some((Err(err), ResetStep::Done))
                        }
                        ResetStep::Done => None,
                    }
                }
            });
            streamed(parts, len, Body::from_stream(chunks))
        }
        FaultKind::SlowDrip(interval) => {
            let (parts, body) = real_answer(req, next).await;
            let len = body.len();
            let shared = shared.clone();
            let bytes = stream::unfold(0usize, move |sent| {
                let (body, shared) = (body.clone(), shared.clone());
                async move {
                    if sent >= body.len() {
                        return None;
                    }
                    if sent > 0 {
                        tokio::select! {
                            () = tokio::time::sleep(interval) => {}
                            () = shared.shutting_down() => {
                                let err = io::Error::other("fake shutting down");
                                return Some((Err(err), usize::MAX));
                            }
                        }
                    }
                    Some((Ok(body.slice(sent..sent + 1)), sent + 1))
                }
            });
            streamed(parts, len, Body::from_stream(bytes))
        }
    }
}

/// Stages of a `reset_mid_body` answer.
enum ResetStep {
    Half(Bytes),
    Cut,
    Done,
}

/// Cuts the connection; the returned response is never delivered.
fn cut(conn: &Conn) -> Response {
    conn.switch.close();
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

/// What the endpoint would have answered, fully read.
async fn real_answer(req: Request, next: Next) -> (Parts, Bytes) {
    let (mut parts, body) = next.run(req).await.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    (parts, bytes)
}

/// A streamed body announced with its full length, so a short one is an error.
fn streamed(mut parts: Parts, len: usize, body: Body) -> Response {
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Response::from_parts(parts, body)
}
