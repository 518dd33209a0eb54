//! Hostile and numerous clients: thousands of idle connections, half frames
//! then silence, a client that never reads, arbitrary byte streams (a
//! proptest), and a thousand concurrent clients over fifty systems. The
//! agent keeps serving well-behaved clients, with bounded memory, and
//! answers everyone correctly or with "busy". (Garbage, oversized and
//! wrong-version frames one at a time: agent_socket.rs.)

use crate::reliability_common;

use proptest::prelude::*;
use reliability_common::{
    AgentPaths, AgentProcess, CallError, Client, raise_nofile_limit, temp_dir,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tapis_agent_proto::{
    CredState, ErrorKind, HelloError, Outcome, Request, Response, conn, encode_frame,
};
use tapis_agent_tests::fake::{CredFixture, FakeConfig, FakeTapis};
use tapis_agent_tests::harness::{TestAgent, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const WAIT: Duration = Duration::from_secs(10);

fn hello_frame() -> Vec<u8> {
    encode_frame(&conn::hello("idle")).expect("encode")
}

/// Connects, retrying while the listen queue is full.
async fn connect(socket: &std::path::Path) -> UnixStream {
    let deadline = Instant::now() + WAIT;
    loop {
        match UnixStream::connect(socket).await {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect: {e}");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

/// A well-behaved client: connect, hello, status; how long it took.
async fn served_within(socket: &std::path::Path, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut c = Client::connect(socket, bound)
        .await
        .unwrap_or_else(|e| panic!("not served within {bound:?}: {e:?}"));
    let r = c.call(&Request::Status, bound).await;
    assert!(matches!(r, Ok(Response::Status(_))), "{r:?}");
    started.elapsed()
}

/// Reads until EOF; true when the agent closed within `within`.
async fn closed_within(s: &mut UnixStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_do_not_lock_out_a_real_client() {
    let _turn = crate::HEAVY.lock().await;
    let limit = raise_nofile_limit();
    let idle = 2000usize;
    assert!(limit > idle as u64 + 200, "open-file limit {limit}");
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("ti");
    let agent = AgentProcess::start(&AgentPaths::under(dir.path()), &fake.base_url(), "warn").await;
    let rss_start = agent.rss_kib();
    let first = served_within(&agent.socket, Duration::from_secs(2)).await;

    // A third say nothing, a third start a maximal frame and stall
    // (slowloris), a third say hello and then nothing.
    let mut held = Vec::with_capacity(idle);
    let header = (tapis_agent_proto::MAX_FRAME_LEN as u32).to_be_bytes();
    for i in 0..idle {
        let mut s = connect(&agent.socket).await;
        match i % 3 {
            0 => {}
            1 => {
                let _ = s.write_all(&header).await;
                let _ = s.write_all(&[0u8; 100]).await;
            }
            _ => {
                let _ = s.write_all(&hello_frame()).await;
            }
        }
        held.push(s);
    }
    // Real clients are served promptly, again and again, while the idle
    // ones keep arriving in the agent's queue.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        worst = worst.max(served_within(&agent.socket, Duration::from_secs(4)).await);
    }
    let rss_peak = agent.rss_kib();
    // The idle connections were shed (told "busy") or timed out, never
    // served forever: count those the agent closed.
    let mut closed = 0;
    for s in held.iter_mut() {
        if closed_within(s, Duration::from_millis(1)).await {
            closed += 1;
        }
    }
    eprintln!(
        "{idle} idle connections: first client {first:?}, worst client under load {worst:?}; \
         agent RSS {rss_start} KiB at start, {rss_peak} KiB under load; {closed} idle ones closed so far"
    );
    assert!(worst < Duration::from_secs(3), "{worst:?}");
    assert!(
        closed > 0,
        "the agent made room by closing idle connections"
    );
    // Bounded memory: max_connections frame buffers at most, never one per
    // connection attempt.
    assert!(
        rss_peak < rss_start + 64 * 1024,
        "RSS grew from {rss_start} to {rss_peak} KiB"
    );
    drop(held);
    served_within(&agent.socket, Duration::from_secs(2)).await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_and_idle_connections_time_out() {
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        c.hello_timeout = Duration::from_millis(300);
        c.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let mut conns = Vec::new();
    for i in 0..30 {
        let mut s = connect(&a.socket).await;
        match i % 3 {
            0 => {}
            // Half a frame, then silence.
            1 => s.write_all(&[0, 0, 0, 40, 1, 2]).await.expect("write"),
            _ => s.write_all(&hello_frame()).await.expect("write"),
        }
        conns.push(s);
    }
    let started = Instant::now();
    for s in conns.iter_mut() {
        assert!(
            closed_within(s, Duration::from_secs(3)).await,
            "never closed"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    served_within(&a.socket, Duration::from_secs(2)).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_and_others_are_served() {
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        c.write_timeout = Duration::from_millis(300);
    })
    .await;
    let mut s = connect(&a.socket).await;
    s.write_all(&hello_frame()).await.expect("hello");
    let status = encode_frame(&Request::Status).expect("encode");
    // Keep asking, never read: the answers pile up until the agent's
    // write times out and it hangs up; then our writes fail.
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let batch: Vec<u8> = status.repeat(256);
        loop {
            if s.write_all(&batch).await.is_err() {
                return Instant::now();
            }
        }
    });
    // Served meanwhile.
    served_within(&a.socket, Duration::from_secs(2)).await;
    let ended = tokio::time::timeout(WAIT, writer)
        .await
        .expect("the agent hangs up on a client that never reads")
        .expect("writer");
    eprintln!("non-reading client dropped after {:?}", ended - started);
    served_within(&a.socket, Duration::from_secs(2)).await;
    a.shutdown().await;
}

/// Byte streams a hostile or broken client might send.
fn hostile_stream() -> impl Strategy<Value = Vec<u8>> {
    let hello = hello_frame();
    prop_oneof![
        // Anything at all.
        proptest::collection::vec(any::<u8>(), 0..600),
        // A real hello, then anything.
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(move |tail| {
            let mut v = hello.clone();
            v.extend(tail);
            v
        }),
        // A length prefix of any size, then a few bytes.
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(len, body)| {
            let mut v = len.to_be_bytes().to_vec();
            v.extend(body);
            v
        }),
        // Well-formed frames of any request, with any protocol version.
        (any::<u32>(), 0u8..8, any::<u64>()).prop_map(|(version, which, n)| {
            let mut v = encode_frame(&Request::Hello {
                protocol_version: version,
                client_version: format!("v{n}"),
            })
            .expect("encode");
            let req = match which {
                0 => Request::Status,
                1 => Request::Token { min_valid_secs: n },
                2 => Request::Check {
                    systems: vec![format!("s{n}"), String::new(), "../x".into()],
                    user: Some("u/../../v".into()),
                    fresh: n % 2 == 0,
                },
                3 => Request::Revoke {
                    systems: vec!["a".repeat((n % 300) as usize)],
                    user: None,
                },
                4 => Request::DevicePoll,
                5 => Request::ExportTokenFile {
                    path: Some("relative/path".into()),
                },
                6 => Request::Hello {
                    protocol_version: version,
                    client_version: String::new(),
                },
                _ => Request::Establish {
                    systems: Vec::new(),
                    user: None,
                    fresh: true,
                },
            };
            v.extend(encode_frame(&req).expect("encode"));
            v
        }),
    ]
}

#[test]
fn arbitrary_byte_streams_never_crash_the_agent_and_it_keeps_serving() {
    // In-process, a panicking connection task would only end that task;
    // the release build aborts on panic. Count panics on the agent's
    // runtime threads, so that one fails this test as it would crash the
    // agent.
    static AGENT_PANICS: AtomicU64 = AtomicU64::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        if thread.name() == Some("hostile-agent") {
            AGENT_PANICS.fetch_add(1, Ordering::Relaxed);
        }
        previous(info);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("hostile-agent")
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let agent = rt.block_on(TestAgent::start_with(FakeConfig::default(), |c| {
        c.hello_timeout = Duration::from_millis(200);
        c.idle_timeout = Duration::from_millis(200);
    }));
    let socket = agent.socket.clone();
    let cases = AtomicU64::new(0);
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(stream in hostile_stream(), split in 0usize..600)| {
        cases.fetch_add(1, Ordering::Relaxed);
        rt.block_on(async {
            let mut s = connect(&socket).await;
            // In two writes, so frames also arrive split.
            let cut = split.min(stream.len());
            let _ = s.write_all(&stream[..cut]).await;
            let _ = s.write_all(&stream[cut..]).await;
            let _ = s.shutdown().await;
            // Every stream ends in a close: after an answer, an error or
            // a timeout, never a hang.
            prop_assert!(closed_within(&mut s, Duration::from_secs(5)).await);
            served_within(&socket, Duration::from_secs(2)).await;
            Ok(())
        })?;
    });
    assert!(cases.load(Ordering::Relaxed) >= 96);
    assert_eq!(
        AGENT_PANICS.load(Ordering::Relaxed),
        0,
        "the agent panicked"
    );
    rt.block_on(agent.shutdown());
}

/// True when an answer (to the hello or the request) is "busy".
fn is_busy(answer: &Result<Response, CallError>) -> bool {
    match answer {
        Ok(Response::Error(e)) => e.kind == ErrorKind::Busy,
        Err(CallError::Refused(HelloError::Refused(e))) => e.kind == ErrorKind::Busy,
        _ => false,
    }
}

/// The state one owner has put a system in, and the answer each step must
/// get from it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    Absent,
    Present,
}

fn expect(step: &Request, model: Model) -> (Vec<CredState>, Model) {
    match (step, model) {
        (Request::Establish { .. }, Model::Absent) => (vec![CredState::Created], Model::Present),
        (Request::Establish { .. }, Model::Present) => (vec![CredState::Present], Model::Present),
        (Request::Check { .. }, Model::Present) => (vec![CredState::Present], model),
        (Request::Check { .. }, Model::Absent) => (vec![CredState::Missing], model),
        (Request::Revoke { .. }, _) => (vec![CredState::Revoked], Model::Absent),
        (other, _) => panic!("not an owner step: {other:?}"),
    }
}

/// The owner of `system` pipelines its whole sequence on one connection
/// (all requests written before any answer is read) and checks each answer
/// against the state its earlier steps left: the agent must apply them in
/// order, whatever the other clients do meanwhile. A step told "busy" did
/// not happen and changes nothing. Returns how many were busy, and the
/// state the sequence left.
async fn owner(socket: std::path::PathBuf, system: String) -> (u64, Model) {
    let one = || vec![system.clone()];
    let steps = [
        Request::Establish {
            systems: one(),
            user: None,
            fresh: false,
        },
        Request::Check {
            systems: one(),
            user: None,
            fresh: true,
        },
        Request::Revoke {
            systems: one(),
            user: None,
        },
        Request::Check {
            systems: one(),
            user: None,
            fresh: true,
        },
        Request::Establish {
            systems: one(),
            user: None,
            fresh: false,
        },
        Request::Check {
            systems: one(),
            user: None,
            fresh: true,
        },
        Request::Revoke {
            systems: one(),
            user: None,
        },
        Request::Establish {
            systems: one(),
            user: None,
            fresh: true,
        },
    ];
    let mut c = loop {
        match Client::connect(&socket, WAIT).await {
            Ok(c) => break c,
            Err(e) => {
                let e = Err(e);
                assert!(is_busy(&e), "{system}: cannot connect: {e:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let mut frames = Vec::new();
    for s in &steps {
        frames.extend(encode_frame(s).expect("encode"));
    }
    c.conn
        .stream_mut()
        .write_all(&frames)
        .await
        .expect("send the sequence");
    let mut model = Model::Absent;
    let mut busy = 0;
    for step in &steps {
        let answer = tokio::time::timeout(WAIT, c.conn.answer(drop))
            .await
            .expect("answer in time")
            .expect("answer");
        let Response::Systems(out) = answer else {
            panic!("{system}: not a systems answer")
        };
        match &out[0].outcome {
            Outcome::Err(e) if e.kind == ErrorKind::Busy => busy += 1,
            Outcome::Err(e) => panic!("{system}: {step:?} failed: {e:?}"),
            Outcome::Ok(state) => {
                let (allowed, next) = expect(step, model);
                assert!(
                    allowed.contains(state),
                    "{system}: {step:?} answered {state:?}, expected {allowed:?} (order broken)"
                );
                model = next;
            }
        }
    }
    (busy, model)
}

/// A bystander: one request about a random system on a fresh connection,
/// as `tapis-cred` does; it must be answered correctly or told "busy".
async fn bystander(socket: std::path::PathBuf, i: usize, systems: usize) -> bool {
    let system = format!("sys{:04}", i % systems);
    let req = match i % 4 {
        0 => Request::Token { min_valid_secs: 60 },
        1 => Request::Check {
            systems: vec![system],
            user: None,
            fresh: false,
        },
        2 => Request::Check {
            systems: vec![system],
            user: None,
            fresh: true,
        },
        _ => Request::Status,
    };
    let answer = match Client::connect(&socket, WAIT).await {
        Ok(mut c) => c.call(&req, WAIT).await,
        Err(e) => Err(e),
    };
    if is_busy(&answer) {
        return true;
    }
    match (&req, answer) {
        (Request::Token { .. }, Ok(Response::Token(t))) => assert_eq!(t.username, USER),
        (Request::Status, Ok(Response::Status(_))) => {}
        (Request::Check { .. }, Ok(Response::Systems(v))) => match &v[0].outcome {
            Outcome::Ok(CredState::Present | CredState::Missing) => {}
            Outcome::Err(e) if e.kind == ErrorKind::Busy => return true,
            other => panic!("check {}: {other:?}", v[0].system),
        },
        (req, other) => panic!("{req:?} answered {other:?}"),
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_clients_over_fifty_systems() {
    let _turn = crate::HEAVY.lock().await;
    raise_nofile_limit();
    const SYSTEMS: usize = 50;
    const CLIENTS: usize = 1000;
    let fake = FakeConfig {
        extra_tms_systems: SYSTEMS,
        ..FakeConfig::default()
    };
    // Short per-system queues, so that "busy" really happens.
    let a = TestAgent::start_with(fake, |c| c.queue_depth = 4).await;
    a.login().await;
    let started = Instant::now();
    let run = async {
        let mut owners = Vec::new();
        let mut others = Vec::new();
        for i in 0..CLIENTS {
            let socket = a.socket.clone();
            if i < SYSTEMS {
                owners.push(tokio::spawn(owner(socket, format!("sys{i:04}"))));
            } else {
                others.push(tokio::spawn(bystander(socket, i, SYSTEMS)));
            }
        }
        let mut busy = 0;
        let mut models = Vec::new();
        for t in owners {
            let (b, model) = t.await.expect("owner");
            busy += b;
            models.push(model);
        }
        for t in others {
            busy += u64::from(t.await.expect("bystander"));
        }
        (busy, models)
    };
    // No deadlock: everything is over well within the deadline.
    let (busy, models) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("all clients answered within 60 s");
    let took = started.elapsed();
    eprintln!("{CLIENTS} clients over {SYSTEMS} systems in {took:?}; {busy} told busy");
    // Tapis ends where each owner's sequence says it must, and nobody but
    // the owners created anything.
    for (i, model) in models.iter().enumerate() {
        let system = format!("sys{i:04}");
        let want = match model {
            Model::Present => CredFixture::Present,
            Model::Absent => CredFixture::Absent,
        };
        assert_eq!(a.fake.credential(USER, &system), want, "{system}");
    }
    let creates = a.fake.calls("createUserCredential");
    assert!(creates <= 3 * SYSTEMS as u64, "{creates}");
    a.shutdown().await;
}
