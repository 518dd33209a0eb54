//! The connection to the agent: connect, say hello, exchange requests and
//! answers. Every way this can fail becomes a [`Failure`] with the right kind
//! here, so commands only see the agent's answers.

use crate::exit::{self, Failure, REINSTALL_HINT, START_AGENT_HINT};
use crate::socket;
use crate::spinner::{Progress, Spinner};
use crate::ui::Ui;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tapis_agent_proto::conn::{self, Connection, HelloError};
use tapis_agent_proto::{CodecError, ErrorKind, PROTOCOL_VERSION, Request, Response};

/// What to tell the user when an answer does not come in time.
const TIMEOUT_HINT: &str =
    "raise --timeout, or look at the agent's log (tapis-cred doctor says where it is)";

/// Where the agent is and how long to wait for it: enough to open as many
/// connections as a command needs.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The socket path.
    pub path: PathBuf,
    /// Longest wait for a connection or an answer.
    pub timeout: Duration,
    /// Output choices, for `-v` notes.
    pub ui: Ui,
}

impl Endpoint {
    /// Connects and exchanges hellos. When no agent is there, starts one
    /// if [`autostart`](crate::autostart) allows, and connects once more.
    pub fn connect(&self) -> Result<Agent, Failure> {
        match Agent::connect(&self.path, self.timeout, self.ui) {
            Err(f) if f.kind == ErrorKind::AgentUnreachable => self.started(f),
            other => other,
        }
    }

    /// After `failure` to reach the agent: starts one if
    /// [`autostart`](crate::autostart) allows (or finds the one another
    /// client started meanwhile) and connects to it.
    fn started(&self, failure: Failure) -> Result<Agent, Failure> {
        let path = crate::autostart::recover(&self.path, self.ui, failure)?;
        Agent::connect(&path, self.timeout, self.ui)
    }

    /// Connects, sends one request and returns its answer, with a spinner
    /// on a terminal while the answer takes more than a moment.
    ///
    /// The request goes out right behind the hello, in the same write, so
    /// the command costs one round trip instead of two; the agent reads them
    /// in order and answers the hello first. A login is the exception: it
    /// may carry a password, which is sent only to an agent that has
    /// answered our hello.
    pub fn ask(&self, request: &Request) -> Result<Response, Failure> {
        let _spinner = Spinner::start(self.ui, progress(request));
        let pipelined = !matches!(request, Request::Login(_));
        match Agent::open(
            &self.path,
            self.timeout,
            self.ui,
            pipelined.then_some(request),
        ) {
            Ok(mut agent) if pipelined => agent.answer(),
            Ok(mut agent) => agent.call(request),
            Err(f) if f.kind == ErrorKind::AgentUnreachable => self.started(f)?.call(request),
            Err(f) => Err(f),
        }
    }
}

/// What the spinner says while `request` is under way: the systems by name
/// when there are few, and whose answer it waits for.
fn progress(request: &Request) -> Progress {
    let systems = |verb: &str, s: &[String]| match s {
        [one] => format!("{verb} {one}"),
        [a, b] => format!("{verb} {a} and {b}"),
        many => format!("{verb} {} systems", many.len()),
    };
    let (doing, waits_for) = match request {
        Request::Establish { systems: s, .. } => (systems("establishing", s), "Tapis"),
        Request::Check { systems: s, .. } => (systems("checking", s), "Tapis"),
        Request::Revoke { systems: s, .. } => (systems("revoking", s), "Tapis"),
        Request::Token { .. } => ("getting a token".into(), "Tapis"),
        Request::Login(_) => ("logging in".into(), "Tapis"),
        Request::Logout { .. } => ("logging out".into(), "Tapis"),
        Request::Ping => ("asking Tapis".into(), "Tapis"),
        _ => ("asking the agent".into(), "the agent"),
    };
    Progress { doing, waits_for }
}

/// An open conversation with an agent that speaks our protocol.
#[derive(Debug)]
pub struct Agent {
    conn: Connection,
    path: PathBuf,
    timeout: Duration,
}

