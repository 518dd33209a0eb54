//! The connection to the agent: connect, say hello, exchange requests and
//! answers. Every way this can fail becomes a [`Failure`] with the right kind
//! here, so commands only see the agent's answers.

use crate::exit::{self, Failure, REINSTALL_HINT, START_AGENT_HINT};
use crate::socket;
use crate::spinner::{Progress, Spinner};
use crate::ui::Ui;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tapis_agent_proto::{CodecError, ErrorKind, PROTOCOL_VERSION, Request, Response, encode_frame};

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
            Err(f) if f.kind == ErrorKind::AgentUnreachable => {
                crate::autostart::recover(&self.path, self.timeout, self.ui, f)
            }
            other => other,
        }
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
            Err(f) if f.kind == ErrorKind::AgentUnreachable => {
                crate::autostart::recover(&self.path, self.timeout, self.ui, f)?.call(request)
            }
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
    stream: UnixStream,
    path: PathBuf,
    timeout: Duration,
    ui: Ui,
    agent_version: String,
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
        let stream = connect_within(path, timeout).map_err(|e| {
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
        let set = |r: io::Result<()>| {
            r.map_err(|e| exit::agent_unreachable(format!("cannot set socket timeouts: {e}")))
        };
        set(stream.set_read_timeout(Some(timeout)))?;
        set(stream.set_write_timeout(Some(timeout)))?;
        let mut agent = Self {
            stream,
            path: path.to_path_buf(),
            timeout,
            ui,
            agent_version: String::new(),
        };
        agent.hello(then)?;
        Ok(agent)
    }

    fn hello(&mut self, then: Option<&Request>) -> Result<(), Failure> {
        let hello = Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let frames = encode_frame(&hello).and_then(|mut frames| {
            if let Some(request) = then {
                let mut next = encode_frame(request)?;
                frames.extend_from_slice(&next);
                wipe(&mut next);
            }
            Ok(frames)
        });
        let answer = frames.and_then(|f| self.exchange_frames(f)).map_err(|e| {
            let mut f = self.transport_failure(e);
            // Nothing readable came back: this is not an agent we can use.
            f.kind = ErrorKind::AgentUnreachable;
            f
        })?;
        match answer {
            Response::Hello {
                protocol_version,
                agent_version,
            } if protocol_version == PROTOCOL_VERSION => {
                self.ui.note(format_args!(
                    "agent {agent_version} at {} (protocol {protocol_version})",
                    self.path.display()
                ));
                self.agent_version = agent_version;
                Ok(())
            }
            Response::Hello {
                protocol_version, ..
            } => Err(exit::agent_unreachable(format!(
                "agent speaks protocol {protocol_version}, this client speaks \
                 {PROTOCOL_VERSION}: {REINSTALL_HINT}"
            ))),
            // A full agent says so before reading anything: that is a retry,
            // not a version problem.
            Response::Error(e) if e.kind == ErrorKind::Busy => Err(e),
            Response::Error(e) => Err(exit::agent_unreachable(format!(
                "the agent at {} refused this client (protocol {PROTOCOL_VERSION}): {}",
                self.path.display(),
                e.message
            ))
            .with_hint(REINSTALL_HINT)),
            other => Err(exit::agent_unreachable(format!(
                "the agent at {} answered hello with {}",
                self.path.display(),
                variant(&other)
            ))
            .with_hint(REINSTALL_HINT)),
        }
    }

    /// The agent's package version, from its hello.
    pub fn agent_version(&self) -> &str {
        &self.agent_version
    }

    /// Sends one request and returns the answer; an error answer becomes
    /// `Err` with the agent's kind, message and hint.
    pub fn call(&mut self, request: &Request) -> Result<Response, Failure> {
        let answer = encode_frame(request).and_then(|f| self.exchange_frames(f));
        self.outcome(answer)
    }

    /// The answer to the request sent behind the hello (see [`open`](Self::open)).
    fn answer(&mut self) -> Result<Response, Failure> {
        let answer = read_answer(&mut self.stream);
        self.outcome(answer)
    }

    fn outcome(&self, answer: Result<Response, CodecError>) -> Result<Response, Failure> {
        match answer {
            Ok(Response::Error(e)) => Err(e),
            Ok(answer) => Ok(answer),
            Err(e) => Err(self.transport_failure(e)),
        }
    }

    /// Writes `frames` (wiped afterwards) and reads one answer.
    fn exchange_frames(&mut self, mut frames: Vec<u8>) -> Result<Response, CodecError> {
        let sent = self
            .stream
            .write_all(&frames)
            .and_then(|()| self.stream.flush());
        wipe(&mut frames);
        // An agent at its connection limit may have closed this (idle)
        // connection with a "busy" answer just before the write: read it
        // rather than report a lost agent.
        match (sent, read_answer(&mut self.stream)) {
            (_, Ok(answer)) => Ok(answer),
            (Err(e), Err(_)) => Err(e.into()),
            (Ok(()), Err(e)) => Err(e),
        }
    }

    /// A lost or silent agent is unreachable (exit 7); an answer that does
    /// not decode is a version mix-up or a bug (exit 1).
    fn transport_failure(&self, e: CodecError) -> Failure {
        let at = self.path.display();
        match e {
            CodecError::Io(e) if is_timeout(&e) => exit::agent_unreachable(format!(
                "no answer from the agent at {at} within {} s",
                self.timeout.as_secs()
            ))
            .with_hint(TIMEOUT_HINT),
            CodecError::Io(e) => exit::agent_unreachable(format!(
                "lost the agent at {at}: {}",
                describe_io(&e, self.timeout)
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
}

/// Reads one answer; progress notes that come before it go to the spinner
/// (see [`Response::Progress`]). Each restarts the read timeout, which so
/// measures the agent's silence.
fn read_answer(stream: &mut UnixStream) -> Result<Response, CodecError> {
    tapis_agent_proto::read_answer(stream, |notes| crate::spinner::progress(&notes))
}

/// Frames can hold a password or a token: zero them instead of leaving the
/// bytes in freed memory. `black_box` keeps the stores from being optimized
/// away as dead.
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

/// An answer of the wrong type for the request: a bug on one side.
pub fn unexpected(command: &str, answer: &Response) -> Failure {
    exit::other(format!(
        "{command}: unexpected answer from the agent: {}",
        variant(answer)
    ))
    .with_hint(REINSTALL_HINT)
}

/// The variant's name only: the fields may hold secrets or be large.
fn variant(answer: &Response) -> &'static str {
    match answer {
        Response::Hello { .. } => "Hello",
        Response::Systems(_) => "Systems",
        Response::Token(_) => "Token",
        Response::LoggedIn { .. } => "LoggedIn",
        Response::DeviceCode(_) => "DeviceCode",
        Response::DevicePending => "DevicePending",
        Response::LoggedOut => "LoggedOut",
        Response::Status(_) => "Status",
        Response::Exported { .. } => "Exported",
        Response::Error(_) => "Error",
        Response::Settings(_) => "Settings",
        Response::Pong(_) => "Pong",
        Response::Progress(_) => "Progress",
    }
}

/// Connects, giving up after `timeout`. A Unix-socket connect blocks while
/// the agent's accept backlog is full; Linux bounds that wait by the
/// socket's send timeout, so it is set before connecting. (A helper thread
/// did this before, at about 0.2 ms per command.)
fn connect_within(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_write_timeout(Some(timeout))?;
    socket.connect(&SockAddr::unix(path)?)?;
    Ok(UnixStream::from(OwnedFd::from(socket)))
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

    #[test]
    fn connect_gives_up_while_the_backlog_stays_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        // A listener that never accepts, with the smallest backlog.
        let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        listener.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        listener.listen(0).unwrap();
        let limit = Duration::from_millis(200);
        let start = std::time::Instant::now();
        let mut held = Vec::new();
        let err = loop {
            match connect_within(&path, limit) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 64, "the backlog never filled");
        };
        assert!(is_timeout(&err), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
