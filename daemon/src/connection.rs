//! One client connection: peer check, hello, then framed request/response.

use crate::dispatch::Agent;
use crate::idle::IdleSet;
use interprocess::local_socket::tokio::{Stream, prelude::*};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tapis_agent_proto::{
    CodecError, ErrorKind, ErrorReply, FrameReader, PROTOCOL_VERSION, Request, Response, decode,
    encode_frame,
};
use tokio::sync::watch;
use tracing::Instrument;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A request still unanswered after this long gets progress notes...
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// ...this often, until its answer.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Serves one connection until the client closes it, idles out, misbehaves,
/// is shed to make room (see [`IdleSet`]) or the agent shuts down.
pub async fn serve(
    stream: Stream,
    agent: Arc<Agent>,
    idle: Arc<IdleSet>,
    mut shutdown: watch::Receiver<bool>,
) {
    let conn = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let me = crate::uid::euid();
    match stream.peer_creds().map(|c| c.euid()) {
        Ok(Some(uid)) if uid == me => {}
        Ok(uid) => {
            tracing::warn!(conn, peer_uid = ?uid, "refusing connection from another user");
            return;
        }
        Err(e) => {
            tracing::warn!(conn, error = %e, "cannot read peer credentials; refusing connection");
            return;
        }
    }
    let mut greeted = false;
    let mut frames = FrameReader::new();
    // The hello's answer, while it waits to go out with the next answer.
    let mut held: Option<Vec<u8>> = None;
    loop {
        let wait = if greeted {
            agent.config.idle_timeout
        } else {
            agent.config.hello_timeout
        };
        let mut reader = &stream;
        let waiting = idle.waiting(conn, greeted);
        let body = tokio::select! {
            r = tokio::time::timeout(wait, frames.read_frame(&mut reader)) => r,
            _ = shutdown.changed() => return,
            _ = waiting.closed() => {
                // The next thing the client reads is this answer, whether it
                // is about to say hello or to ask again: a retry, exit 9.
                tracing::debug!(conn, greeted, "closing the longest-waiting connection to make room");
                let busy = ErrorReply::new(
                    ErrorKind::Busy,
                    "the agent is at its connection limit and closed this idle connection",
                )
                .with_hint("try again; close connections you do not use");
                let _ = reply(&stream, agent.config.write_timeout, &mut held, &Response::Error(busy)).await;
                return;
            }
        };
        drop(waiting);
        let body = match body {
            Err(_) => {
                tracing::debug!(conn, "idle connection closed");
                return;
            }
            Ok(Err(CodecError::Closed)) => return,
            Ok(body) => body,
        };
        // The frame may hold a password: wiped once decoded.
        let req = body.and_then(|body| decode::<Request>(&zeroize::Zeroizing::new(body)));
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(conn, error = %e, "bad request frame; closing connection");
                let _ = reply(
                    &stream,
                    agent.config.write_timeout,
                    &mut held,
                    &protocol_error(&e),
                )
                .await;
                return;
            }
        };
        if !greeted {
            let Request::Hello {
                protocol_version,
                client_version,
            } = req
            else {
                let _ = reply(
                    &stream,
                    agent.config.write_timeout,
                    &mut held,
                    &Response::Error(ErrorReply::new(
                        ErrorKind::Usage,
                        "the first request must be Hello",
                    )),
                )
                .await;
                return;
            };
            if protocol_version != PROTOCOL_VERSION {
                tracing::info!(
                    conn,
                    protocol_version,
                    "client speaks another protocol version"
                );
                let msg = format!(
                    "the agent speaks protocol {PROTOCOL_VERSION}, the client {protocol_version} (client {client_version})"
                );
                let e = ErrorReply::new(ErrorKind::AgentUnreachable, msg)
                    .with_hint("restart the agent after upgrading, or use the matching tapis-cred");
                let _ = reply(
                    &stream,
                    agent.config.write_timeout,
                    &mut held,
                    &Response::Error(e),
                )
                .await;
                return;
            }
            greeted = true;
            let hello = Response::Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            };
            if frames.has_frame() {
                // The client wrote its request right behind the hello: the
                // two answers go out together, one wake-up for the client
                // instead of two. Nothing waits on input meanwhile.
                match encode_frame(&hello) {
                    Ok(frame) => held = Some(frame),
                    Err(_) => return,
                }
            } else if reply(&stream, agent.config.write_timeout, &mut held, &hello)
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let request_id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("request", conn, request_id, kind = kind(&req));
        let systems = systems_of(&req);
        let handling = agent.handle(req).instrument(span);
        let Some(answer) = with_progress(&stream, &agent, &mut held, &systems, handling).await
        else {
            return;
        };
        if let Err(e) = reply(&stream, agent.config.write_timeout, &mut held, &answer).await {
            tracing::debug!(conn, error = %e, "cannot send the answer");
            return;
        }
    }
}

