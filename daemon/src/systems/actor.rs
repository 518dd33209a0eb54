//! One task per (user, system): requests run strictly in arrival order, and
//! establishes queued back to back share one upstream sequence.

use super::Ctx;
use super::ops::{self, OpResult};
use crate::errors;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// An actor with nothing to do for this long exits (its handle is renewed
/// on the next request).
const IDLE_EXIT: Duration = Duration::from_secs(600);

/// What an actor can be asked.
#[derive(Debug)]
pub enum Msg {
    /// Ensure credentials exist.
    Establish {
        /// Bypass the cache.
        fresh: bool,
        /// Where the answer goes.
        reply: oneshot::Sender<OpResult>,
    },
    /// Report the state.
    Check {
        /// Bypass the cache.
        fresh: bool,
        /// Where the answer goes.
        reply: oneshot::Sender<OpResult>,
    },
    /// Remove credentials.
    Revoke {
        /// Where the answer goes.
        reply: oneshot::Sender<OpResult>,
    },
}

/// Starts the actor for (user, system) and returns its queue.
pub fn spawn(ctx: Arc<Ctx>, user: String, system: String) -> mpsc::Sender<Msg> {
    let (tx, rx) = mpsc::channel(ctx.config.queue_depth);
    let span = tracing::info_span!("system", %system, %user);
    tokio::spawn(run(ctx, user, system, rx).instrument(span));
    tx
}

async fn run(ctx: Arc<Ctx>, user: String, system: String, mut rx: mpsc::Receiver<Msg>) {
    let mut backlog: VecDeque<Msg> = VecDeque::new();
    loop {
        let msg = match backlog.pop_front() {
            Some(m) => m,
            None => match tokio::time::timeout(IDLE_EXIT, rx.recv()).await {
                Ok(Some(m)) => m,
                _ => return,
            },
        };
        match msg {
            Msg::Establish { fresh, reply } => {
                // Establishes already queued right behind this one get the
                // same answer; anything else stays queued, in order.
                let mut waiters = vec![reply];
                let mut fresh = fresh;
                while backlog.is_empty() {
                    match rx.try_recv() {
                        Ok(Msg::Establish { fresh: f, reply }) => {
                            fresh |= f;
                            waiters.push(reply);
                        }
                        Ok(other) => backlog.push_back(other),
                        Err(_) => break,
                    }
                }
                let result = bounded(
                    &ctx,
                    "establish",
                    &system,
                    ops::establish(&ctx, &user, &system, fresh),
                )
                .await;
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
            Msg::Check { fresh, reply } => {
                let result = bounded(
                    &ctx,
                    "check",
                    &system,
                    ops::check(&ctx, &user, &system, fresh),
                )
                .await;
                let _ = reply.send(result);
            }
            Msg::Revoke { reply } => {
                let result =
                    bounded(&ctx, "revoke", &system, ops::revoke(&ctx, &user, &system)).await;
                let _ = reply.send(result);
            }
        }
    }
}

/// Runs one operation under the overall request deadline.
async fn bounded(
    ctx: &Ctx,
    op: &str,
    system: &str,
    fut: impl Future<Output = OpResult>,
) -> OpResult {
    let deadline = ctx.config.request_deadline;
    match tokio::time::timeout(deadline, fut).await {
        Ok(result) => {
            if let Err(e) = &result {
                tracing::info!(op, error = %e.message, "failed");
            }
            result
        }
        Err(_) => Err(errors::deadline(
            &format!("{op} {system}"),
            deadline.as_secs(),
        )),
    }
}
