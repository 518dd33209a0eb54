//! The credential cache: the last known state per (user, system).
//!
//! Every agent on the state directory shares it: one small file per entry
//! in `cache/`, written (under that entry's state-directory lock, see
//! [`crate::systems`]) by whichever agent learnt something, and read by the
//! others when their memory has no answer. A removal (revoke, a failed
//! check, logout) also changes `cache/epoch`, and agents that see it change
//! forget what they remember, so a revoke on one node is not contradicted
//! by another node's memory for longer than [`WATCH_INTERVAL`].

use crate::clock::Clock;
use crate::store;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tapis_agent_proto::{CredState, StatusInfo, SystemStatus};
use tokio::sync::watch;

/// Directory of the entries, inside the state directory.
const CACHE_DIR: &str = "cache";
/// Changes whenever an entry is removed.
const EPOCH_FILE: &str = "epoch";
/// The single-file cache of earlier versions, dropped at start.
const LEGACY_FILE: &str = "cache.json";
/// How often an agent looks at `cache/epoch`.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// One entry file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    user: String,
    system: String,
    state: CredState,
    checked_at: i64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    state: CredState,
    checked_at: i64,
}

/// (user, system) as a map key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SystemKey {
    user: String,
    system: String,
}

impl SystemKey {
    /// The key of (user, system).
    pub fn new(user: &str, system: &str) -> Self {
        Self {
            user: user.to_owned(),
            system: system.to_owned(),
        }
    }

    /// The user and the system.
    pub fn parts(&self) -> (&str, &str) {
        (&self.user, &self.system)
    }
}

/// The cache. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Cache {
    /// What this agent has seen, for answers without any file access.
    entries: Mutex<HashMap<SystemKey, Entry>>,
    dir: PathBuf,
    /// The last `cache/epoch` seen.
    epoch: Mutex<Option<String>>,
    /// What entries' ages are read on (the config's clock).
    clock: Clock,
}

/// A stable name for (user, system): the entry's file and its lock. FNV-1a,
/// so that every agent version computes the same one.
pub fn key_id(user: &str, system: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.bytes().chain([0]).chain(system.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Cache {
    /// The cache of `state_dir` (created if missing). Nothing is read yet:
    /// entries are read when asked for.
    pub fn load(state_dir: &Path) -> Self {
        let dir = state_dir.join(CACHE_DIR);
        if let Err(e) = store::ensure_private_dir(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot use the shared credential cache");
        }
        let legacy = state_dir.join(LEGACY_FILE);
        if legacy.exists() {
            tracing::info!(file = %legacy.display(), "dropping the old single-file cache");
            let _ = store::remove_if_exists(&legacy);
        }
        let epoch = read_epoch(&dir);
        Self {
            entries: Mutex::new(HashMap::new()),
            dir,
            epoch: Mutex::new(epoch),
            clock: Clock::system(),
        }
    }

    /// The same cache, with entries' ages read on `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SystemKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, user: &str, system: &str) -> PathBuf {
        self.dir.join(format!("{}.json", key_id(user, system)))
    }

    /// True when this agent knows (user, system) `present`, younger than `ttl`.
    pub fn present_within(&self, user: &str, system: &str, ttl: Duration) -> bool {
        self.lock()
            .get(&SystemKey::new(user, system))
            .is_some_and(|e| self.fresh_present(e.state, e.checked_at, ttl))
    }

    /// [`present_within`](Self::present_within), else what a peer agent
    /// stored: a `present` entry younger than `ttl` is remembered and true.
    pub fn present_shared(&self, user: &str, system: &str, ttl: Duration) -> bool {
        if self.present_within(user, system, ttl) {
            return true;
        }
        match self.read(user, system) {
            Some(r) if self.fresh_present(r.state, r.checked_at, ttl) => {
                self.lock().insert(
                    SystemKey::new(&r.user, &r.system),
                    Entry {
                        state: r.state,
                        checked_at: r.checked_at,
                    },
                );
                true
            }
            _ => false,
        }
    }

    /// When (user, system) was last confirmed `present`, Unix seconds,
    /// however long ago: for errors that say what was last known.
    pub fn last_present(&self, user: &str, system: &str) -> Option<i64> {
        let mine = self
            .lock()
            .get(&SystemKey::new(user, system))
            .filter(|e| e.state == CredState::Present)
            .map(|e| e.checked_at);
        mine.or_else(|| {
            self.read(user, system)
                .filter(|r| r.state == CredState::Present)
                .map(|r| r.checked_at)
        })
    }

    /// Whether an entry is `present` and younger than `ttl`.
    fn fresh_present(&self, state: CredState, checked_at: i64, ttl: Duration) -> bool {
        state == CredState::Present && self.clock.now() - checked_at < ttl.as_secs() as i64
    }

    /// How long ago `at` (Unix seconds) was, in seconds.
    pub fn age(&self, at: i64) -> i64 {
        self.clock.now() - at
    }

    fn read(&self, user: &str, system: &str) -> Option<Record> {
        read_record(&self.path(user, system)).filter(|r| r.user == user && r.system == system)
    }

    /// Records, here and for every peer, that credentials are present.
    pub fn set_present(&self, user: &str, system: &str) {
        let record = Record {
            user: user.to_owned(),
            system: system.to_owned(),
            state: CredState::Present,
            checked_at: self.clock.now(),
        };
        self.lock().insert(
            SystemKey::new(user, system),
            Entry {
                state: record.state,
                checked_at: record.checked_at,
            },
        );
        let written = serde_json::to_vec(&record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| store::write_atomic_unsynced(&self.path(user, system), &bytes));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot store a cache entry; peer agents will check again");
        }
    }

    /// Forgets (user, system), here and for every peer.
    pub fn remove(&self, user: &str, system: &str) {
        self.lock().remove(&SystemKey::new(user, system));
        let path = self.path(user, system);
        match std::fs::remove_file(&path) {
            Ok(()) => self.bump_epoch(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove a cache entry")
            }
        }
    }

    /// Forgets everything, here and for every peer.
    pub fn clear(&self) {
        self.lock().clear();
        for path in self.entry_files() {
            if let Err(e) = store::remove_if_exists(&path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove a cache entry");
            }
        }
        self.bump_epoch();
    }

    fn bump_epoch(&self) {
        let epoch = format!("{:016x}", rand::random::<u64>());
        match store::write_atomic_unsynced(&self.dir.join(EPOCH_FILE), epoch.as_bytes()) {
            Ok(()) => *self.epoch.lock().unwrap_or_else(PoisonError::into_inner) = Some(epoch),
            Err(e) => tracing::warn!(error = %e, "cannot tell peer agents about a removal"),
        }
    }

    /// Forgets what this agent remembers when a peer removed entries since
    /// the last look. True when it did.
    pub fn sync(&self) -> bool {
        let now = read_epoch(&self.dir);
        let mut seen = self.epoch.lock().unwrap_or_else(PoisonError::into_inner);
        if *seen == now {
            return false;
        }
        *seen = now;
        drop(seen);
        self.lock().clear();
        true
    }

    fn entry_files(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect()
    }

    /// Up to [`StatusInfo::MAX_SYSTEMS`] entries of the shared cache
    /// (sorted) and how many it holds in all. Reads every entry: for
    /// `status`, not for a hot path.
    pub fn snapshot(&self) -> (Vec<SystemStatus>, u64) {
        let mut list: Vec<SystemStatus> = self
            .entry_files()
            .iter()
            .filter_map(|p| read_record(p))
            .map(|r| SystemStatus {
                system: r.system,
                user: r.user,
                state: r.state,
                checked_at: r.checked_at,
            })
            .collect();
        let total = list.len() as u64;
        list.sort_by(|a, b| (&a.system, &a.user).cmp(&(&b.system, &b.user)));
        list.truncate(StatusInfo::MAX_SYSTEMS);
        (list, total)
    }

    /// Watches `cache/epoch` until shutdown.
    pub async fn run_watcher(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            }
            if self.sync() {
                tracing::debug!(
                    "a peer agent removed cache entries; forgetting what is remembered"
                );
            }
        }
    }
}

