//! Per-(user, system) queues in one map.
//!
//! Requests of one (user, system) run strictly in arrival order, one at a
//! time; an establish that arrives while another establish waits (queued,
//! not started) joins it, so concurrent establishes share one upstream
//! sequence and one queue slot.
//!
//! A key has an entry in the map only while it has work running or waiting:
//! the request that finds no entry creates one and spawns the runner that
//! works through the queue; the runner removes the entry when the queue is
//! empty, then exits. An idle system therefore costs nothing here (only its
//! cache entry), where a task and a channel per system used to stay alive.
//! A non-fresh establish or check for a key without an entry, which this
//! agent's memory knows `present`, is answered on the spot: nothing is
//! queued for that key, so no ordering is at stake.

use super::Op;
use super::ops::OpResult;
use crate::cache::SystemKey;
use crate::errors;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tapis_agent_proto::{CredState, ErrorKind, ErrorReply};
use tokio::sync::oneshot;
use tracing::Instrument;

/// What the queues run operations on: [`super::Ctx`] in the agent, a
/// scripted stand-in in tests.
pub trait Backend: Send + Sync + 'static {
    /// How many requests may wait per (user, system) behind the running one.
    fn queue_depth(&self) -> usize;
    /// Whether this agent's memory knows (user, system) `present` and young
    /// enough: no I/O, since the registry's lock is held while asking.
    fn known_present(&self, user: &str, system: &str) -> bool;
    /// Runs one operation to its answer.
    fn run<'a>(
        &'a self,
        op: Op,
        user: &'a str,
        system: &'a str,
    ) -> impl Future<Output = OpResult> + Send + 'a;
}

/// Where an answer goes.
type Reply = oneshot::Sender<OpResult>;
/// The queues of the keys with work.
type Queues = Mutex<HashMap<SystemKey, Queue>>;

/// One queued operation and everyone waiting for its answer (several for a
/// batch of establishes).
#[derive(Debug)]
struct Item {
    op: Op,
    replies: Vec<Reply>,
}

impl Item {
    fn answer(mut self, result: OpResult) {
        let last = self.replies.pop();
        for r in self.replies {
            // A caller that went away just misses its answer.
            let _ = r.send(result.clone());
        }
        if let Some(r) = last {
            let _ = r.send(result);
        }
    }
}

/// The requests of one key waiting behind the running one.
#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Item>,
}

enum Submitted {
    /// Answered without queueing (from the cache, or busy).
    Answered(OpResult),
    /// Queued: the answer comes here.
    Queued(oneshot::Receiver<OpResult>),
}

impl Queue {
    /// Queues `op` behind what is there, or joins the establish batch at
    /// the tail.
    fn push(&mut self, op: Op, depth: usize) -> Submitted {
        let (tx, rx) = oneshot::channel();
        if let (Op::Establish(fresh), Some(tail)) = (op, self.waiting.back_mut())
            && let Op::Establish(tail_fresh) = &mut tail.op
        {
            // Not started yet: one run answers both, fresh if either asks.
            *tail_fresh |= fresh;
            tail.replies.push(tx);
            return Submitted::Queued(rx);
        }
        if self.waiting.len() >= depth {
            return Submitted::Answered(Err(busy()));
        }
        self.waiting.push_back(Item {
            op,
            replies: vec![tx],
        });
        Submitted::Queued(rx)
    }
}

/// The answer given when a system's queue is full.
pub fn busy() -> ErrorReply {
    ErrorReply::new(ErrorKind::Busy, "too many requests queued for this system")
        .with_hint("try again in a moment")
}

fn lock(queues: &Queues) -> MutexGuard<'_, HashMap<SystemKey, Queue>> {
    queues.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs operations per (user, system) in arrival order.
#[derive(Debug)]
pub struct Registry<B: Backend = super::Ctx> {
    backend: Arc<B>,
    queues: Arc<Queues>,
}

