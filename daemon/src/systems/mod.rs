//! Credential operations per system: a registry of per-(user, system) actors
//! sharing one Tapis client, token manager and cache.

mod actor;
mod ops;

use crate::cache::Cache;
use crate::config::Config;
use crate::errors;
use crate::tapis::TapisClient;
use crate::token::TokenManager;
use actor::{Handle, Msg, Request, SendError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Semaphore, oneshot};

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
    /// Locks shared with the other agents on the state directory.
    pub locks: Arc<crate::store::lock::Locks>,
    /// Bounds how many systems are worked on upstream at once.
    pub upstream: Semaphore,
}

/// Finds or starts the actor for each (user, system).
#[derive(Debug)]
pub struct Registry {
    ctx: Arc<Ctx>,
    actors: Mutex<HashMap<(String, String), Handle>>,
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
        let mut req = make(op, tx);
        // A second try covers an actor that exited while idle.
        for _ in 0..2 {
            let handle = self.handle(user, system);
            match handle.send(req) {
                Ok(()) | Err(SendError::Busy) => {
                    return rx.await.unwrap_or_else(|_| Err(errors::internal(system)));
                }
                Err(SendError::Closed(back)) => {
                    self.forget(user, system, &handle);
                    req = back;
                }
            }
        }
        Err(errors::internal(system))
    }

    fn handle(&self, user: &str, system: &str) -> Handle {
        let mut actors = self.actors.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.to_owned(), system.to_owned());
        if let Some(h) = actors.get(&key).filter(|h| !h.is_closed()) {
            return h.clone();
        }
        if actors.len() >= PRUNE_AT {
            actors.retain(|_, h| !h.is_closed());
        }
        let h = actor::spawn(self.ctx.clone(), key.0.clone(), key.1.clone());
        actors.insert(key, h.clone());
        h
    }

    fn forget(&self, user: &str, system: &str, dead: &Handle) {
        let mut actors = self.actors.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.to_owned(), system.to_owned());
        if actors.get(&key).is_some_and(|h| h.same_actor(dead)) {
            actors.remove(&key);
        }
    }

    /// The shared context.
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }
}

fn make(op: Op, reply: oneshot::Sender<OpResult>) -> Request {
    match op {
        Op::Establish(fresh) => Request::Establish { fresh, reply },
        Op::Check(fresh) => Request::Other(Msg::Check { fresh, reply }),
        Op::Revoke => Request::Other(Msg::Revoke { reply }),
    }
}