/// One entry file; a missing one is `None`, a broken one too, with a warning.
fn read_record(path: &Path) -> Option<Record> {
    let ignoring = |e: &dyn std::fmt::Display| {
        tracing::warn!(file = %path.display(), error = %e, "ignoring a cache entry");
    };
    let bytes = match store::read_private(path) {
        Ok(bytes) => bytes?,
        Err(e) => {
            ignoring(&e);
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| {
            ignoring(&format!(
                "not a cache entry (line {} column {})",
                e.line(),
                e.column()
            ))
        })
        .ok()
}

fn read_epoch(dir: &Path) -> Option<String> {
    store::read_private(&dir.join(EPOCH_FILE))
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn entries_are_shared_between_agents() {
        let dir = tempfile::tempdir().unwrap();
        let a = Cache::load(dir.path());
        let b = Cache::load(dir.path());
        a.set_present("u", "ls6");
        assert!(!b.present_within("u", "ls6", TTL), "not in b's memory yet");
        assert!(b.present_shared("u", "ls6", TTL));
        assert!(b.present_within("u", "ls6", TTL), "remembered once read");
        assert!(!b.present_shared("u", "ls6", Duration::ZERO));
        assert!(!b.present_shared("v", "ls6", TTL));
    }

    #[test]
    fn a_removal_reaches_peers_through_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let a = Cache::load(dir.path());
        let b = Cache::load(dir.path());
        a.set_present("u", "ls6");
        assert!(b.present_shared("u", "ls6", TTL));
        assert!(!b.sync(), "nothing removed yet");
        a.remove("u", "ls6");
        assert!(b.sync());
        assert!(!b.present_shared("u", "ls6", TTL));
        a.set_present("u", "frontera");
        a.clear();
        assert!(!b.present_shared("u", "frontera", TTL));
        assert_eq!(b.snapshot().1, 0);
    }

    #[test]
    fn survives_a_restart_and_lists_entries() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::load(dir.path());
        c.set_present("u", "ls6");
        c.set_present("u", "frontera");
        drop(c);
        let c2 = Cache::load(dir.path());
        assert!(c2.present_shared("u", "ls6", TTL));
        let (list, total) = c2.snapshot();
        assert_eq!(total, 2);
        let names: Vec<&str> = list.iter().map(|s| s.system.as_str()).collect();
        assert_eq!(names, ["frontera", "ls6"]);
    }

    #[test]
    fn corrupt_entries_and_the_old_file_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        store::write_atomic(&dir.path().join(LEGACY_FILE), b"[]").unwrap();
        let c = Cache::load(dir.path());
        assert!(!dir.path().join(LEGACY_FILE).exists());
        store::write_atomic(&c.path("u", "ls6"), b"{not json").unwrap();
        assert!(!c.present_shared("u", "ls6", TTL));
        assert_eq!(c.snapshot().0.len(), 0);
    }

    #[test]
    fn key_ids_are_stable() {
        assert_eq!(key_id("u", "ls6"), key_id("u", "ls6"));
        assert_ne!(key_id("u", "ls6"), key_id("u", "ls"));
        assert_ne!(key_id("ab", "c"), key_id("a", "bc"));
        assert_eq!(key_id("", ""), "af63bd4c8601b7df");
    }
}