impl<B: Backend> Registry<B> {
    /// A registry running operations on `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            backend,
            queues: Arc::default(),
        }
    }

    /// The backend (the shared context, in the agent).
    pub fn ctx(&self) -> &Arc<B> {
        &self.backend
    }

    /// Runs `op` for (user, system) after everything that arrived before it
    /// for that key.
    pub async fn run(&self, op: Op, user: &str, system: &str) -> OpResult {
        match self.submit(op, user, system) {
            Submitted::Answered(result) => result,
            Submitted::Queued(rx) => rx.await.unwrap_or_else(|_| Err(errors::internal(system))),
        }
    }

    /// Queues `op`, answers it, or starts a runner for it; never waits.
    fn submit(&self, op: Op, user: &str, system: &str) -> Submitted {
        let key = SystemKey::new(user, system);
        let mut queues = lock(&self.queues);
        if let Some(queue) = queues.get_mut(&key) {
            return queue.push(op, self.backend.queue_depth());
        }
        let cacheable = matches!(op, Op::Establish(false) | Op::Check(false));
        if cacheable && self.backend.known_present(user, system) {
            return Submitted::Answered(Ok((CredState::Present, true)));
        }
        queues.insert(key.clone(), Queue::default());
        drop(queues);
        let (tx, rx) = oneshot::channel();
        let first = Item {
            op,
            replies: vec![tx],
        };
        let span = tracing::info_span!("system", %system, %user);
        let runner = Runner {
            queues: self.queues.clone(),
            key,
            done: false,
        };
        tokio::spawn(runner.drain(self.backend.clone(), first).instrument(span));
        Submitted::Queued(rx)
    }

    /// Keys with work running or waiting.
    #[cfg(test)]
    fn pending(&self) -> usize {
        lock(&self.queues).len()
    }
}

/// The one runner of a key while its entry exists. Dropped before the queue
/// is drained (the runtime shutting down, a panic), it removes the entry:
/// the waiting callers get an error instead of waiting forever.
struct Runner {
    queues: Arc<Queues>,
    key: SystemKey,
    /// Set once the runner has removed the entry itself.
    done: bool,
}

