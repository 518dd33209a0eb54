//! A canned agent for client tests: a Unix socket in a temporary directory,
//! served by a thread that speaks the real codec and answers from a closure.
//! It checks the client only; tests with the real daemon live elsewhere.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tapis_agent_proto::{
    CodecError, PROTOCOL_VERSION, Request, Response, decode, encode_frame, read_frame,
};
use tempfile::TempDir;

/// How the fake answers the client's Hello.
pub enum Greeting {
    /// A correct Hello with our protocol version.
    Normal,
    /// A Hello with another protocol version.
    Version(u32),
    /// These raw bytes instead of a frame.
    Raw(Vec<u8>),
}

/// The answer to one request: bytes to write (usually one encoded frame);
/// no bytes means hang up without answering.
pub type Answer = Box<dyn Fn(&Request) -> Vec<u8> + Send + Sync>;

/// A running fake agent. The serving thread is left to end with the test
/// process; each test gets its own socket.
pub struct FakeAgent {
    _dir: TempDir,
    path: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
    ahead: Arc<Mutex<Vec<bool>>>,
}

/// One encoded frame holding `response`.
pub fn frame(response: &Response) -> Vec<u8> {
    encode_frame(response).expect("encodable response")
}

impl FakeAgent {
    /// Serves a normal Hello, then answers each request with `answer`.
    pub fn start(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        Self::with(Greeting::Normal, Box::new(move |r| frame(&answer(r))))
    }

    /// Full control over the greeting and the raw answer bytes.
    pub fn with(greeting: Greeting, answer: Answer) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let ahead = Arc::new(Mutex::new(Vec::new()));
        let ahead_seen = Arc::clone(&ahead);
        let answer = Arc::new(answer);
        let greeting = Arc::new(greeting);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (seen, answer, greeting, ahead) = (
                    Arc::clone(&seen),
                    Arc::clone(&answer),
                    Arc::clone(&greeting),
                    Arc::clone(&ahead_seen),
                );
                std::thread::spawn(move || serve(stream, &greeting, &*answer, &seen, &ahead));
            }
        });
        Self {
            _dir: dir,
            path,
            requests,
            ahead,
        }
    }

    /// For each connection so far: whether the client's next request was
    /// already there when its hello was read (sent in the same write).
    pub fn requests_behind_hello(&self) -> Vec<bool> {
        self.ahead.lock().unwrap().clone()
    }

    /// The socket path, for `--socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every request received so far, Hello included, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests other than Hello.
    pub fn calls(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| !matches!(r, Request::Hello { .. }))
            .collect()
    }
}

fn serve(
    mut stream: UnixStream,
    greeting: &Greeting,
    answer: &(dyn Fn(&Request) -> Vec<u8> + Send + Sync),
    seen: &Mutex<Vec<Request>>,
    ahead: &Mutex<Vec<bool>>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut greeted = false;
    loop {
        let body = match read_frame(&mut stream) {
            Ok(body) => body,
            Err(CodecError::Closed) => return,
            Err(e) => panic!("fake agent: bad frame from the client: {e}"),
        };
        let request: Request = decode(&body).expect("fake agent: undecodable request");
        seen.lock().unwrap().push(request.clone());
        let refused =
            !greeted && matches!(greeting, Greeting::Version(v) if *v != PROTOCOL_VERSION);
        let bytes = if greeted {
            answer(&request)
        } else {
            assert!(
                matches!(request, Request::Hello { .. }),
                "first request must be Hello, got {request:?}"
            );
            greeted = true;
            stream.set_nonblocking(true).unwrap();
            let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
            let more = socket2::SockRef::from(&stream)
                .peek(&mut byte)
                .is_ok_and(|n| n > 0);
            stream.set_nonblocking(false).unwrap();
            ahead.lock().unwrap().push(more);
            match greeting {
                Greeting::Normal => frame(&hello(PROTOCOL_VERSION)),
                Greeting::Version(v) => frame(&hello(*v)),
                Greeting::Raw(bytes) => bytes.clone(),
            }
        };
        if bytes.is_empty() || stream.write_all(&bytes).is_err() {
            return;
        }
        // Like the real agent: after refusing a client's protocol, read
        // nothing more from it (the client may have sent a request behind
        // its hello).
        if refused {
            return;
        }
    }
}

fn hello(protocol_version: u32) -> Response {
    Response::Hello {
        protocol_version,
        agent_version: "0.1.0-fake".into(),
    }
}

/// Runs the real binary against `socket` with `args`, feeding `stdin` (or
/// an empty, non-terminal stdin).
pub fn run(socket: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = cmd(socket, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tapis-cred");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The client may exit (e.g. on a usage error) without reading stdin.
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    child.wait_with_output().expect("wait for tapis-cred")
}

/// The binary under test: the one cargo built for this suite, or the one
/// `TAPIS_CRED_BIN` names (scripts/test.sh runs the suite again with the
/// statically linked build).
pub fn bin() -> std::ffi::OsString {
    std::env::var_os("TAPIS_CRED_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_tapis-cred").into())
}

/// The command with a clean environment for the socket lookup.
pub fn cmd(socket: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("TAPIS_AGENT_SOCK");
    c
}

/// stdout, stderr and exit code as text, for assertions.
pub struct Seen {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl From<Output> for Seen {
    fn from(o: Output) -> Self {
        let seen = Self {
            stdout: String::from_utf8(o.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(o.stderr).expect("utf-8 stderr"),
            code: o.status.code().expect("exited, not killed"),
        };
        assert!(
            !seen.stderr.contains("panicked") && !seen.stderr.contains("RUST_BACKTRACE"),
            "the client panicked: {}",
            seen.stderr
        );
        seen
    }
}
