//! Figure 2: one request's round trip over the socket, timed in the bench
//! process with a blocking client like `tapis-cred`'s (encode, write, the
//! agent's work, read, decode).

use super::client::{CLIENT_VERSION, SyncClient, establish, is_cached_present};
use super::stats::Summary;
use anyhow::ensure;
use serde::Serialize;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use tapis_agent_proto::{
    CodecError, Connection, Request, Response, conn, encode_frame, read_frame,
};

/// Longest wait for a hello answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Figure 2 results (microseconds).
#[derive(Debug, Clone, Serialize)]
pub struct IpcResults {
    /// The hello exchange, first frame on a connection made just before
    /// (the agent accepts it, checks the peer and answers).
    pub hello: Summary,
    /// Connect plus the hello exchange.
    pub connect_hello: Summary,
    /// Establish of one system answered from the cache, on an open connection.
    pub cached_establish: Summary,
    /// Token request on an open connection.
    pub token: Summary,
    /// The floor: the establish frame echoed back by a thread that does
    /// nothing else, over a Unix socket pair.
    pub echo_floor: Summary,
}

/// `iters` establishes and tokens (interleaved, after a warm-up) and
/// `iters / 4` hellos.
pub fn measure(socket: &Path, system: &str, iters: usize) -> anyhow::Result<IpcResults> {
    let est = establish(&[system.to_owned()], false);
    let tok = Request::Token { min_valid_secs: 0 };
    let mut client = SyncClient::connect(socket)?;
    let warmup = (iters / 10).clamp(1, 1000);
    let mut est_t = Vec::with_capacity(iters);
    let mut tok_t = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let (a, resp) = timed(|| client.call(&est))?;
        ensure!(is_cached_present(&resp), "not a cached answer: {resp:?}");
        let (b, resp) = timed(|| client.call(&tok))?;
        ensure!(matches!(resp, Response::Token(_)), "token: {resp:?}");
        if i >= warmup {
            est_t.push(a);
            tok_t.push(b);
        }
    }
    let hellos = (iters / 4).max(1);
    let mut hello_t = Vec::with_capacity(hellos);
    let mut connect_t = Vec::with_capacity(hellos);
    for i in 0..warmup + hellos {
        let start = Instant::now();
        let stream = conn::connect(socket, ANSWER_TIMEOUT)?;
        let connected = Instant::now();
        Connection::hello(stream, CLIENT_VERSION, None)?;
        let end = Instant::now();
        if i >= warmup {
            hello_t.push(end - connected);
            connect_t.push(end - start);
        }
    }
    let echo = echo_floor(&encode_frame(&est)?, iters, warmup)?;
    Ok(IpcResults {
        echo_floor: Summary::of_durations(&echo).expect("iters > 0"),
        hello: Summary::of_durations(&hello_t).expect("hellos > 0"),
        connect_hello: Summary::of_durations(&connect_t).expect("hellos > 0"),
        cached_establish: Summary::of_durations(&est_t).expect("iters > 0"),
        token: Summary::of_durations(&tok_t).expect("iters > 0"),
    })
}

/// Round trips of `frame` to an echo thread: what the socket and two thread
/// wake-ups cost on this machine, with no agent work at all.
fn echo_floor(frame: &[u8], iters: usize, warmup: usize) -> anyhow::Result<Vec<Duration>> {
    let (mut ours, mut theirs) = UnixStream::pair()?;
    ours.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    theirs.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    std::thread::scope(|scope| {
        let echo = scope.spawn(move || -> anyhow::Result<()> {
            loop {
                let body = match read_frame(&mut theirs) {
                    Ok(body) => body,
                    Err(CodecError::Closed) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let mut back = u32::try_from(body.len())?.to_be_bytes().to_vec();
                back.extend_from_slice(&body);
                theirs.write_all(&back)?;
            }
        });
        let mut times = Vec::with_capacity(iters);
        for i in 0..warmup + iters {
            let start = Instant::now();
            ours.write_all(frame)?;
            read_frame(&mut ours)?;
            if i >= warmup {
                times.push(start.elapsed());
            }
        }
        drop(ours);
        echo.join()
            .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
        Ok(times)
    })
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let start = Instant::now();
    let v = f()?;
    Ok((start.elapsed(), v))
}