/// Awaits `handling`, telling the client every second after the first what
/// the request waits for (a [`Response::Progress`] frame). `None` when the
/// client stopped reading them; the request still runs to its end (others
/// may share its work) but its answer has nowhere to go.
async fn with_progress(
    stream: &Stream,
    agent: &Agent,
    held: &mut Option<Vec<u8>>,
    systems: &[String],
    handling: impl Future<Output = Response>,
) -> Option<Response> {
    tokio::pin!(handling);
    let start = tokio::time::Instant::now() + PROGRESS_AFTER;
    let mut ticks = tokio::time::interval_at(start, PROGRESS_EVERY);
    let mut listening = true;
    loop {
        tokio::select! {
            answer = &mut handling => return listening.then_some(answer),
            _ = ticks.tick(), if listening => {
                let notes = agent.registry.ctx().progress.describe(systems);
                let note = Response::Progress(notes);
                if let Err(e) = reply(stream, agent.config.write_timeout, held, &note).await {
                    tracing::debug!(error = %e, "cannot send progress; the client is gone");
                    listening = false;
                }
            }
        }
    }
}

/// The systems a request is about (for its progress notes).
fn systems_of(req: &Request) -> Vec<String> {
    match req {
        Request::Establish { systems, .. }
        | Request::Check { systems, .. }
        | Request::Revoke { systems, .. } => systems.clone(),
        _ => Vec::new(),
    }
}

/// Writes `resp`, behind the frame `held` back for it if there is one, in
/// one write.
async fn reply(
    stream: &Stream,
    within: Duration,
    held: &mut Option<Vec<u8>>,
    resp: &Response,
) -> Result<(), CodecError> {
    use tokio::io::AsyncWriteExt;
    // Answers may carry a token: the buffer is wiped after use.
    let frame = zeroize::Zeroizing::new(encode_frame(resp)?);
    let out = match held.take() {
        Some(mut first) => {
            first.extend_from_slice(&frame);
            zeroize::Zeroizing::new(first)
        }
        None => frame,
    };
    let mut w = stream;
    let write = async {
        w.write_all(&out).await?;
        w.flush().await
    };
    match tokio::time::timeout(within, write).await {
        Ok(r) => r.map_err(CodecError::Io),
        Err(_) => Err(CodecError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client did not read its answer",
        ))),
    }
}

fn protocol_error(e: &CodecError) -> Response {
    Response::Error(ErrorReply::new(
        ErrorKind::Usage,
        format!("bad request frame: {e}"),
    ))
}

fn kind(req: &Request) -> &'static str {
    match req {
        Request::Hello { .. } => "hello",
        Request::Establish { .. } => "establish",
        Request::Revoke { .. } => "revoke",
        Request::Check { .. } => "check",
        Request::Token { .. } => "token",
        Request::Login(_) => "login",
        Request::DevicePoll => "device_poll",
        Request::Logout { .. } => "logout",
        Request::Status => "status",
        Request::ExportTokenFile { .. } => "export_token_file",
        Request::Settings => "settings",
        Request::Ping => "ping",
    }
}
