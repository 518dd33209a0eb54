//! What production Tapis does beyond the happy path, and how the agent keeps
//! working through it: the Authenticator's transient 400s, the proxy's 500
//! for a revoked token, hosts Tapis cannot reach over SSH, a new user whose
//! access is still propagating, and a state directory shared with an agent
//! of another Tapis. Each through `tapis-cred`, as a user meets it; the
//! fake's behaviours cite their sources (docs/tapis-conformance.md).

use crate::reliability_common;

use reliability_common::{AgentPaths, AgentProcess, temp_dir};
use std::process::Output;
use std::time::{Duration, Instant};
use tapis_agent_proto::{Request, Response};
use tapis_agent_tests::fake::{CredFixture, FakeConfig, FakeTapis, Fault, FaultKind};
use tapis_agent_tests::harness::{PASSWORD, TestAgent, USER, cred_cmd};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output ({e}): {}", text(&out.stdout)))
}

/// `tapis-cred ARGS` against the agent at `socket`, off the async threads.
async fn cred(socket: &std::path::Path, args: &[&str]) -> Output {
    let socket = socket.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cred_cmd(&socket, &args, None)
    })
    .await
    .expect("join")
}

async fn login(socket: &std::path::Path) {
    let socket = socket.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        cred_cmd(
            &socket,
            &["login", "--username", USER, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn short_tokens(secs: u64) -> FakeConfig {
    FakeConfig {
        token_ttl: Duration::from_secs(secs),
        ..FakeConfig::default()
    }
}

/// `tapis-cred --json status`'s login part.
async fn login_doc(socket: &std::path::Path) -> serde_json::Value {
    let out = cred(socket, &["--json", "status"]).await;
    json(&out)["login"].clone()
}

/// The Authenticator answers 400 "please try again later" when the Tokens API
/// behind it fails. Twice in a row, for an agent nobody watches: it keeps the
/// login, and refreshes by itself once Tapis recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_refused_with_try_again_later_keep_the_login() {
    let a = TestAgent::start_with(short_tokens(2), |c| c.retries = 1).await;
    login(&a.socket).await;
    let first = login_doc(&a.socket).await["expires_at_unix"].clone();
    // Two rounds of two attempts each fail: the scheduled refresh, then the
    // one after its pause.
    a.fake
        .inject(Fault::new("create_token", FaultKind::tokens_api_failure()).times(4));
    // The refresh is due a second before expiry.
    a.clock.advance(Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_failing = false;
    loop {
        let doc = login_doc(&a.socket).await;
        assert_eq!(doc["state"], "logged_in", "the login is kept: {doc}");
        if doc["last_refresh_error"]
            .as_str()
            .is_some_and(|e| e.contains("please try again later"))
        {
            saw_failing = true;
        }
        if doc["expires_at_unix"] != first && doc["last_refresh_error"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "never refreshed: {doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_failing, "status said what was going on");
    assert!(
        a.fake.pending_faults().is_empty(),
        "both rounds were refused"
    );
    let out = cred(&a.socket, &["token", "--min-valid", "1"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    a.shutdown().await;
}

/// A caller that needs a token while Tapis refuses to refresh gets exit 8
/// ("Tapis is failing, retrying"), the login stays; the same refusal for a
/// whole `refresh_give_up_secs` ends the login (exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doubtful_refusals_end_a_login_only_after_the_give_up_time() {
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        c.retries = 0;
        c.refresh_give_up = Duration::from_secs(1);
    })
    .await;
    login(&a.socket).await;
    // Once a second has passed, a token valid the whole lifetime (4 h) can
    // only come from a refresh.
    a.clock.advance(Duration::from_secs(2));
    a.fake
        .inject(Fault::new("create_token", FaultKind::invalid_refresh_token()).times(1000));
    let started = a.clock.now();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut exits = Vec::new();
    let last = loop {
        // A token valid an hour: only a refresh gives one.
        let out = cred(&a.socket, &["--json", "token", "--min-valid", "14400"]).await;
        let code = out.status.code();
        exits.push(code);
        if code == Some(3) {
            break out;
        }
        assert_eq!(code, Some(8), "{}", text(&out.stdout));
        let doc = json(&out);
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("Invalid refresh_token."), "{message}");
        assert!(message.contains("the login is kept"), "{message}");
        assert!(Instant::now() < deadline, "{exits:?}");
        // Time passes on the agent's clock: its pauses between rounds end.
        a.clock.advance(Duration::from_millis(100));
    };
    assert!(a.clock.now() - started >= 1, "{exits:?}");
    let message = json(&last)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("has refused the refresh token for"),
        "{message}"
    );
    assert_eq!(login_doc(&a.socket).await["state"], "login_required");
    // Every agent on the state directory waits out the same pauses: the
    // failed rounds are far fewer than the callers' tries.
    let refreshes = a.fake.calls("create_token") - 2;
    assert!(
        refreshes < exits.len() as u64,
        "{refreshes} refreshes for {} calls",
        exits.len()
    );
    a.shutdown().await;
}

/// The proxy answers a revoked access token with 500 `Token is revoked.`:
/// one refresh, and the establish goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_proxy_calls_revoked_is_refreshed() {
    let fake = FakeConfig {
        enforce_revocation: true,
        ..FakeConfig::default()
    };
    let a = TestAgent::start_with(fake, |_| {}).await;
    login(&a.socket).await;
    let out = cred(&a.socket, &["token"]).await;
    let token = text(&out.stdout).trim().to_owned();
    let revoked = tapis_agent_tests::harness::fake_http()
        .post(format!("{}/v3/oauth2/tokens/revoke", a.fake.base_url()))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .expect("revoke");
    assert!(revoked.status().is_success());
    let refreshes = a.fake.calls("create_token");
    let out = cred(&a.socket, &["establish", "--fresh", "ls6"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(a.fake.calls("create_token"), refreshes + 1);
    assert_eq!(a.fake.stats().rejected_token, 1);

    // The proxy answers the same when its token check fails: a fresh token
    // refused again is Tapis failing (exit 8), never "log in again".
    let again = || {
        Fault::new(
            "checkUserCredential",
            FaultKind::Answer {
                status: 500,
                message: "Token is revoked.".into(),
            },
        )
    };
    a.fake.inject(again().times(2));
    let out = cred(&a.socket, &["--json", "check", "--fresh", "ls6"]).await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("token check is failing"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(login_doc(&a.socket).await["state"], "logged_in");
    a.shutdown().await;
}

/// Tapis SSHes to the host on a check: for a host that drops packets its
/// answer (`SYSLIB_CRED_CONN_FAIL`) comes after its own SSH timeout, longer
/// than an ordinary call's. The agent waits for it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_reported_as_tapis_says_after_one_check() {
    // Short times, in the same order as the real ones: an ordinary call's
    // timeout < Tapis's SSH timeout (its answer's delay) < the agent's
    // timeout of a call that makes Tapis SSH.
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        c.http_timeout = Duration::from_millis(300);
        c.ssh_call_timeout = Duration::from_millis(1500);
    })
    .await;
    login(&a.socket).await;
    a.fake.set_credential(USER, "ls6", CredFixture::Present);
    a.fake
        .set_unreachable("ls6", Some(Duration::from_millis(800)));
    let out = cred(&a.socket, &["--json", "check", "--fresh", "ls6"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        json(&out)["systems"][0]["state"],
        "host_unreachable",
        "{}",
        text(&out.stdout)
    );
    assert_eq!(a.fake.calls("checkUserCredential"), 1);

    let out = cred(&a.socket, &["--json", "establish", "--fresh", "ls6"]).await;
    assert_eq!(out.status.code(), Some(8));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("SYSLIB_CRED_CONN_FAIL") && shown.contains("ls6.tacc.utexas.edu"),
        "{shown}"
    );
    assert_eq!(a.fake.calls("checkUserCredential"), 2);
    assert_eq!(
        a.fake.calls("createUserCredential"),
        0,
        "a host problem never creates keys"
    );

    // Slower than even that: one timed-out check, not a storm of SSH attempts.
    a.fake.set_unreachable("ls6", Some(Duration::from_secs(30)));
    let out = cred(&a.socket, &["--json", "check", "--fresh", "ls6"]).await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stdout));
    assert_eq!(a.fake.calls("checkUserCredential"), 3);
    a.fake.set_unreachable("ls6", None);
    a.shutdown().await;
}

