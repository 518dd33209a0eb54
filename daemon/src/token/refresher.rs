//! Background task that refreshes the token before it expires, and looks
//! at `tokens.json` now and then for what peer agents did.

use super::TokenManager;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

impl TokenManager {
    /// Refreshes proactively at `expires_at - margin` until `shutdown` turns
    /// true. Its timers run on real time; a test that moves the config's
    /// clock ahead wakes it to look again.
    pub async fn run_refresher(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut moves = self.config.clock.moves();
        loop {
            let wait = self.refresh_wait();
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.changed.notified() => continue,
                _ = moves.moved() => continue,
                _ = sleep_opt(wait) => {}
                _ = tokio::time::sleep(self.poll_interval()) => {
                    // Busy means a refresh or login is under way: it reads
                    // the file itself.
                    if let Ok(_flight) = self.refresh_lock.try_lock() {
                        self.sync();
                    }
                    continue;
                }
            }
            if *shutdown.borrow() {
                return;
            }
            let _flight = self.refresh_lock.lock().await;
            // Re-check under the lock: a caller may have refreshed already.
            if !self.refresh_due() {
                continue;
            }
            match self.refresh_locked(|m| !m.refresh_due()).await {
                Ok(()) => tracing::info!("access token refreshed"),
                Err(e) => tracing::warn!(error = %e.message, "scheduled refresh failed"),
            }
        }
    }

    /// Whether a planned refresh is due now.
    fn refresh_due(&self) -> bool {
        let now = self.now();
        self.current()
            .filter(|_| self.health().login_required.is_none())
            .and_then(|t| self.next_refresh_at(&t, now))
            .is_some_and(|due| due <= now)
    }

    /// How long to sleep before looking again; `None` when no refresh is
    /// planned. While refreshes fail, the next round waits for the pause
    /// recorded for every agent on the state directory.
    fn refresh_wait(&self) -> Option<Duration> {
        let t = self.current()?;
        let now = self.now();
        if self.health().login_required.is_some() {
            return None;
        }
        let due = self.next_refresh_at(&t, now)?;
        if let Some(retry) = self.pending_retry() {
            let ms = (retry.not_before_ms - self.now_ms()).max(0) as u64;
            return Some(Duration::from_millis(ms));
        }
        Some(Duration::from_secs((due - now).max(0) as u64))
    }
}

async fn sleep_opt(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
