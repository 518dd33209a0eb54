//! Turning answers and failures into output, human or `--json`.
//!
//! Rendering is pure: it builds a [`Rendered`] (ordered stdout and stderr
//! lines plus the exit code) that `main` writes once. That keeps the JSON
//! promise (one document on stdout) easy to keep and to test.

mod account;
#[cfg(test)]
mod schema;
mod status;
mod systems;

pub use account::{Login, exported, logged_in, logged_out, token};
pub use status::status;
pub use systems::systems;

use crate::exit::{self, Failure};
use crate::ui::{self, Ui};
use serde::Serialize;
use std::io::{self, Write};
use tapis_agent_proto::ErrorKind;

/// One line of output and the stream it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Out(String),
    Err(String),
}

/// Output of a command, ready to be written, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    lines: Vec<Line>,
    /// The process exit code.
    pub code: u8,
}

impl Rendered {
    fn new(code: u8) -> Self {
        Self {
            lines: Vec::new(),
            code,
        }
    }

    fn out(&mut self, text: String) {
        self.lines.push(Line::Out(text));
    }

    fn err(&mut self, text: String) {
        self.lines.push(Line::Err(text));
    }

    /// Everything meant for stdout, concatenated (for tests).
    #[cfg(test)]
    pub fn stdout(&self) -> String {
        self.text(|l| matches!(l, Line::Out(_)))
    }

    /// Everything meant for stderr, concatenated (for tests).
    #[cfg(test)]
    pub fn stderr(&self) -> String {
        self.text(|l| matches!(l, Line::Err(_)))
    }

    #[cfg(test)]
    fn text(&self, pick: impl Fn(&Line) -> bool) -> String {
        self.lines
            .iter()
            .filter(|l| pick(l))
            .map(|(Line::Out(s) | Line::Err(s))| s.as_str())
            .collect()
    }

    /// Writes the lines in order and returns the exit code. A closed stdout
    /// (`tapis-cred token | head -c1`) is not an error: the reader has what
    /// it wanted. Other stdout failures (a full disk) are reported.
    pub fn emit(self) -> u8 {
        let mut code = self.code;
        // Buffered: the whole answer goes out in one write, not one per line.
        let mut stdout = io::BufWriter::new(io::stdout().lock());
        let mut stdout_open = true;
        let broken = |e: io::Error, code: &mut u8| {
            if e.kind() != io::ErrorKind::BrokenPipe {
                ui::stderr(&format!("tapis-cred: cannot write to stdout: {e}\n"));
                if *code == exit::SUCCESS {
                    *code = ErrorKind::Other.exit_code();
                }
            }
        };
        for line in self.lines {
            match line {
                Line::Out(text) if stdout_open => {
                    if let Err(e) = stdout.write_all(text.as_bytes()) {
                        stdout_open = false;
                        broken(e, &mut code);
                    }
                }
                Line::Out(_) => {}
                Line::Err(text) => {
                    // Keep the two streams in order on a shared terminal.
                    let _ = stdout.flush();
                    ui::stderr(&text);
                }
            }
        }
        if stdout_open && let Err(e) = stdout.flush() {
            broken(e, &mut code);
        }
        code
    }
}

/// A command whose human output is `text` on stdout as is (completion
/// scripts, man pages, doctor reports) and whose JSON form is `body`.
pub fn text<T: Serialize>(ui: Ui, command: &str, code: u8, body: T, text: String) -> Rendered {
    choose(ui, command, code, body, || {
        let mut r = Rendered::new(code);
        r.out(text);
        r
    })
}

