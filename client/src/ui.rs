//! How the user asked to be talked to, and the stderr writer.

use std::fmt;
use std::io::{self, Write};

/// Output choices from the global flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    /// `--json`: exactly one JSON document on stdout, a quiet stderr.
    pub json: bool,
    /// `-q`: no success lines.
    pub quiet: bool,
    /// `-v`: diagnostics on stderr, also in JSON mode.
    pub verbose: bool,
}

impl Ui {
    /// A diagnostic line on stderr, shown with `-v` only.
    pub fn note(&self, args: fmt::Arguments<'_>) {
        if self.verbose {
            stderr(&format!("tapis-cred: {args}\n"));
        }
    }

    /// Whether messages meant for a person (instructions, progress) may go to
    /// stderr: always in human mode, only with `-v` in JSON mode.
    pub fn chatty(&self) -> bool {
        !self.json || self.verbose
    }
}

/// Writes to stderr, ignoring failures: when stderr is gone there is nowhere
/// left to report them, and panicking (as `eprintln!` does) would be worse.
pub fn stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}
