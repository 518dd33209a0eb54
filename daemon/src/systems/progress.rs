//! What each running operation waits for, so that a client that has waited
//! more than a second can say so (see `connection.rs`, which sends it as
//! [`Response::Progress`](tapis_agent_proto::Response::Progress)).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The notes of the operations running now, by (user, system).
#[derive(Debug, Default)]
pub struct Board {
    notes: Mutex<HashMap<(String, String), Note>>,
}

#[derive(Debug, Clone)]
struct Note {
    what: String,
    /// Tells this note from a later one of the same operation.
    id: u64,
}

impl Board {
    /// Says what the operation on (user, system) waits for from now on,
    /// until the returned guard is dropped or the next note.
    pub fn note(self: &Arc<Self>, user: &str, system: &str, what: impl Into<String>) -> Noted {
        let key = (user.to_owned(), system.to_owned());
        let id = rand::random();
        let note = Note {
            what: what.into(),
            id,
        };
        self.lock().insert(key.clone(), note);
        Noted {
            board: Arc::clone(self),
            key,
            id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Note>> {
        self.notes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One line per system of `systems` with a note (the client says how
    /// long it has waited):
    /// `stampede3: Tapis is checking the credentials; it connects to the host`.
    pub fn describe(&self, systems: &[String]) -> Vec<String> {
        let notes = self.lock();
        let mut lines: Vec<String> = notes
            .iter()
            .filter(|((_, system), _)| systems.contains(system))
            .map(|((_, system), note)| format!("{system}: {}", note.what))
            .collect();
        lines.sort();
        lines
    }
}

/// Removes its note when dropped (unless a later note replaced it).
#[derive(Debug)]
pub struct Noted {
    board: Arc<Board>,
    key: (String, String),
    id: u64,
}

impl Drop for Noted {
    fn drop(&mut self) {
        let mut notes = self.board.lock();
        if notes.get(&self.key).is_some_and(|n| n.id == self.id) {
            notes.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_last_as_long_as_their_guard() {
        let board = Arc::new(Board::default());
        let systems = vec!["ls6".to_owned(), "frontera".to_owned()];
        {
            let _n = board.note("u", "ls6", "creating TMS keys");
            let _m = board.note("u", "stampede3", "elsewhere");
            assert_eq!(board.describe(&systems), vec!["ls6: creating TMS keys"]);
        }
        assert!(board.describe(&systems).is_empty());
        // A later note outlives the guard of the one it replaced.
        let first = board.note("u", "ls6", "checking");
        let _second = board.note("u", "ls6", "creating");
        drop(first);
        assert_eq!(board.describe(&systems), vec!["ls6: creating"]);
    }
}