/// Right after onboarding, Tapis cannot verify a new user's keys until their
/// access reaches the host. The agent retries the creation for a while and
/// says what it waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_users_keys_are_created_once_access_propagates() {
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        c.new_user_wait = Duration::from_secs(2);
    })
    .await;
    login(&a.socket).await;
    a.fake.set_propagating(USER, "ls6", 2);
    let out = cred(&a.socket, &["--json", "establish", "ls6", "frontera"]).await;
    assert!(out.status.success(), "{}", text(&out.stdout));
    let doc = json(&out);
    assert_eq!(doc["systems"][0]["state"], "created", "{doc}");
    // ls6: refused twice, then created; frontera at once.
    assert_eq!(a.fake.calls("createUserCredential"), 4);
    assert_eq!(a.fake.credential(USER, "ls6"), CredFixture::Present);

    // Never propagating within the wait: the error says what it may be.
    a.fake.set_propagating(USER, "stampede3", 1000);
    let started = Instant::now();
    let out = cred(&a.socket, &["--json", "establish", "stampede3"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let error = &json(&out)["systems"][0]["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("could not verify new keys"),
        "{error}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("several minutes to reach"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    a.shutdown().await;
}

/// While a request waits, the agent says what for, every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_establish_sends_progress_before_its_answer() {
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        c.new_user_wait = Duration::from_secs(10);
    })
    .await;
    a.login().await;
    // Four pauses of at least 1/60, 1/30, 1/15 and 2/15 of the wait: 2.5 s.
    a.fake.set_propagating(USER, "ls6", 5);
    let mut client = a.client().await;
    let mut notes = Vec::new();
    let mut stream = {
        client.call(Request::Ping).await;
        client.into_stream()
    };
    tapis_agent_proto::write_frame_async(
        &mut stream,
        &Request::Establish {
            systems: vec!["ls6".into()],
            user: None,
            fresh: false,
        },
    )
    .await
    .expect("send");
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        tapis_agent_proto::read_answer_async(&mut stream, |n| notes.push(n)),
    )
    .await
    .expect("in time")
    .expect("answer");
    assert!(matches!(answer, Response::Systems(_)), "{answer:?}");
    assert!(!notes.is_empty(), "progress before the answer");
    assert!(
        notes
            .iter()
            .flatten()
            .any(|n| n.starts_with("ls6: ") && n.contains("could not verify new keys yet")),
        "{notes:?}"
    );
    a.shutdown().await;
}

