//! Connections waiting on their client, oldest first: for its next frame,
//! or to read an answer. When every connection slot is taken and another
//! client is at the door, the accept loop closes the connection that has
//! waited longest, so that clients holding connections open (never
//! finishing a frame, or never reading what they asked for) cannot lock
//! out the ones that have something to ask.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A connection that has not said hello is closed once it has waited this
/// long: a real client sends its hello right after connecting.
pub const SHED_NEW_AFTER: Duration = Duration::from_millis(100);
/// A connection whose client has not read its answer for this long is
/// closed: a client that asked reads at once.
pub const SHED_WRITER_AFTER: Duration = Duration::from_millis(100);
/// A connection that has said hello is closed once it has been idle this
/// long between requests.
pub const SHED_GREETED_AFTER: Duration = Duration::from_secs(1);

type Key = (Instant, u64);

/// What a connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Its hello.
    Hello,
    /// Its client to read an answer the agent is writing.
    Reader,
    /// Its next request, after the hello.
    Request,
}

#[derive(Debug)]
struct Waiter {
    wait: Wait,
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

    /// Marks connection `conn` as waiting on its client until the guard drops.
    pub fn waiting(&self, conn: u64, wait: Wait) -> IdleGuard<'_> {
        let key = (Instant::now(), conn);
        let close = Arc::new(Notify::new());
        self.lock().insert(
            key,
            Waiter {
                wait,
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
    /// never said hello first, else one whose client does not read its
    /// answer, else one idle between requests, each only past its grace
    /// period ([`SHED_NEW_AFTER`], [`SHED_WRITER_AFTER`],
    /// [`SHED_GREETED_AFTER`]). False when no connection qualifies.
    pub fn shed_one(&self) -> bool {
        let now = Instant::now();
        let mut waiting = self.lock();
        let pick = |wait: Wait, after: Duration| {
            waiting
                .iter()
                .find(|(k, w)| w.wait == wait && now.duration_since(k.0) >= after)
                .map(|(k, _)| *k)
        };
        let Some(key) = pick(Wait::Hello, SHED_NEW_AFTER)
            .or_else(|| pick(Wait::Reader, SHED_WRITER_AFTER))
            .or_else(|| pick(Wait::Request, SHED_GREETED_AFTER))
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
        let greeted = set.waiting(1, Wait::Request);
        let silent_old = set.waiting(2, Wait::Hello);
        let silent_new = set.waiting(3, Wait::Hello);
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
        // A client that does not read its answer goes before an idle one.
        let writer = set.waiting(4, Wait::Reader);
        std::thread::sleep(SHED_WRITER_AFTER);
        assert!(set.shed_one());
        tokio::time::timeout(Duration::from_secs(1), writer.closed())
            .await
            .expect("the blocked writer told to close");
        drop(writer);
        drop((silent_old, silent_new));
        drop(greeted);
        assert!(set.is_empty());
    }
}
