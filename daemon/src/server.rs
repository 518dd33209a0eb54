//! The accept loop and graceful shutdown.

use crate::cache::Cache;
use crate::config::Config;
use crate::connection;
use crate::dispatch::Agent;
use crate::idle::IdleSet;
use crate::store::{self, lock::Locks};
use crate::systems::Ctx;
use crate::tapis::TapisClient;
use crate::token::{self, TokenManager};
use interprocess::local_socket::tokio::{Listener, prelude::*};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// While all connection slots are taken, how often to look again for an
/// idle connection to close.
const SHED_RETRY: Duration = Duration::from_millis(50);
/// A lock file is abandoned when older than the request deadline by this.
const LEASE_SLACK: Duration = Duration::from_secs(30);
/// A temp file this old belongs to no write in progress.
const TEMP_FILE_AGE: Duration = Duration::from_secs(600);

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state directory is unusable.
    #[error("state directory {dir}: {source}")]
    State {
        /// The directory.
        dir: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("{0}")]
    Http(String),
}

/// Serves requests on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (bounded by
/// `config.shutdown_grace`), stops the background tasks and returns.
/// Nothing is left to save then: tokens and cache entries are written to
/// the state directory when they change.
pub async fn run(
    listener: Listener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    run_with_ready(listener, config, shutdown, || {}).await
}

/// [`run`], calling `ready` once the state directory is loaded,
/// just before the first accept: the moment to tell systemd `READY=1`, or a
/// wrapper that its private agent is usable.
pub async fn run_with_ready(
    listener: Listener,
    config: Config,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> Result<(), RunError> {
    let state_err = |source| RunError::State {
        dir: config.state_dir.display().to_string(),
        source,
    };
    token::prepare_state_dir(&config).map_err(state_err)?;
    // Any number of agents may share the state directory (an HPC home
    // seen by every node): they take its locks for one operation at a time.
    let locks = Locks::open(
        &config.state_dir,
        config.state_lock,
        config.deadline(true) + LEASE_SLACK,
        config.flock_call,
    )
    .map_err(state_err)?;
    let lock_info = locks.info();
    tracing::info!(method = lock_info.method.as_str(), reason = ?lock_info.reason, filesystem = ?lock_info.filesystem, "state directory locks");
    // A write cut short by a crash leaves its temp file; the state itself
    // is whole (renames are atomic), so the leftovers just go. A peer may
    // be writing one right now: only old ones are taken.
    for dir in [config.state_dir.clone(), config.state_dir.join("cache")] {
        match store::remove_stale_temp_files(&dir, TEMP_FILE_AGE) {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "removed temp files of an interrupted write"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot clear temp files"),
        }
    }
    let config = Arc::new(config);
    // Said first in plain words: no secret goes out in clear.
    config
        .check_transport()
        .map_err(|why| RunError::Http(format!("base_url {why}")))?;
    let tapis = TapisClient::new(&config).map_err(|e| RunError::Http(e.to_string()))?;
    let tokens = Arc::new(TokenManager::load(
        config.clone(),
        tapis.clone(),
        locks.clone(),
    ));
    let cache = Arc::new(Cache::load(&config.state_dir).with_clock(config.clock.clone()));
    let ctx = Arc::new(Ctx {
        config: config.clone(),
        tapis,
        tokens: tokens.clone(),
        cache: cache.clone(),
        locks: locks.clone(),
        upstream: Semaphore::new(config.max_parallel_systems),
        progress: Arc::default(),
    });
    let agent = Arc::new(Agent::new(ctx));

    let (stop_tx, stop_rx) = watch::channel(false);
    let refresher = tokio::spawn(tokens.clone().run_refresher(stop_rx.clone()));
    let watcher = tokio::spawn(cache.clone().run_watcher(stop_rx.clone()));

    let slots = Arc::new(Semaphore::new(config.max_connections));
    let idle = Arc::new(IdleSet::new());
    tracing::info!(base_url = %config.base_url, "agent ready");
    ready();
    tokio::pin!(shutdown);
    'accept: loop {
        // Accept one connection, then find it a slot: the count stays
        // bounded (one extra socket at most waits here).
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            s = listener.accept() => s,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = loop {
            if let Ok(p) = slots.clone().try_acquire_owned() {
                break p;
            }
            // Full, and a client is waiting: close the connection that has
            // waited longest for input rather than let idle connections
            // lock everyone out. If all are busy, wait for one to finish.
            idle.shed_one();
            tokio::select! {
                biased;
                _ = &mut shutdown => break 'accept,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => break p,
                    Err(_) => break 'accept,
                },
                _ = tokio::time::sleep(SHED_RETRY) => {}
            }
        };
        let agent = agent.clone();
        let idle = idle.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection::serve(stream, agent, idle, stop).await;
            drop(permit);
        });
    }

    tracing::info!("shutting down");
    // Dropping the listener removes the socket file: no new clients.
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(config.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
    let _ = refresher.await;
    let _ = watcher.await;
    tracing::info!("stopped");
    Ok(())
}
