//! Upstream fault matrix: every way Tapis can fail, through the fake's fault
//! API, ends in success after retries or in exit 8 within a bounded time,
//! with a message that names the system and the cause. A create is never
//! repeated without a check first. (The create-timeout case and the plain
//! 500/503 cases live in agent_establish.rs.)

use std::time::{Duration, Instant};
use tapis_agent_proto::{CredState, ErrorKind, Outcome, Request, Response};
use tapis_agent_tests::fake::{CredFixture, FakeConfig, Fault, FaultKind};
use tapis_agent_tests::harness::{TestAgent, USER, error_of, state_of, systems_of};

const CHECK: &str = "checkUserCredential";
const CREATE: &str = "createUserCredential";
const TOKENS: &str = "create_token";

/// Quick timeouts so that hangs and drips cost little wall time.
fn quick(c: &mut tapis_agent::Config) {
    c.http_timeout = Duration::from_millis(500);
    c.ssh_call_timeout = Duration::from_millis(500);
    c.connect_timeout = Duration::from_millis(500);
    c.retries = 3;
    c.retry_base = Duration::from_millis(20);
    c.request_deadline = Duration::from_secs(8);
}

/// Every fault kind, with a word its error message must contain when the
/// fault never goes away.
fn matrix() -> Vec<(&'static str, FaultKind, &'static str)> {
    // A check makes Tapis SSH to the host: one that timed out is not
    // repeated (see `timed_out`).
    vec![
        ("s500", FaultKind::status(500), "500"),
        ("html502", FaultKind::Html502, "502 Bad Gateway"),
        ("s503", FaultKind::status(503), "503"),
        (
            "s429",
            FaultKind::Status {
                status: 429,
                retry_after: Some(1),
            },
            "429",
        ),
        ("drop", FaultKind::Drop, "cannot reach Tapis"),
        ("reset", FaultKind::ResetMidBody, "cut off"),
        ("truncated", FaultKind::TruncatedJson, "not valid JSON"),
        ("hang", FaultKind::Hang, "no answer from Tapis within 500ms"),
        (
            "drip",
            FaultKind::SlowDrip(Duration::from_millis(200)),
            "no answer from Tapis within 500ms",
        ),
        ("nonjson", FaultKind::NonJson, "not valid JSON"),
    ]
}

/// The rows whose check times out: never repeated, since Tapis may still be
/// in the middle of its SSH attempt (docs/tapis-conformance.md, row 34).
fn timed_out(kind: &FaultKind) -> bool {
    matches!(kind, FaultKind::Hang | FaultKind::SlowDrip(_))
}

/// A fake with one TMS system per matrix row, named after the row.
fn fake_for_matrix() -> FakeConfig {
    let mut fake = FakeConfig::default();
    for (name, _, _) in matrix() {
        fake.systems
            .push(tapis_agent_tests::fake::FakeSystem::tms(name, "localhost"));
    }
    fake
}

