//! Progress on stderr for answers that take a while: drawn by a small thread
//! only after a delay, only on a terminal, and wiped when the answer comes.
//! After a second it says what it waits for and for how long, so a hung
//! Tapis is never a silent wait.

use crate::ui::{self, Ui};
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Quick answers never show a spinner.
const DELAY: Duration = Duration::from_millis(300);
/// From then on the line says how long the wait has been.
const PATIENCE: Duration = Duration::from_secs(1);
/// Time between frames.
const FRAME: Duration = Duration::from_millis(100);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// What a wait is for: `doing` (e.g. `establishing stampede3`), and who is
/// being waited for (`Tapis`, `the agent`).
#[derive(Debug, Clone)]
pub struct Progress {
    /// The operation, as the user would say it.
    pub doing: String,
    /// Whose answer is awaited.
    pub waits_for: &'static str,
}

impl Progress {
    /// The line shown `waited` after the start: once the agent has said
    /// what it waits for (its progress notes), that.
    pub fn line(&self, waited: Duration) -> String {
        if waited < PATIENCE {
            format!("{}…", self.doing)
        } else if let Some(note) = note() {
            format!("{note} ({} s)", waited.as_secs())
        } else {
            format!(
                "{}: waiting for {} ({} s)",
                self.doing,
                self.waits_for,
                waited.as_secs()
            )
        }
    }
}

/// What the agent last said it waits for (its progress notes).
static NOTE: Mutex<Option<String>> = Mutex::new(None);

/// Records the agent's latest progress notes for the spinner to show.
pub fn progress(notes: &[String]) {
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    *NOTE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = note;
}

fn note() -> Option<String> {
    NOTE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// A running spinner; dropping it stops and wipes it.
#[derive(Debug)]
pub struct Spinner {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts a spinner for `progress`, unless the output is for a script
    /// (`--json`, `-q`) or stderr is not a terminal.
    pub fn start(ui: Ui, progress: Progress) -> Self {
        // Notes of an earlier request say nothing about this one.
        self::progress(&[]);
        let idle = Self {
            stop: None,
            thread: None,
        };
        if ui.json || ui.quiet || !ui::stderr_is_live() {
            return idle;
        }
        let started = Instant::now();
        let (tx, rx) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("spinner".into())
            .spawn(move || spin(&rx, &progress, started));
        match spawned {
            Ok(thread) => Self {
                stop: Some(tx),
                thread: Some(thread),
            },
            // No spinner is better than no answer.
            Err(_) => idle,
        }
    }
}

fn spin(stop: &mpsc::Receiver<()>, progress: &Progress, started: Instant) {
    if stop.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
        return;
    }
    for frame in FRAMES.iter().cycle() {
        let line = progress.line(started.elapsed());
        ui::stderr(&format!("\r\x1b[2K{frame} {line}"));
        if stop.recv_timeout(FRAME) != Err(RecvTimeoutError::Timeout) {
            break;
        }
    }
    ui::stderr("\r\x1b[2K");
}

impl Drop for Spinner {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread; joining makes sure the line
        // is wiped before anything else is printed.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_it_waits_for_after_a_second() {
        let p = Progress {
            doing: "establishing stampede3".into(),
            waits_for: "Tapis",
        };
        assert_eq!(
            p.line(Duration::from_millis(400)),
            "establishing stampede3…"
        );
        assert_eq!(
            p.line(Duration::from_millis(31_400)),
            "establishing stampede3: waiting for Tapis (31 s)"
        );
    }
}