/// A failed `--fresh` says nothing about the keys: the last known state
/// stays, and the error says what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fresh_establish_keeps_the_last_known_state() {
    let a = TestAgent::start().await;
    login(&a.socket).await;
    let out = cred(&a.socket, &["establish", "ls6"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    a.fake
        .inject(Fault::new("checkUserCredential", FaultKind::status(503)).times(100));
    let out = cred(&a.socket, &["--json", "establish", "--fresh", "ls6"]).await;
    assert_eq!(out.status.code(), Some(8));
    let message = json(&out)["systems"][0]["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("last known: present, checked"),
        "{message}"
    );
    let out = cred(&a.socket, &["--json", "establish", "ls6"]).await;
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(json(&out)["systems"][0]["cached"], true);
    a.fake.clear_faults();
    a.shutdown().await;
}

/// A login belongs to the Tapis that issued it: an agent for another Tapis
/// on the same state directory never sends it there, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_is_never_sent_to_another_tapis() {
    let first = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let other = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("tp");
    let paths = AgentPaths::under(dir.path());
    let mut agent = AgentProcess::start(&paths, &first.base_url(), "info").await;
    login(&agent.socket).await;
    agent.terminate();

    let mut agent = AgentProcess::start(&paths, &other.base_url(), "info").await;
    let before = other.control().stats().total();
    for args in [&["--json", "token"][..], &["--json", "establish", "ls6"]] {
        let out = cred(&agent.socket, args).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stdout)
        );
        let shown = text(&out.stdout);
        assert!(shown.contains(&first.base_url()), "{shown}");
    }
    let doc = login_doc(&agent.socket).await;
    assert_eq!(doc["state"], "login_required", "{doc}");
    assert!(
        doc["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("never sent to another Tapis"),
        "{doc}"
    );
    assert_eq!(
        other.control().stats().total(),
        before,
        "nothing reached the other Tapis"
    );
    // A login of its own replaces it.
    login(&agent.socket).await;
    let out = cred(&agent.socket, &["establish", "ls6"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    agent.terminate();
    first.shutdown().await;
    other.shutdown().await;
}