async fn establish_all(a: &TestAgent, names: &[&str]) -> Vec<tapis_agent_proto::SystemOutcome> {
    systems_of(
        a.request(Request::Establish {
            systems: names.iter().map(|s| s.to_string()).collect(),
            user: None,
            fresh: false,
        })
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_once_ends_in_success_after_a_retry() {
    let a = TestAgent::start_with(fake_for_matrix(), quick).await;
    a.login().await;
    let logins = a.fake.calls(TOKENS);
    let rows = matrix();
    for (name, kind, _) in &rows {
        a.fake.inject(Fault::new(CHECK, kind.clone()).system(name));
    }
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let started = Instant::now();
    let out = establish_all(&a, &names).await;
    let took = started.elapsed();
    let mut retried = 0;
    for ((_, kind, cause), o) in rows.iter().zip(&out) {
        if timed_out(kind) {
            let e = error_of(o);
            assert_eq!(e.kind, ErrorKind::TapisUnavailable, "{}", o.system);
            assert!(e.message.contains(cause), "{}", e.message);
            continue;
        }
        retried += 1;
        assert_eq!(state_of(o), CredState::Created, "{}", o.system);
        assert_eq!(a.fake.credential(USER, &o.system), CredFixture::Present);
    }
    assert!(a.fake.pending_faults().is_empty(), "every fault was hit");
    // One faulted check and one retried check per system, no more: a
    // garbled 401 or a 200 maintenance page is neither "present" nor a
    // token problem. A timed-out check is asked once.
    let once = rows.len() as u64 - retried;
    assert_eq!(a.fake.calls(CHECK), 2 * retried + once);
    assert_eq!(a.fake.calls(CREATE), retried);
    assert_eq!(a.fake.calls(TOKENS), logins, "no refresh was needed");
    // Retry-After: 1 is honoured, and nothing waits much longer than that.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_persistent_fault_is_exit_8_naming_system_and_cause_in_bounded_time() {
    let a = TestAgent::start_with(fake_for_matrix(), quick).await;
    a.login().await;
    let logins = a.fake.calls(TOKENS);
    let rows = matrix();
    for (name, kind, _) in &rows {
        a.fake
            .inject(Fault::new(CHECK, kind.clone()).system(name).times(1000));
    }
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let started = Instant::now();
    let out = establish_all(&a, &names).await;
    let took = started.elapsed();
    for ((name, _, cause), o) in rows.iter().zip(&out) {
        let e = error_of(o);
        assert_eq!(e.kind, ErrorKind::TapisUnavailable, "{name}: {e:?}");
        assert_eq!(e.kind.exit_code(), 8);
        assert!(
            e.message.contains(&format!("establish {name}:")),
            "names the system: {}",
            e.message
        );
        assert!(e.message.contains(cause), "{name}: {}", e.message);
        assert!(!e.message.contains("<html"), "no raw HTML: {}", e.message);
        assert!(e.hint.is_some(), "{name}: a hint");
    }
    // Four attempts of at most 500 ms each plus backoff (429: three
    // Retry-After seconds), well inside the 8 s deadline.
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(a.fake.calls(CREATE), 0, "no create on a failing check");
    let once = rows.iter().filter(|(_, k, _)| timed_out(k)).count() as u64;
    assert_eq!(
        a.fake.calls(CHECK),
        4 * (rows.len() as u64 - once) + once,
        "3 retries each, but none of a timed-out check"
    );
    assert_eq!(a.fake.calls(TOKENS), logins);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_is_checked_again_never_repeated() {
    let a = TestAgent::start_with(fake_for_matrix(), quick).await;
    a.login().await;
    // Faults that answer before the endpoint runs leave nothing created;
    // the others let the create happen and garble only the answer.
    let cases: [(&str, FaultKind, bool); 7] = [
        ("s503", FaultKind::status(503), false),
        ("html502", FaultKind::Html502, false),
        ("drop", FaultKind::Drop, false),
        ("hang", FaultKind::Hang, false),
        ("reset", FaultKind::ResetMidBody, true),
        ("truncated", FaultKind::TruncatedJson, true),
        (
            "drip",
            FaultKind::SlowDrip(Duration::from_millis(200)),
            true,
        ),
    ];
    for (name, kind, _) in &cases {
        a.fake.inject(Fault::new(CREATE, kind.clone()).system(name));
    }
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let out = establish_all(&a, &names).await;
    for ((name, _, landed), o) in cases.iter().zip(&out) {
        if *landed {
            assert_eq!(
                state_of(o),
                CredState::Created,
                "{name}: seen by the re-check"
            );
        } else {
            let e = error_of(o);
            assert_eq!(e.kind, ErrorKind::TapisUnavailable, "{name}: {e:?}");
            assert!(
                e.message.contains(&format!("create credentials on {name}")),
                "{}",
                e.message
            );
            assert_eq!(a.fake.credential(USER, name), CredFixture::Absent);
        }
    }
    assert_eq!(
        a.fake.calls(CREATE),
        cases.len() as u64,
        "one create per system, never repeated"
    );
    assert_eq!(
        a.fake.calls(CHECK),
        2 * cases.len() as u64,
        "one re-check each"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overall_deadline_bounds_an_operation_whatever_the_timeouts() {
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        c.http_timeout = Duration::from_secs(30);
        c.request_deadline = Duration::from_secs(1);
    })
    .await;
    a.login().await;
    a.fake.inject(Fault::new(CHECK, FaultKind::Hang).times(10));
    let started = Instant::now();
    let out = a.establish(&["ls6"], false).await;
    let took = started.elapsed();
    let e = error_of(&out[0]);
    assert_eq!(e.kind, ErrorKind::TapisUnavailable);
    assert!(e.message.contains("establish ls6"), "{}", e.message);
    assert!(e.message.contains("no result within 1s"), "{}", e.message);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The agent is free again at once.
    assert!(matches!(
        a.request(Request::Status).await,
        Response::Status(_)
    ));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_exit_8_through_the_client() {
    // A port that was just free: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        quick(c);
        c.base_url = format!("http://127.0.0.1:{port}");
    })
    .await;
    // Log in with a token minted by the fake: no HTTP needed for that.
    let token = a.fake.mint_access_token(USER, Duration::from_secs(3600));
    let resp = a.import_token(&token).await;
    assert!(matches!(resp, Response::LoggedIn { .. }), "{resp:?}");
    let socket = a.socket.clone();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        tapis_agent_tests::harness::cred_cmd(&socket, &["establish", "stampede3"], None)
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("stampede3"), "{stderr}");
    assert!(stderr.contains("cannot reach Tapis"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_tapis_is_exit_8_through_the_client_with_json() {
    let a = TestAgent::start_with(FakeConfig::default(), quick).await;
    a.login().await;
    a.fake.inject(Fault::new(CHECK, FaultKind::Hang).times(100));
    let socket = a.socket.clone();
    let out = tokio::task::spawn_blocking(move || {
        tapis_agent_tests::harness::cred_cmd(&socket, &["--json", "establish", "frontera"], None)
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(8));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let err = &doc["systems"][0]["error"];
    assert_eq!(doc["systems"][0]["system"], "frontera");
    assert_eq!(err["code"], 8);
    let msg = err["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("frontera") && msg.contains("no answer"),
        "{msg}"
    );
    a.shutdown().await;
}

/// Waits (at most a second) until the wall clock has moved past `since`,
/// so that a token issued at `since` has less than its full lifetime left.
async fn next_second(since: i64) {
    while now() <= since {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Asks for a token valid for its full lifetime: that always takes a refresh.
async fn token_needing_refresh(a: &TestAgent) -> Response {
    next_second(now()).await;
    a.request(Request::Token {
        min_valid_secs: 3600,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_faults_are_retried_then_exit_8() {
    let fake = FakeConfig {
        token_ttl: Duration::from_secs(3600),
        ..FakeConfig::default()
    };
    let a = TestAgent::start_with(fake, quick).await;
    a.login().await;

    // Once: the refresh is retried and succeeds.
    a.fake.inject(Fault::new(TOKENS, FaultKind::status(503)));
    let before = a.fake.calls(TOKENS);
    let resp = token_needing_refresh(&a).await;
    assert!(matches!(resp, Response::Token(_)), "{resp:?}");
    assert_eq!(a.fake.calls(TOKENS), before + 2);

    // Always: exit 8 naming the refresh and the cause, login kept.
    a.fake
        .inject(Fault::new(TOKENS, FaultKind::Html502).times(100));
    let started = Instant::now();
    let resp = token_needing_refresh(&a).await;
    let Response::Error(e) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(e.kind, ErrorKind::TapisUnavailable, "{e:?}");
    assert!(
        e.message.contains("refresh the access token"),
        "{}",
        e.message
    );
    assert!(e.message.contains("502"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(5));
    a.fake.clear_faults();
    let resp = a.request(Request::Token { min_valid_secs: 60 }).await;
    assert!(
        matches!(resp, Response::Token(_)),
        "a failed refresh does not lose the login: {resp:?}"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_answers_never_read_as_present() {
    let a = TestAgent::start_with(FakeConfig::default(), quick).await;
    a.login().await;
    // A 200 maintenance page from a proxy is not "credentials present".
    a.fake
        .inject(Fault::new(CHECK, FaultKind::NonJson).times(100));
    let out = systems_of(
        a.request(Request::Check {
            systems: vec!["ls6".into()],
            user: None,
            fresh: true,
        })
        .await,
    );
    let Outcome::Err(e) = &out[0].outcome else {
        panic!("a maintenance page read as {:?}", out[0].outcome)
    };
    assert_eq!(e.kind, ErrorKind::TapisUnavailable);
    a.fake.clear_faults();
    let out = a.establish(&["ls6"], false).await;
    assert_eq!(state_of(&out[0]), CredState::Created, "nothing was cached");
    a.shutdown().await;
}