/// Picks the human or the JSON form. In JSON mode stdout gets exactly one
/// document; stderr stays quiet unless `-v` asks for the human diagnostics.
fn choose<T: Serialize>(
    ui: Ui,
    command: &str,
    code: u8,
    body: T,
    human: impl FnOnce() -> Rendered,
) -> Rendered {
    if !ui.json {
        return human();
    }
    let mut rendered = Rendered::new(code);
    let envelope = Envelope {
        command,
        ok: code == exit::SUCCESS,
        exit_code: code,
        body,
    };
    let doc = serde_json::to_string(&envelope).unwrap_or_else(|e| {
        // Only a bug (a non-string map key) can get here; still one document.
        format!(
            r#"{{"command":{},"ok":false,"exit_code":1,"error":{{"kind":"other","code":1,"message":{},"hint":null}}}}"#,
            serde_json::Value::from(command),
            serde_json::Value::from(format!("cannot render JSON: {e}")),
        )
    });
    rendered.out(doc + "\n");
    if ui.verbose {
        let human = human();
        rendered.lines.extend(
            human
                .lines
                .into_iter()
                .filter(|l| matches!(l, Line::Err(_))),
        );
    }
    rendered
}

/// The fields every JSON document starts with.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    command: &'a str,
    ok: bool,
    exit_code: u8,
    #[serde(flatten)]
    body: T,
}

/// An error: the same kind, code, message and hint as the human form.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "error"))]
struct JsonError<'a> {
    /// Stable name of the failure; maps one-to-one to the exit code.
    #[cfg_attr(test, schemars(schema_with = "schema::error_kind"))]
    kind: &'static str,
    /// The exit code.
    #[cfg_attr(test, schemars(schema_with = "schema::failure_code"))]
    code: u8,
    /// What failed and why, as printed after `tapis-cred: ` without --json.
    message: &'a str,
    /// What to do about it, when there is a hint.
    hint: Option<&'a str>,
}

impl<'a> From<&'a Failure> for JsonError<'a> {
    fn from(f: &'a Failure) -> Self {
        Self {
            kind: f.kind.as_str(),
            code: exit::code(f),
            message: &f.message,
            hint: f.hint.as_deref(),
        }
    }
}

/// `tapis-cred: <message>` and the hint line, as printed on stderr.
fn error_text(message: &str, hint: Option<&str>) -> String {
    let mut text = format!("tapis-cred: {message}\n");
    if let Some(hint) = hint {
        text.push_str(&format!("  hint: {hint}\n"));
    }
    text
}

/// Any command that failed as a whole (usage errors included).
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
struct Failed<'a> {
    error: JsonError<'a>,
}

/// A failed command.
pub fn failure(ui: Ui, command: &str, f: &Failure) -> Rendered {
    let code = exit::code(f);
    choose(ui, command, code, Failed { error: f.into() }, || {
        let mut r = Rendered::new(code);
        r.err(error_text(&f.message, f.hint.as_deref()));
        r
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn human() -> Ui {
        Ui::default()
    }

    pub fn json() -> Ui {
        Ui {
            json: true,
            ..Ui::default()
        }
    }

    pub fn parse(r: &Rendered) -> serde_json::Value {
        let out = r.stdout();
        assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
        serde_json::from_str(&out).expect("valid JSON")
    }

    #[test]
    fn failure_human_and_json() {
        let f = Failure::new(ErrorKind::LoginRequired, "no valid token").with_hint("run: x");
        let h = failure(human(), "token", &f);
        assert_eq!(h.code, 3);
        assert_eq!(h.stdout(), "");
        assert_eq!(h.stderr(), "tapis-cred: no valid token\n  hint: run: x\n");

        let j = failure(json(), "token", &f);
        assert_eq!(j.stderr(), "");
        assert_eq!(
            parse(&j),
            serde_json::json!({
                "command": "token", "ok": false, "exit_code": 3,
                "error": {"kind": "login_required", "code": 3,
                          "message": "no valid token", "hint": "run: x"}
            })
        );
    }

    #[test]
    fn verbose_json_keeps_human_errors_on_stderr() {
        let f = Failure::new(ErrorKind::Other, "boom");
        let ui = Ui {
            verbose: true,
            ..json()
        };
        let r = failure(ui, "status", &f);
        assert_eq!(r.stderr(), "tapis-cred: boom\n");
        assert_eq!(parse(&r)["error"]["hint"], serde_json::Value::Null);
    }
}
