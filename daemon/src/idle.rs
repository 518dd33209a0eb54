//! Connections waiting for their next frame, oldest first. When every
//! connection slot is taken and another client is at the door, the accept
//! loop closes the connection that has waited longest, so that clients
//! holding connections open (or never finishing a frame) cannot lock out
//! the ones that have something to ask.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A connection that has not said hello is closed once it has waited this
/// long: a real client sends its hello right after connecting.
pub const SHED_NEW_AFTER: Duration = Duration::from_millis(100);
/// A connection that has said hello is closed once it has been idle this
/// long between requests.
pub const SHED_GREETED_AFTER: Duration = Duration::from_secs(1);

type Key = (Instant, u64);

#[derive(Debug)]
struct Waiter {
    greeted: bool,
    close: Arc<Notify>,
}

/// The connections now waiting for input.
#[derive(Debug, Default)]
pub struct IdleSet {
    waiting: Mutex<BTreeMap<Key, Waiter>>,
}

impl IdleSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Waiter>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks connection `conn` as waiting for input until the guard drops.
    pub fn waiting(&self, conn: u64, greeted: bool) -> IdleGuard<'_> {
        let key = (Instant::now(), conn);
        let close = Arc::new(Notify::new());
        self.lock().insert(
            key,
            Waiter {
                greeted,
                close: close.clone(),
            },
        );
        IdleGuard {
            set: self,
            key,
            close,
        }
    }

    /// Tells the connection that has waited longest to close: one that
    /// never said hello first, else one idle between requests, each only
    /// past its grace period ([`SHED_NEW_AFTER`], [`SHED_GREETED_AFTER`]).
    /// False when no connection qualifies.
    pub fn shed_one(&self) -> bool {
        let now = Instant::now();
        let mut waiting = self.lock();
        let pick = |greeted: bool, after: Duration| {
            waiting
                .iter()
                .find(|(k, w)| w.greeted == greeted && now.duration_since(k.0) >= after)
                .map(|(k, _)| *k)
        };
        let Some(key) = pick(false, SHED_NEW_AFTER).or_else(|| pick(true, SHED_GREETED_AFTER))
        else {
            return false;
        };
        if let Some(w) = waiting.remove(&key) {
            w.close.notify_one();
        }
        true
    }

    /// How many connections are waiting for input.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no connection is waiting for input.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a connection in the [`IdleSet`] while it waits for input.
#[derive(Debug)]
pub struct IdleGuard<'a> {
    set: &'a IdleSet,
    key: Key,
    close: Arc<Notify>,
}

impl IdleGuard<'_> {
    /// Resolves when the accept loop wants this connection closed.
    pub async fn closed(&self) {
        self.close.notified().await;
    }
}

impl Drop for IdleGuard<'_> {
    fn drop(&mut self) {
        self.set.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sheds_the_oldest_silent_connection_first() {
        let set = IdleSet::new();
        let greeted = set.waiting(1, true);
        let silent_old = set.waiting(2, false);
        let silent_new = set.waiting(3, false);
        // Nobody has waited long enough yet.
        assert!(!set.shed_one());
        std::thread::sleep(SHED_NEW_AFTER);
        assert!(set.shed_one());
        tokio::time::timeout(Duration::from_secs(1), silent_old.closed())
            .await
            .expect("oldest silent connection told to close");
        assert!(set.shed_one());
        tokio::time::timeout(Duration::from_secs(1), silent_new.closed())
            .await
            .expect("next silent connection told to close");
        // The greeted one is still within its grace period.
        assert!(!set.shed_one());
        assert_eq!(set.len(), 1, "shed connections leave the set at once");
        drop((silent_old, silent_new));
        drop(greeted);
        assert!(set.is_empty());
    }
}
