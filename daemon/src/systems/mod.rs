//! Credential operations per system: a registry of per-(user, system) actors
//! sharing one Tapis client, token manager and cache.

mod actor;
mod ops;

use crate::cache::Cache;
use crate::config::Config;
use crate::errors;
use crate::tapis::TapisClient;
use crate::token::TokenManager;
use actor::Msg;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tapis_agent_proto::{ErrorKind, ErrorReply};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use ops::OpResult;

/// Prune handles of exited actors once the map grows past this.
const PRUNE_AT: usize = 1024;

/// What the actors share.
#[derive(Debug)]
pub struct Ctx {
    /// Agent configuration.
    pub config: Arc<Config>,
    /// Tapis client.
    pub tapis: TapisClient,
    /// Token manager.
    pub tokens: Arc<TokenManager>,
    /// Credential cache.
    pub cache: Arc<Cache>,
    /// Bounds how many systems are worked on upstream at once.
    pub upstream: Semaphore,
}

/// Finds or starts the actor for each (user, system).
#[derive(Debug)]
pub struct Registry {
    ctx: Arc<Ctx>,
    actors: Mutex<HashMap<(String, String), mpsc::Sender<Msg>>>,
}

/// Which operation to run.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Establish (with `fresh`).
    Establish(bool),
    /// Check (with `fresh`).
    Check(bool),
    /// Revoke.
    Revoke,
}

impl Registry {
    /// A registry over shared context.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            actors: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `op` for (user, system) in that system's actor.
    pub async fn run(&self, op: Op, user: &str, system: &str) -> OpResult {
        let (tx, rx) = oneshot::channel();
        let mut msg = Some(make(op, tx));
        for _ in 0..2 {
            let queue = self.queue(user, system);
            let Some(m) = msg.take() else { break };
            match queue.try_send(m) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(ErrorReply::new(
                        ErrorKind::Busy,
                        format!("{system}: too many requests queued for this system"),
                    )
                    .with_hint("try again in a moment"));
                }
                // The actor exited while idle: start a new one and resend.
                Err(mpsc::error::TrySendError::Closed(m)) => {
                    self.forget(user, system, &queue);
                    msg = Some(m);
                }
            }
        }
        if msg.is_some() {
            return Err(errors::internal(system));
        }
        rx.await.unwrap_or_else(|_| Err(errors::internal(system)))
    }

    fn queue(&self, user: &str, system: &str) -> mpsc::Sender<Msg> {
        let mut actors = self.actors.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.to_owned(), system.to_owned());
        if let Some(q) = actors.get(&key).filter(|q| !q.is_closed()) {
            return q.clone();
        }
        if actors.len() >= PRUNE_AT {
            actors.retain(|_, q| !q.is_closed());
        }
        let q = actor::spawn(self.ctx.clone(), key.0.clone(), key.1.clone());
        actors.insert(key, q.clone());
        q
    }

    fn forget(&self, user: &str, system: &str, dead: &mpsc::Sender<Msg>) {
        let mut actors = self.actors.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.to_owned(), system.to_owned());
        if actors.get(&key).is_some_and(|q| q.same_channel(dead)) {
            actors.remove(&key);
        }
    }

    /// The shared context.
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }
}

fn make(op: Op, reply: oneshot::Sender<OpResult>) -> Msg {
    match op {
        Op::Establish(fresh) => Msg::Establish { fresh, reply },
        Op::Check(fresh) => Msg::Check { fresh, reply },
        Op::Revoke => Msg::Revoke { reply },
    }
}
