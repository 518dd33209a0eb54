//! The client side of the protocol, written once: connect within a time
//! limit, say hello (with the first request right behind it, in the same
//! write), call, and read an answer past the progress notes before it.
//!
//! [`Connection`] is blocking (`tapis-cred`, the bench); `AsyncConnection`
//! (feature `tokio`) is the same conversation for async callers (the
//! agent's own checks, the tests). Both build their frames and judge the
//! hello's answer with the same functions. What to do when no agent answers
//! (start one, say what to do) is the caller's business.

use crate::codec::{CodecError, encode_frame, read_answer};
use crate::error::ErrorReply;
use crate::message::{Request, Response};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// The hello a client sends first, naming its version.
pub fn hello(client_version: &str) -> Request {
    Request::Hello {
        protocol_version: crate::PROTOCOL_VERSION,
        client_version: client_version.to_owned(),
    }
}

/// Why the hello exchange did not give a usable connection.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// Nothing readable came back (or the hello could not be sent).
    #[error(transparent)]
    Transport(#[from] CodecError),
    /// The agent speaks another protocol version.
    #[error("the agent speaks protocol {0}, this client speaks {PROTOCOL}", PROTOCOL = crate::PROTOCOL_VERSION)]
    Version(u32),
    /// The agent answered the hello with an error (a full agent says
    /// [`Busy`](crate::ErrorKind::Busy) before reading anything).
    #[error("the agent refused the hello: {}", .0.message)]
    Refused(ErrorReply),
    /// The agent answered the hello with something else (named only: the
    /// fields may be large).
    #[error("the agent answered hello with {0}")]
    Unexpected(&'static str),
}

/// The hello frame, then `then`'s frame if any, in one buffer (wiped on
/// drop: a request may hold a secret).
fn hello_frames(
    client_version: &str,
    then: Option<&Request>,
) -> Result<Zeroizing<Vec<u8>>, CodecError> {
    let mut frames = Zeroizing::new(encode_frame(&hello(client_version))?);
    if let Some(request) = then {
        let next = Zeroizing::new(encode_frame(request)?);
        frames.extend_from_slice(&next);
    }
    Ok(frames)
}

/// Judges the answer to a hello: the agent's version when it speaks ours.
fn hello_answer(answer: Result<Response, CodecError>) -> Result<String, HelloError> {
    match answer? {
        Response::Hello {
            protocol_version,
            agent_version,
        } if protocol_version == crate::PROTOCOL_VERSION => Ok(agent_version),
        Response::Hello {
            protocol_version, ..
        } => Err(HelloError::Version(protocol_version)),
        Response::Error(e) => Err(HelloError::Refused(e)),
        other => Err(HelloError::Unexpected(other.variant_name())),
    }
}

/// An answer read after a write: an agent at its connection limit may
/// have closed an idle connection with a "busy" answer just before the
/// write, so what it said counts over the failed write.
fn after_write(
    sent: io::Result<()>,
    answer: Result<Response, CodecError>,
) -> Result<Response, CodecError> {
    match (sent, answer) {
        (_, Ok(answer)) => Ok(answer),
        (Err(e), Err(_)) => Err(e.into()),
        (Ok(()), Err(e)) => Err(e),
    }
}

/// Connects to the socket at `path`, giving up after `timeout`, and makes
/// `timeout` the longest wait for each read and write after that.
///
/// A Unix-socket connect blocks while the agent's accept backlog is full;
/// Linux bounds that wait by the socket's send timeout, so it is set before
/// connecting (no helper thread).
pub fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_write_timeout(Some(timeout))?;
    socket.connect(&SockAddr::unix(path)?)?;
    let stream = UnixStream::from(OwnedFd::from(socket));
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// A blocking conversation with an agent that has answered our hello.
#[derive(Debug)]
pub struct Connection<S = UnixStream> {
    stream: S,
    agent_version: String,
}

impl<S: Read + Write> Connection<S> {
    /// Says hello on `stream`, writing `then` right behind it in the same
    /// write (one round trip for a command); its answer is then the next
    /// one, read by [`answer`](Self::answer). Send nothing secret as
    /// `then`: it goes out before the agent has answered.
    pub fn hello(
        mut stream: S,
        client_version: &str,
        then: Option<&Request>,
    ) -> Result<Self, HelloError> {
        let frames = hello_frames(client_version, then)?;
        let answer = exchange(&mut stream, &frames, drop);
        let agent_version = hello_answer(answer)?;
        Ok(Self {
            stream,
            agent_version,
        })
    }

    /// The agent's package version, from its hello.
    pub fn agent_version(&self) -> &str {
        &self.agent_version
    }

    /// Sends one request and reads its answer; progress notes before it go
    /// to `on_progress`.
    pub fn call(
        &mut self,
        request: &Request,
        on_progress: impl FnMut(Vec<String>),
    ) -> Result<Response, CodecError> {
        let frame = Zeroizing::new(encode_frame(request)?);
        exchange(&mut self.stream, &frame, on_progress)
    }

    /// Reads the next answer (to the request sent behind the hello).
    pub fn answer(&mut self, on_progress: impl FnMut(Vec<String>)) -> Result<Response, CodecError> {
        read_answer(&mut self.stream, on_progress)
    }

    /// The stream, for callers that write frames of their own.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

/// Writes `frames` and reads one answer.
fn exchange<S: Read + Write>(
    stream: &mut S,
    frames: &[u8],
    on_progress: impl FnMut(Vec<String>),
) -> Result<Response, CodecError> {
    let sent = stream.write_all(frames).and_then(|()| stream.flush());
    after_write(sent, read_answer(stream, on_progress))
}

/// [`Connection`] for an async stream (feature `tokio`). Time limits are
/// the caller's (`tokio::time::timeout` around a call).
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncConnection<S> {
    stream: S,
    agent_version: String,
}

#[cfg(feature = "tokio")]
impl<S> AsyncConnection<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    /// [`Connection::hello`] on an async stream.
    pub async fn hello(
        mut stream: S,
        client_version: &str,
        then: Option<&Request>,
    ) -> Result<Self, HelloError> {
        let frames = hello_frames(client_version, then)?;
        let answer = exchange_async(&mut stream, &frames, drop).await;
        let agent_version = hello_answer(answer)?;
        Ok(Self {
            stream,
            agent_version,
        })
    }

    /// The agent's package version, from its hello.
    pub fn agent_version(&self) -> &str {
        &self.agent_version
    }

    /// [`Connection::call`] on an async stream.
    pub async fn call(
        &mut self,
        request: &Request,
        on_progress: impl FnMut(Vec<String>),
    ) -> Result<Response, CodecError> {
        let frame = Zeroizing::new(encode_frame(request)?);
        exchange_async(&mut self.stream, &frame, on_progress).await
    }

    /// [`Connection::answer`] on an async stream.
    pub async fn answer(
        &mut self,
        on_progress: impl FnMut(Vec<String>),
    ) -> Result<Response, CodecError> {
        crate::codec::read_answer_async(&mut self.stream, on_progress).await
    }

    /// The stream, for callers that write frames of their own.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, the conversation ended.
    pub fn into_stream(self) -> S {
        self.stream
    }
}

#[cfg(feature = "tokio")]
async fn exchange_async<S>(
    stream: &mut S,
    frames: &[u8],
    on_progress: impl FnMut(Vec<String>),
) -> Result<Response, CodecError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let sent = match stream.write_all(frames).await {
        Ok(()) => stream.flush().await,
        Err(e) => Err(e),
    };
    after_write(
        sent,
        crate::codec::read_answer_async(stream, on_progress).await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, read_frame, write_frame};
    use crate::error::ErrorKind;
    use std::os::unix::net::UnixListener;

    /// A one-connection agent: reads `expect` frames, then writes `answers`.
    fn agent(
        dir: &Path,
        expect: usize,
        answers: Vec<Response>,
    ) -> (
        std::path::PathBuf,
        std::thread::JoinHandle<Vec<(usize, Request)>>,
    ) {
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            for i in 0..expect {
                let body = read_frame(&mut s).unwrap();
                got.push((i, decode::<Request>(&body).unwrap()));
            }
            for a in &answers {
                write_frame(&mut s, a).unwrap();
            }
            got
        });
        (path, handle)
    }

    fn hello_ok() -> Response {
        Response::Hello {
            protocol_version: crate::PROTOCOL_VERSION,
            agent_version: "9.9".into(),
        }
    }

    #[test]
    fn request_behind_hello_and_answer_past_progress() {
        let dir = tempfile::tempdir().unwrap();
        let (path, agent) = agent(
            dir.path(),
            2,
            vec![
                hello_ok(),
                Response::Progress(vec!["waiting".into()]),
                Response::LoggedOut,
            ],
        );
        let stream = connect(&path, Duration::from_secs(5)).unwrap();
        let mut c = Connection::hello(stream, "t", Some(&Request::Status)).unwrap();
        assert_eq!(c.agent_version(), "9.9");
        let mut notes = Vec::new();
        let answer = c.answer(|n| notes.extend(n)).unwrap();
        assert!(matches!(answer, Response::LoggedOut));
        assert_eq!(notes, ["waiting"]);
        let got = agent.join().unwrap();
        assert!(matches!(got[0].1, Request::Hello { .. }));
        assert!(matches!(got[1].1, Request::Status));
    }

    #[test]
    fn hello_answers_are_judged() {
        let busy = Response::Error(ErrorReply::new(ErrorKind::Busy, "full"));
        let old = Response::Hello {
            protocol_version: 1,
            agent_version: "0".into(),
        };
        assert!(matches!(
            hello_answer(Ok(busy)),
            Err(HelloError::Refused(e)) if e.kind == ErrorKind::Busy
        ));
        assert!(matches!(hello_answer(Ok(old)), Err(HelloError::Version(1))));
        assert!(matches!(
            hello_answer(Ok(Response::LoggedOut)),
            Err(HelloError::Unexpected("LoggedOut"))
        ));
        assert_eq!(hello_answer(Ok(hello_ok())).unwrap(), "9.9");
    }

    #[test]
    fn connect_gives_up_while_the_backlog_stays_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        // A listener that never accepts, with the smallest backlog.
        let listener =
            socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        listener
            .bind(&socket2::SockAddr::unix(&path).unwrap())
            .unwrap();
        listener.listen(0).unwrap();
        let limit = Duration::from_millis(200);
        let start = std::time::Instant::now();
        let mut held = Vec::new();
        let err = loop {
            match connect(&path, limit) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 64, "the backlog never filled");
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
