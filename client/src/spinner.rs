//! A progress spinner on stderr for answers that take a while: drawn by a
//! small thread only after a delay, only on a terminal, and wiped when the
//! answer comes.

use crate::ui::{self, Ui};
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Quick answers never show a spinner.
const DELAY: Duration = Duration::from_millis(300);
/// Time between frames.
const FRAME: Duration = Duration::from_millis(100);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// What the agent last said it waits for (its progress notes), shown
/// instead of the spinner's own label.
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
    /// Starts a spinner labelled `label`, unless the output is for a script
    /// (`--json`, `-q`) or stderr is not a terminal.
    pub fn start(ui: Ui, label: String) -> Self {
        let idle = Self {
            stop: None,
            thread: None,
        };
        if ui.json || ui.quiet || !ui::stderr_is_live() {
            return idle;
        }
        let (tx, rx) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("spinner".into())
            .spawn(move || spin(&rx, &label));
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

fn spin(stop: &mpsc::Receiver<()>, label: &str) {
    if stop.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
        return;
    }
    for frame in FRAMES.iter().cycle() {
        let shown = note().unwrap_or_else(|| label.to_owned());
        ui::stderr(&format!("\r\x1b[2K{frame} {shown}"));
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