impl Agent {
    /// Connects to the socket at `path` and exchanges hellos. Answers are
    /// awaited at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration, ui: Ui) -> Result<Self, Failure> {
        Self::open(path, timeout, ui, None)
    }

    /// [`connect`](Self::connect), sending `then` right behind the hello;
    /// its answer is then the next one to read ([`answer`](Self::answer)).
    fn open(
        path: &Path,
        timeout: Duration,
        ui: Ui,
        then: Option<&Request>,
    ) -> Result<Self, Failure> {
        ui.note(format_args!("connecting to {}", path.display()));
        let stream = conn::connect(path, timeout).map_err(|e| {
            exit::agent_unreachable(format!(
                "cannot reach the agent at {}: {}",
                path.display(),
                describe_io(&e, timeout)
            ))
            .with_hint(START_AGENT_HINT)
        })?;
        // Who listens, asked of the connection itself before anything is
        // written: a file swapped at the path after connecting changes
        // nothing, and one planted before is refused here.
        socket::check_peer(stream.as_fd(), socket::effective_uid()).map_err(|why| {
            exit::agent_unreachable(format!(
                "refusing the agent socket at {}: {why}",
                path.display()
            ))
            .with_hint("remove it, or pass --socket with the path of your own agent")
        })?;
        let at = path.display();
        let conn =
            Connection::hello(stream, env!("CARGO_PKG_VERSION"), then).map_err(|e| match e {
                HelloError::Transport(e) => {
                    let mut f = transport_failure(path, timeout, e);
                    // Nothing readable came back: this is not an agent we can use.
                    f.kind = ErrorKind::AgentUnreachable;
                    f
                }
                HelloError::Version(protocol_version) => exit::agent_unreachable(format!(
                    "agent speaks protocol {protocol_version}, this client speaks \
                 {PROTOCOL_VERSION}: {REINSTALL_HINT}"
                )),
                // A full agent says so before reading anything: that is a retry,
                // not a version problem.
                HelloError::Refused(e) if e.kind == ErrorKind::Busy => e,
                HelloError::Refused(e) => exit::agent_unreachable(format!(
                    "the agent at {at} refused this client (protocol {PROTOCOL_VERSION}): {}",
                    e.message
                ))
                .with_hint(REINSTALL_HINT),
                HelloError::Unexpected(variant) => exit::agent_unreachable(format!(
                    "the agent at {at} answered hello with {variant}"
                ))
                .with_hint(REINSTALL_HINT),
            })?;
        ui.note(format_args!(
            "agent {} at {at} (protocol {PROTOCOL_VERSION})",
            conn.agent_version()
        ));
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            timeout,
        })
    }

    /// The agent's package version, from its hello.
    pub fn agent_version(&self) -> &str {
        self.conn.agent_version()
    }

    /// Sends one request and returns the answer; an error answer becomes
    /// `Err` with the agent's kind, message and hint.
    pub fn call(&mut self, request: &Request) -> Result<Response, Failure> {
        let answer = self.conn.call(request, on_progress);
        self.outcome(answer)
    }

    /// The answer to the request sent behind the hello (see [`open`](Self::open)).
    fn answer(&mut self) -> Result<Response, Failure> {
        let answer = self.conn.answer(on_progress);
        self.outcome(answer)
    }

    fn outcome(&self, answer: Result<Response, CodecError>) -> Result<Response, Failure> {
        match answer {
            Ok(Response::Error(e)) => Err(e),
            Ok(answer) => Ok(answer),
            Err(e) => Err(transport_failure(&self.path, self.timeout, e)),
        }
    }
}

/// Progress notes that come before an answer go to the spinner (see
/// [`Response::Progress`]). Each restarts the read timeout, which so
/// measures the agent's silence.
fn on_progress(notes: Vec<String>) {
    crate::spinner::progress(&notes);
}

/// A lost or silent agent is unreachable (exit 7); an answer that does
/// not decode is a version mix-up or a bug (exit 1).
fn transport_failure(path: &Path, timeout: Duration, e: CodecError) -> Failure {
    let at = path.display();
    match e {
        CodecError::Io(e) if is_timeout(&e) => exit::agent_unreachable(format!(
            "no answer from the agent at {at} within {} s",
            timeout.as_secs()
        ))
        .with_hint(TIMEOUT_HINT),
        CodecError::Io(e) => exit::agent_unreachable(format!(
            "lost the agent at {at}: {}",
            describe_io(&e, timeout)
        ))
        .with_hint(START_AGENT_HINT),
        CodecError::Closed | CodecError::Truncated => {
            exit::agent_unreachable(format!("lost the agent at {at}: {e}"))
                .with_hint(START_AGENT_HINT)
        }
        CodecError::Decode(_) | CodecError::TooLarge { .. } => {
            exit::other(format!("cannot understand the agent at {at}: {e}"))
                .with_hint(REINSTALL_HINT)
        }
        CodecError::Encode(_) => exit::other(format!("cannot send the request: {e}")),
    }
}

/// An answer of the wrong type for the request: a bug on one side.
pub fn unexpected(command: &str, answer: &Response) -> Failure {
    exit::other(format!(
        "{command}: unexpected answer from the agent: {}",
        answer.variant_name()
    ))
    .with_hint(REINSTALL_HINT)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Short causes for the usual socket errors; the rest as the OS says them.
fn describe_io(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::ConnectionRefused => "connection refused (no agent is listening)".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
            "the agent closed the connection".into()
        }
        _ if is_timeout(e) => format!("no answer within {} s", timeout.as_secs()),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_causes_are_short() {
        let t = Duration::from_secs(5);
        let d = |k: io::ErrorKind| describe_io(&k.into(), t);
        assert_eq!(d(io::ErrorKind::NotFound), "no such file");
        assert!(d(io::ErrorKind::ConnectionRefused).starts_with("connection refused"));
        assert_eq!(d(io::ErrorKind::WouldBlock), "no answer within 5 s");
        assert_eq!(d(io::ErrorKind::TimedOut), "no answer within 5 s");
    }

    #[test]
    fn missing_socket_is_unreachable_with_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let e = Agent::connect(&path, Duration::from_secs(1), Ui::default()).unwrap_err();
        assert_eq!(exit::code(&e), 7);
        assert_eq!(
            e.message,
            format!("cannot reach the agent at {}: no such file", path.display())
        );
        assert_eq!(e.hint.as_deref(), Some(START_AGENT_HINT));
    }

    #[test]
    fn stale_socket_is_refused_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = Agent::connect(&path, Duration::from_secs(1), Ui::default()).unwrap_err();
        assert_eq!(exit::code(&e), 7);
        assert!(
            e.message
                .ends_with("connection refused (no agent is listening)"),
            "{}",
            e.message
        );
    }
}
