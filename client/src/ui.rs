//! How the user asked to be talked to, and the stderr writer.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal, Write};

/// Output choices from the global flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    /// `--json`: exactly one JSON document on stdout, a quiet stderr.
    pub json: bool,
    /// `-q`: no success lines.
    pub quiet: bool,
    /// `-v`: diagnostics on stderr, also in JSON mode.
    pub verbose: bool,
    /// Colour the human output on stdout (a terminal, and no `NO_COLOR`).
    pub color: bool,
}

/// Whether to colour a stream: only a terminal, never when `NO_COLOR` is set
/// to anything non-empty (<https://no-color.org>) or `TERM` is `dumb`.
pub fn color_for(is_terminal: bool, no_color: Option<OsString>, term: Option<OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// [`color_for`] on this process's stdout and environment.
pub fn color_stdout() -> bool {
    color_for(
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
        std::env::var_os("TERM"),
    )
}

/// Whether progress may be drawn on stderr: a terminal that is not `dumb`.
pub fn stderr_is_live() -> bool {
    io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
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

    /// `text` in the ANSI colour `code` (e.g. `32` green) when colour is on.
    pub fn paint(&self, code: u8, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Writes to stderr, ignoring failures: when stderr is gone there is nowhere
/// left to report them, and panicking (as `eprintln!` does) would be worse.
pub fn stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let some = |s: &str| Some(OsString::from(s));
        assert!(color_for(true, None, some("xterm")));
        assert!(color_for(true, some(""), None));
        assert!(!color_for(false, None, some("xterm")));
        assert!(!color_for(true, some("1"), some("xterm")));
        assert!(!color_for(true, None, some("dumb")));
        let plain = Ui::default();
        assert_eq!(plain.paint(32, "ok"), "ok");
        let colour = Ui {
            color: true,
            ..plain
        };
        assert_eq!(colour.paint(32, "ok"), "\x1b[32mok\x1b[0m");
    }
}
