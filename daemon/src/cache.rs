//! The credential cache: last known state per (user, system), persisted to
//! `cache.json` in the state dir so a restart keeps it.

use crate::{clock, store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tapis_agent_proto::{CredState, StatusInfo, SystemStatus};
use tokio::sync::{Notify, watch};

const CACHE_FILE: &str = "cache.json";
/// Writes are coalesced over this window.
const PERSIST_DEBOUNCE: Duration = Duration::from_millis(50);

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

type Key = (String, String);

/// The cache. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Cache {
    entries: Mutex<HashMap<Key, Entry>>,
    path: PathBuf,
    dirty: Notify,
}

impl Cache {
    /// Loads `cache.json` from `state_dir`; an unreadable file is ignored
    /// with a warning.
    pub fn load(state_dir: &std::path::Path) -> Self {
        let path = state_dir.join(CACHE_FILE);
        let mut entries = HashMap::new();
        match store::read_private(&path) {
            Ok(None) => {}
            Ok(Some(bytes)) => match serde_json::from_slice::<Vec<Record>>(&bytes) {
                Ok(records) => {
                    for r in records {
                        entries.insert(
                            (r.user, r.system),
                            Entry {
                                state: r.state,
                                checked_at: r.checked_at,
                            },
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable cache; starting empty")
                }
            },
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring cache file"),
        }
        Self {
            entries: Mutex::new(entries),
            path,
            dirty: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when (user, system) is known `present` and younger than `ttl`.
    pub fn present_within(&self, user: &str, system: &str, ttl: Duration) -> bool {
        let key = (user.to_owned(), system.to_owned());
        self.lock().get(&key).is_some_and(|e| {
            e.state == CredState::Present && clock::now() - e.checked_at < ttl.as_secs() as i64
        })
    }

    /// Records that credentials are present.
    pub fn set_present(&self, user: &str, system: &str) {
        let entry = Entry {
            state: CredState::Present,
            checked_at: clock::now(),
        };
        self.lock()
            .insert((user.to_owned(), system.to_owned()), entry);
        self.dirty.notify_one();
    }

    /// Forgets (user, system).
    pub fn remove(&self, user: &str, system: &str) {
        if self
            .lock()
            .remove(&(user.to_owned(), system.to_owned()))
            .is_some()
        {
            self.dirty.notify_one();
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.lock().clear();
        self.dirty.notify_one();
    }

    /// Up to [`StatusInfo::MAX_SYSTEMS`] entries (sorted) and the total count.
    pub fn snapshot(&self) -> (Vec<SystemStatus>, u64) {
        let entries = self.lock();
        let total = entries.len() as u64;
        let mut list: Vec<SystemStatus> = entries
            .iter()
            .map(|((user, system), e)| SystemStatus {
                system: system.clone(),
                user: user.clone(),
                state: e.state,
                checked_at: e.checked_at,
            })
            .collect();
        drop(entries);
        list.sort_by(|a, b| (&a.system, &a.user).cmp(&(&b.system, &b.user)));
        list.truncate(StatusInfo::MAX_SYSTEMS);
        (list, total)
    }

    /// Writes the cache to disk now (atomically).
    pub fn persist(&self) -> std::io::Result<()> {
        let records: Vec<Record> = self
            .lock()
            .iter()
            .map(|((user, system), e)| Record {
                user: user.clone(),
                system: system.clone(),
                state: e.state,
                checked_at: e.checked_at,
            })
            .collect();
        let bytes = serde_json::to_vec(&records).map_err(std::io::Error::other)?;
        store::write_atomic(&self.path, &bytes)
    }

    /// Persists changes (debounced) until shutdown, then once more.
    pub async fn run_persister(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.dirty.notified() => {}
            }
            tokio::time::sleep(PERSIST_DEBOUNCE).await;
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.persist()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "cannot write the credential cache"),
                Err(e) => tracing::error!(error = %e, "cache writer failed"),
            }
        }
        if let Err(e) = self.persist() {
            tracing::error!(error = %e, "cannot write the credential cache at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::load(dir.path());
        c.set_present("u", "ls6");
        c.persist().unwrap();
        let c2 = Cache::load(dir.path());
        assert!(c2.present_within("u", "ls6", Duration::from_secs(60)));
        assert!(!c2.present_within("u", "ls6", Duration::ZERO));
        assert!(!c2.present_within("v", "ls6", Duration::from_secs(60)));
    }

    #[test]
    fn corrupt_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        store::write_atomic(&dir.path().join(CACHE_FILE), b"{not json").unwrap();
        let c = Cache::load(dir.path());
        assert_eq!(c.snapshot().1, 0);
    }
}