impl Runner {
    async fn drain<B: Backend>(mut self, backend: Arc<B>, first: Item) {
        let mut item = first;
        loop {
            let (user, system) = self.key.parts();
            let result = backend.run(item.op, user, system).await;
            item.answer(result);
            // Taken under the lock, so a request that arrives after the
            // entry is gone finds no entry and starts a runner of its own.
            let mut queues = lock(&self.queues);
            match queues
                .get_mut(&self.key)
                .and_then(|q| q.waiting.pop_front())
            {
                Some(next) => item = next,
                None => {
                    queues.remove(&self.key);
                    self.done = true;
                    return;
                }
            }
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.queues).remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use tokio::sync::Semaphore;

    /// Records the operations it runs; each waits for a permit of `gate`
    /// so tests decide when it finishes.
    #[derive(Debug)]
    struct Script {
        depth: usize,
        log: Mutex<Vec<(String, Op)>>,
        gate: Semaphore,
        cached: AtomicBool,
    }

    impl Script {
        fn new(depth: usize) -> Arc<Self> {
            Arc::new(Self {
                depth,
                log: Mutex::default(),
                gate: Semaphore::new(0),
                cached: AtomicBool::new(false),
            })
        }

        fn log(&self) -> Vec<String> {
            self.log
                .lock()
                .unwrap()
                .iter()
                .map(|(s, op)| format!("{s}:{op:?}"))
                .collect()
        }
    }

    impl Backend for Script {
        fn queue_depth(&self) -> usize {
            self.depth
        }

        fn known_present(&self, _user: &str, _system: &str) -> bool {
            self.cached.load(Ordering::Relaxed)
        }

        async fn run(&self, op: Op, _user: &str, system: &str) -> OpResult {
            self.log.lock().unwrap().push((system.to_owned(), op));
            self.gate.acquire().await.unwrap().forget();
            match op {
                Op::Establish(_) => Ok((CredState::Created, false)),
                Op::Check(_) => Ok((CredState::Missing, false)),
                Op::Revoke => Ok((CredState::Revoked, false)),
            }
        }
    }

    type Pending = tokio::task::JoinHandle<OpResult>;

    fn start(reg: &Arc<Registry<Script>>, op: Op, system: &str) -> Pending {
        let reg = reg.clone();
        let system = system.to_owned();
        tokio::spawn(async move { reg.run(op, "u", &system).await })
    }

    /// Lets every spawned task run until it waits.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// Waits (bounded) until the registry holds no entry.
    async fn drained(reg: &Registry<Script>) {
        for _ in 0..200 {
            if reg.pending() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{} keys still pending", reg.pending());
    }

    async fn state(p: Pending) -> CredState {
        p.await.unwrap().unwrap().0
    }

    #[tokio::test]
    async fn one_key_runs_in_arrival_order_and_the_entry_goes() {
        let script = Script::new(16);
        let reg = Arc::new(Registry::new(script.clone()));
        let ops = [
            Op::Establish(false),
            Op::Check(true),
            Op::Revoke,
            Op::Establish(false),
            Op::Check(false),
        ];
        let mut pending = Vec::new();
        for op in ops {
            pending.push(start(&reg, op, "ls6"));
            settle().await;
        }
        // Another key is not held up by the first one's queue.
        let other = start(&reg, Op::Revoke, "frontera");
        settle().await;
        assert_eq!(reg.pending(), 2);
        script.gate.add_permits(ops.len() + 1);
        let states = [
            CredState::Created,
            CredState::Missing,
            CredState::Revoked,
            CredState::Created,
            CredState::Missing,
        ];
        for (p, want) in pending.into_iter().zip(states) {
            assert_eq!(state(p).await, want);
        }
        assert_eq!(state(other).await, CredState::Revoked);
        drained(&reg).await;
        let ls6: Vec<String> = script
            .log()
            .into_iter()
            .filter(|l| l.starts_with("ls6"))
            .collect();
        assert_eq!(
            ls6,
            [
                "ls6:Establish(false)",
                "ls6:Check(true)",
                "ls6:Revoke",
                "ls6:Establish(false)",
                "ls6:Check(false)"
            ]
        );
    }

    #[tokio::test]
    async fn waiting_establishes_share_one_run_and_fresh_is_ored() {
        let script = Script::new(1);
        let reg = Arc::new(Registry::new(script.clone()));
        let running = start(&reg, Op::Establish(false), "ls6");
        settle().await;
        // These wait behind the running one, as one batch in one slot.
        let batch: Vec<Pending> = [false, true, false]
            .into_iter()
            .map(|fresh| start(&reg, Op::Establish(fresh), "ls6"))
            .collect();
        settle().await;
        script.gate.add_permits(2);
        assert_eq!(state(running).await, CredState::Created);
        for p in batch {
            assert_eq!(state(p).await, CredState::Created);
        }
        drained(&reg).await;
        assert_eq!(
            script.log(),
            ["ls6:Establish(false)", "ls6:Establish(true)"]
        );
    }

    #[tokio::test]
    async fn an_establish_behind_a_check_starts_a_new_batch() {
        let script = Script::new(8);
        let reg = Arc::new(Registry::new(script.clone()));
        let mut pending = Vec::new();
        for op in [
            Op::Revoke,
            Op::Establish(false),
            Op::Check(false),
            Op::Establish(false),
            Op::Establish(false),
        ] {
            pending.push(start(&reg, op, "ls6"));
            settle().await;
        }
        script.gate.add_permits(4);
        for p in pending {
            p.await.unwrap().unwrap();
        }
        drained(&reg).await;
        assert_eq!(
            script.log(),
            [
                "ls6:Revoke",
                "ls6:Establish(false)",
                "ls6:Check(false)",
                "ls6:Establish(false)"
            ]
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_and_batches_still_join() {
        let script = Script::new(2);
        let reg = Arc::new(Registry::new(script.clone()));
        let mut pending = vec![start(&reg, Op::Revoke, "ls6")];
        settle().await;
        pending.push(start(&reg, Op::Check(false), "ls6"));
        pending.push(start(&reg, Op::Establish(false), "ls6"));
        settle().await;
        // Two waiting: the queue is full.
        let e = reg.run(Op::Revoke, "u", "ls6").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Busy);
        assert_eq!(e.message, "too many requests queued for this system");
        // Joining the waiting establish takes no slot.
        pending.push(start(&reg, Op::Establish(true), "ls6"));
        settle().await;
        // Other keys have queues of their own.
        pending.push(start(&reg, Op::Revoke, "frontera"));
        settle().await;
        script.gate.add_permits(4);
        for p in pending {
            p.await.unwrap().unwrap();
        }
        drained(&reg).await;
        assert_eq!(script.log().len(), 4);
        assert!(script.log().contains(&"ls6:Establish(true)".to_owned()));
    }

    #[tokio::test]
    async fn a_dropped_caller_does_not_stall_the_queue() {
        let script = Script::new(8);
        let reg = Arc::new(Registry::new(script.clone()));
        let running = start(&reg, Op::Establish(false), "ls6");
        settle().await;
        let gone = start(&reg, Op::Revoke, "ls6");
        let batch_gone = start(&reg, Op::Establish(false), "ls6");
        let after = start(&reg, Op::Check(false), "ls6");
        settle().await;
        running.abort();
        gone.abort();
        batch_gone.abort();
        script.gate.add_permits(4);
        assert_eq!(state(after).await, CredState::Missing);
        drained(&reg).await;
        assert_eq!(
            script.log(),
            [
                "ls6:Establish(false)",
                "ls6:Revoke",
                "ls6:Establish(false)",
                "ls6:Check(false)"
            ]
        );
    }

    #[tokio::test]
    async fn cached_answers_come_inline_only_when_nothing_is_queued() {
        let script = Script::new(8);
        script.cached.store(true, Ordering::Relaxed);
        let reg = Arc::new(Registry::new(script.clone()));
        assert_eq!(
            reg.run(Op::Establish(false), "u", "ls6").await.unwrap(),
            (CredState::Present, true)
        );
        assert_eq!(
            reg.run(Op::Check(false), "u", "ls6").await.unwrap(),
            (CredState::Present, true)
        );
        assert_eq!(reg.pending(), 0, "nothing spawned for a cached answer");
        assert!(script.log().is_empty());
        // Fresh asks go upstream; so does anything behind queued work.
        let fresh = start(&reg, Op::Establish(true), "ls6");
        settle().await;
        let revoke = start(&reg, Op::Revoke, "ls6");
        let behind = start(&reg, Op::Check(false), "ls6");
        settle().await;
        script.gate.add_permits(3);
        assert_eq!(state(fresh).await, CredState::Created);
        assert_eq!(state(revoke).await, CredState::Revoked);
        assert_eq!(state(behind).await, CredState::Missing);
        drained(&reg).await;
        assert_eq!(
            script.log(),
            ["ls6:Establish(true)", "ls6:Revoke", "ls6:Check(false)"]
        );
    }

    #[tokio::test]
    async fn many_keys_leave_an_empty_map() {
        let script = Script::new(4);
        let reg = Arc::new(Registry::new(script.clone()));
        script.gate.add_permits(1000);
        let pending: Vec<Pending> = (0..500)
            .map(|i| start(&reg, Op::Establish(false), &format!("s{}", i % 250)))
            .collect();
        for p in pending {
            p.await.unwrap().unwrap();
        }
        drained(&reg).await;
        assert_eq!(script.log().len(), 500);
    }

    #[tokio::test]
    async fn a_runner_dropped_early_answers_its_waiters() {
        let script = Script::new(8);
        let reg = Arc::new(Registry::new(script.clone()));
        // A runner whose task is dropped before it ran anything, as in a
        // runtime shutdown: its entry goes, and so do the waiting replies.
        lock(&reg.queues).insert(SystemKey::new("u", "ls6"), Queue::default());
        let waiting = start(&reg, Op::Check(false), "ls6");
        settle().await;
        drop(Runner {
            queues: reg.queues.clone(),
            key: SystemKey::new("u", "ls6"),
            done: false,
        });
        assert_eq!(reg.pending(), 0);
        let e = waiting.await.unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other);
        assert!(script.log().is_empty());
    }
}
