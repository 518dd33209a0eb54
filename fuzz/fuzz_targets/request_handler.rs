//! Request handling: any byte stream sent to a live in-process agent (the
//! connection state machine, hello, decode and dispatch) ends in an answer
//! or a close, and the agent still serves a well-behaved client after it.
//! The agent's Tapis is a closed port, so requests that go upstream fail
//! fast; nothing leaves the machine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tapis_agent_proto::{
    PROTOCOL_VERSION, Request, Response, decode, read_frame, write_frame,
};

struct Agent {
    socket: PathBuf,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("tf")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let socket = dir.path().join("run/agent.sock");
        let mut config = tapis_agent::Config::new("http://127.0.0.1:9", dir.path().join("state"));
        config.retries = 0;
        config.connect_timeout = Duration::from_millis(200);
        config.http_timeout = Duration::from_millis(200);
        config.request_deadline = Duration::from_secs(1);
        config.hello_timeout = Duration::from_millis(200);
        config.idle_timeout = Duration::from_millis(200);
        config.write_timeout = Duration::from_millis(200);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt.block_on(async { tapis_agent::listener::bind(&socket) }).expect("bind");
        rt.spawn(tapis_agent::run(listener, config, std::future::pending()));
        let agent = Agent {
            socket,
            _dir: dir,
            _rt: rt,
        };
        assert!(healthy(&agent.socket), "agent does not start");
        agent
    })
}

/// A well-behaved client gets its status.
fn healthy(socket: &PathBuf) -> bool {
    for _ in 0..500 {
        if let Ok(mut s) = UnixStream::connect(socket) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let hello = Request::Hello {
                protocol_version: PROTOCOL_VERSION,
                client_version: "fuzz".into(),
            };
            let ok = write_frame(&mut s, &hello).is_ok()
                && read_frame(&mut s).is_ok()
                && write_frame(&mut s, &Request::Status).is_ok()
                && read_frame(&mut s)
                    .ok()
                    .and_then(|b| decode::<Response>(&b).ok())
                    .is_some_and(|r| matches!(r, Response::Status(_)));
            return ok;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Writing a token file to a path taken from the input would let the
/// fuzzer write anywhere on the machine: such inputs are skipped.
fn writes_files(data: &[u8]) -> bool {
    let mut stream = std::io::Cursor::new(data);
    while let Ok(body) = read_frame(&mut stream) {
        if let Ok(Request::ExportTokenFile { .. }) = decode::<Request>(&body) {
            return true;
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    if writes_files(data) {
        return;
    }
    let agent = agent();
    let mut s = UnixStream::connect(&agent.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let _ = s.write_all(data);
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Answers, then a close: never a hang.
    let mut sink = Vec::new();
    let read = s.read_to_end(&mut sink);
    assert!(
        read.is_ok() || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the agent neither answered nor closed: {read:?}"
    );
    assert!(healthy(&agent.socket), "the agent stopped serving");
});
