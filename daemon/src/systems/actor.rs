//! One task per (user, system): requests run strictly in arrival order, and
//! establishes that arrive while one is still queued join it, so any number
//! of concurrent establishes share one upstream sequence and one queue slot.

use super::Ctx;
use super::ops::{self, OpResult};
use crate::errors;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tapis_agent_proto::{ErrorKind, ErrorReply};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// An actor with nothing to do for this long exits (its handle is renewed
/// on the next request).
const IDLE_EXIT: Duration = Duration::from_secs(600);

/// Where an answer goes.
pub type Reply = oneshot::Sender<OpResult>;

/// Establish requests waiting for the same run.
#[derive(Debug, Default)]
pub struct Batch {
    /// `None` once the actor has started the run: later callers need a new batch.
    waiters: Mutex<Option<Vec<Reply>>>,
    fresh: std::sync::atomic::AtomicBool,
}

/// What an actor can be asked.
#[derive(Debug)]
pub enum Msg {
    /// Ensure credentials exist, for everyone in the batch.
    Establish(Arc<Batch>),
    /// Report the state.
    Check {
        /// Bypass the cache.
        fresh: bool,
        /// Where the answer goes.
        reply: Reply,
    },
    /// Remove credentials.
    Revoke {
        /// Where the answer goes.
        reply: Reply,
    },
}

/// A cloneable handle to one actor.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Msg>,
    /// The establish batch at the tail of the queue, if the last message
    /// queued was one. Held while queueing, so queue order and batch
    /// membership agree.
    tail: Arc<Mutex<Option<Arc<Batch>>>>,
}

/// Why a request could not be queued.
#[derive(Debug)]
pub enum SendError {
    /// The actor has exited (idle); the request is handed back.
    Closed(Request),
    /// The queue is full.
    Busy,
}

/// A request for an actor, before queueing.
#[derive(Debug)]
pub enum Request {
    /// Establish.
    Establish {
        /// Bypass the cache.
        fresh: bool,
        /// Where the answer goes.
        reply: Reply,
    },
    /// Any other message.
    Other(Msg),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Handle {
    /// Whether the actor has exited.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether two handles reach the same actor.
    pub fn same_actor(&self, other: &Handle) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// Queues a request without waiting.
    pub fn send(&self, req: Request) -> Result<(), SendError> {
        let mut tail = lock(&self.tail);
        match req {
            Request::Establish { fresh, reply } => {
                if let Some(batch) = tail.as_ref() {
                    let mut waiters = lock(&batch.waiters);
                    if let Some(list) = waiters.as_mut() {
                        list.push(reply);
                        if fresh {
                            batch
                                .fresh
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        return Ok(());
                    }
                }
                let batch = Arc::new(Batch {
                    waiters: Mutex::new(Some(vec![reply])),
                    fresh: fresh.into(),
                });
                match self.tx.try_send(Msg::Establish(batch.clone())) {
                    Ok(()) => {
                        *tail = Some(batch);
                        Ok(())
                    }
                    Err(e) => {
                        let reply = lock(&batch.waiters)
                            .take()
                            .and_then(|mut v| v.pop())
                            .expect("a new batch holds its first reply");
                        match e {
                            mpsc::error::TrySendError::Full(_) => {
                                let _ = reply.send(Err(busy()));
                                Err(SendError::Busy)
                            }
                            mpsc::error::TrySendError::Closed(_) => {
                                Err(SendError::Closed(Request::Establish { fresh, reply }))
                            }
                        }
                    }
                }
            }
            Request::Other(msg) => match self.tx.try_send(msg) {
                Ok(()) => {
                    *tail = None;
                    Ok(())
                }
                Err(mpsc::error::TrySendError::Full(msg)) => {
                    reply_of(msg).map(|r| r.send(Err(busy())));
                    Err(SendError::Busy)
                }
                Err(mpsc::error::TrySendError::Closed(msg)) => {
                    Err(SendError::Closed(Request::Other(msg)))
                }
            },
        }
    }
}

fn reply_of(msg: Msg) -> Option<Reply> {
    match msg {
        Msg::Check { reply, .. } | Msg::Revoke { reply } => Some(reply),
        Msg::Establish(_) => None,
    }
}

/// The answer given when a system's queue is full.
pub fn busy() -> ErrorReply {
    ErrorReply::new(ErrorKind::Busy, "too many requests queued for this system")
        .with_hint("try again in a moment")
}

/// Starts the actor for (user, system) and returns its handle.
pub fn spawn(ctx: Arc<Ctx>, user: String, system: String) -> Handle {
    let (tx, rx) = mpsc::channel(ctx.config.queue_depth);
    let span = tracing::info_span!("system", %system, %user);
    tokio::spawn(run(ctx, user, system, rx).instrument(span));
    Handle {
        tx,
        tail: Arc::default(),
    }
}

async fn run(ctx: Arc<Ctx>, user: String, system: String, mut rx: mpsc::Receiver<Msg>) {
    while let Ok(Some(msg)) = tokio::time::timeout(IDLE_EXIT, rx.recv()).await {
        match msg {
            Msg::Establish(batch) => {
                // Closing the batch: whoever arrives from now on queues anew.
                let waiters = lock(&batch.waiters).take().unwrap_or_default();
                let fresh = batch.fresh.load(std::sync::atomic::Ordering::Relaxed);
                // Operations are boxed: an idle actor then holds a few hundred
                // bytes instead of the largest operation's state (~4 KB), which
                // adds up with thousands of systems.
                let op = Box::pin(ops::establish(&ctx, &user, &system, fresh));
                let result = bounded(&ctx, "establish", &system, op).await;
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
            Msg::Check { fresh, reply } => {
                let op = Box::pin(ops::check(&ctx, &user, &system, fresh));
                let _ = reply.send(bounded(&ctx, "check", &system, op).await);
            }
            Msg::Revoke { reply } => {
                let op = Box::pin(ops::revoke(&ctx, &user, &system));
                let _ = reply.send(bounded(&ctx, "revoke", &system, op).await);
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
