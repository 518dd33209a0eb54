//! Credential operations per system: per-(user, system) queues (see
//! [`queue`]) over one Tapis client, token manager and cache.

mod ops;
pub mod progress;
mod queue;

use crate::cache::Cache;
use crate::config::Config;
use crate::errors;
use crate::tapis::TapisClient;
use crate::token::TokenManager;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub use ops::OpResult;
pub use queue::{Backend, Registry};

/// The agent's state, one per agent: what the operations and the requests
/// share (the dispatcher reaches it through the [`Registry`]).
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
    /// What each running operation waits for.
    pub progress: Arc<progress::Board>,
}

/// Which operation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Establish (with `fresh`).
    Establish(bool),
    /// Check (with `fresh`).
    Check(bool),
    /// Revoke.
    Revoke,
}

type OpFuture<'a> = Pin<Box<dyn Future<Output = OpResult> + Send + 'a>>;

impl Backend for Ctx {
    fn queue_depth(&self) -> usize {
        self.config.queue_depth
    }

    fn known_present(&self, user: &str, system: &str) -> bool {
        // Memory only: what `ops` would answer first, before any file is
        // read. A peer's removal clears this memory (the cache's epoch
        // watcher), so the shared state directory's semantics hold.
        self.cache
            .present_within(user, system, self.config.cache_ttl)
    }

    fn run<'a>(
        &'a self,
        op: Op,
        user: &'a str,
        system: &'a str,
    ) -> impl Future<Output = OpResult> + Send + 'a {
        // Operations are boxed: a runner's task then holds a few hundred
        // bytes instead of the largest operation's state (~4 KB), and only
        // while the operation runs.
        let (name, fut): (&str, OpFuture<'a>) = match op {
            Op::Establish(fresh) => (
                "establish",
                Box::pin(ops::establish(self, user, system, fresh)),
            ),
            Op::Check(fresh) => ("check", Box::pin(ops::check(self, user, system, fresh))),
            Op::Revoke => ("revoke", Box::pin(ops::revoke(self, user, system))),
        };
        bounded(self, name, system, fut)
    }
}

/// Runs one operation under its deadline (see [`Config::deadline`]).
async fn bounded(ctx: &Ctx, op: &str, system: &str, fut: OpFuture<'_>) -> OpResult {
    let deadline = ctx.config.deadline(op == "establish");
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
