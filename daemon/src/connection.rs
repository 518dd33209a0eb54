//! One client connection: peer check, hello, then framed request/response.

use crate::dispatch::Agent;
use crate::idle::{IdleSet, Wait};
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
    let out = Out {
        stream: &stream,
        within: agent.state().config.write_timeout,
        idle: &idle,
        conn,
    };
    let mut greeted = false;
    let mut frames = FrameReader::new();
    // The hello's answer, while it waits to go out with the next answer.
    let mut held: Option<Vec<u8>> = None;
    loop {
        let wait = if greeted {
            agent.state().config.idle_timeout
        } else {
            agent.state().config.hello_timeout
        };
        let mut reader = &stream;
        let waiting = idle.waiting(conn, if greeted { Wait::Request } else { Wait::Hello });
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
                        let _ = reply(
        &out, &mut held, &Response::Error(busy)).await;
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
                let _ = reply(&out, &mut held, &protocol_error(&e)).await;
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
                    &out,
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
                let _ = reply(&out, &mut held, &Response::Error(e)).await;
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
            } else if reply(&out, &mut held, &hello).await.is_err() {
                return;
            }
            continue;
        }
        let request_id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("request", conn, request_id, kind = kind(&req));
        let systems = systems_of(&req);
        let handling = agent.handle(req).instrument(span);
        let Some(answer) = with_progress(&out, &agent, &mut held, &systems, handling).await else {
            return;
        };
        if let Err(e) = reply(&out, &mut held, &answer).await {
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
    out: &Out<'_>,
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
                let notes = agent.state().progress.describe(systems);
                let note = Response::Progress(notes);
                if let Err(e) = reply(out, held, &note).await {
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

/// Where answers go: the stream, how long a write may take, and the set
/// through which a connection whose client does not read can be shed.
struct Out<'a> {
    stream: &'a Stream,
    within: Duration,
    idle: &'a IdleSet,
    conn: u64,
}

/// Writes `resp`, behind the frame `held` back for it if there is one, in
/// one write. A write that cannot finish at once (the client is not
/// reading) marks the connection as sheddable while it waits: a client
/// that never reads cannot hold a connection slot for the whole
/// `write_timeout` while others are turned away.
async fn reply(
    out: &Out<'_>,
    held: &mut Option<Vec<u8>>,
    resp: &Response,
) -> Result<(), CodecError> {
    use std::task::Poll;
    use tokio::io::AsyncWriteExt;
    // Answers may carry a token: the buffer is wiped after use.
    let frame = zeroize::Zeroizing::new(encode_answer(resp)?);
    let bytes = match held.take() {
        Some(mut first) => {
            first.extend_from_slice(&frame);
            zeroize::Zeroizing::new(first)
        }
        None => frame,
    };
    let mut w = out.stream;
    let write = async {
        w.write_all(&bytes).await?;
        w.flush().await
    };
    let write = tokio::time::timeout(out.within, write);
    tokio::pin!(write);
    // Almost every answer goes out in the first poll: only a write that
    // has to wait is registered.
    let first = std::future::poll_fn(|cx| match write.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(Some(r)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    let finished = match first {
        Some(r) => r,
        None => {
            let blocked = out.idle.waiting(out.conn, Wait::Reader);
            tokio::select! {
                r = &mut write => r,
                _ = blocked.closed() => {
                    tracing::debug!(conn = out.conn, "closing a connection whose client does not read, to make room");
                    return Err(CodecError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "shed: the client does not read its answers",
                    )));
                }
            }
        }
    };
    match finished {
        Ok(r) => r.map_err(CodecError::Io),
        Err(_) => Err(CodecError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client did not read its answer",
        ))),
    }
}

/// `resp` as a frame. An answer too large for one has its per-system
/// messages shortened ([`fit_outcomes`](tapis_agent_proto::fit::fit_outcomes)),
/// or else is replaced by an error saying so, which the client shows, rather
/// than lost. Only answers that do not fit pay for this.
fn encode_answer(resp: &Response) -> Result<Vec<u8>, CodecError> {
    match encode_frame(resp) {
        Err(CodecError::TooLarge { .. } | CodecError::Encode(_)) => {
            let len = tapis_agent_proto::encoded_len(resp);
            // Long ids with long messages can outgrow a frame: their
            // messages are shortened rather than the answer lost.
            if let Response::Systems(outcomes) = resp {
                let mut fitted = outcomes.clone();
                tapis_agent_proto::fit::fit_outcomes(&mut fitted, len);
                if let Ok(frame) = encode_frame(&Response::Systems(fitted)) {
                    return Ok(frame);
                }
            }
            tracing::warn!(
                len,
                "an answer does not fit in one frame; sending an error instead"
            );
            encode_frame(&Response::Error(
                ErrorReply::new(
                    ErrorKind::Other,
                    format!(
                        "the answer ({len} bytes) does not fit in one frame ({} bytes)",
                        tapis_agent_proto::MAX_FRAME_LEN
                    ),
                )
                .with_hint("ask for fewer systems at once"),
            ))
        }
        other => other,
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

#[cfg(test)]
mod tests {
    use super::*;
    use tapis_agent_proto::limits::{MAX_SYSTEM_ID_LEN, MAX_SYSTEMS_PER_REQUEST};
    use tapis_agent_proto::{FRAME_HEADER_LEN, MAX_FRAME_LEN, Outcome, SystemOutcome, decode};

    #[test]
    fn an_answer_too_large_for_a_frame_is_sent_with_shortened_messages() {
        let outcomes: Vec<SystemOutcome> = (0..MAX_SYSTEMS_PER_REQUEST)
            .map(|i| SystemOutcome {
                system: format!("s{i:0>width$}", width = MAX_SYSTEM_ID_LEN - 1),
                user: "jdoe".into(),
                outcome: Outcome::Err(ErrorReply::new(ErrorKind::SystemNotFound, "m".repeat(1000))),
                cached: false,
            })
            .collect();
        let resp = Response::Systems(outcomes);
        assert!(tapis_agent_proto::encoded_len(&resp) > MAX_FRAME_LEN);
        let frame = encode_answer(&resp).expect("a frame");
        let Response::Systems(sent) = decode(&frame[FRAME_HEADER_LEN..]).expect("decodes") else {
            panic!("not the systems' answer");
        };
        assert_eq!(sent.len(), MAX_SYSTEMS_PER_REQUEST);
        let Outcome::Err(e) = &sent[0].outcome else {
            panic!("not an error");
        };
        assert!(
            e.message.ends_with('…') && e.message.len() < 1000,
            "{}",
            e.message
        );
    }
}
