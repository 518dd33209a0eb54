//! Log in once, stay logged in: refresh over many lifetimes, refresh
//! failures, revoked refresh tokens, device code, OpsUtils token files,
//! logout.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapis_agent_proto::{ErrorKind, LoginMethod, LoginState, Request, Response};
use tapis_agent_tests::fake::{FakeConfig, Fault, FaultKind};
use tapis_agent_tests::harness::{TestAgent, USER};

fn short_tokens(secs: u64) -> FakeConfig {
    FakeConfig {
        token_ttl: Duration::from_secs(secs),
        ..FakeConfig::default()
    }
}

async fn token(a: &TestAgent, min_valid: u64) -> Response {
    a.request(Request::Token {
        min_valid_secs: min_valid,
    })
    .await
}

async fn login_state(a: &TestAgent) -> LoginState {
    match a.request(Request::Status).await {
        Response::Status(s) => s.login,
        other => panic!("{other:?}"),
    }
}

/// 3 s tokens; the agent refreshes 1 s before expiry (its floor), so a
/// refresh is due every 2 s. Over `secs` seconds of the agent's clock, moved
/// on 100 ms at a time, callers ask for a token at every step; every token
/// handed out is valid and none reaches Tapis expired.
async fn tokens_stay_valid(fake: FakeConfig, secs: u64) {
    const STEP: Duration = Duration::from_millis(100);
    let a = TestAgent::start_with(fake, |_| {}).await;
    a.login().await;
    let logins = a.fake.calls("create_token");
    let started = a.clock.now_ms();
    let mut served = 0;
    for _ in 0..secs * 10 {
        a.clock.advance(STEP);
        // A moment for the refresher, woken by the move, to act.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let Response::Token(g) = token(&a, 1).await else {
            panic!("no token")
        };
        assert!(g.expires_at > a.clock.now(), "handed out an expired token");
        served += 1;
    }
    let refreshes = a.fake.calls("create_token") - logins;
    assert_eq!(
        a.fake.stats().rejected_token,
        0,
        "no call with an expired token"
    );
    // One refresh per 2 s of the clock (moved on, plus the real time the
    // loop took); allow one either way for second boundaries.
    let elapsed = ((a.clock.now_ms() - started) / 1000) as u64;
    let due = elapsed / 2;
    assert!(
        (due - 1..=due + 2).contains(&refreshes),
        "{refreshes} refreshes over {elapsed} s"
    );
    assert_eq!(served, secs * 10);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stay_valid_over_many_lifetimes() {
    // As at Tapis: refresh tokens are not rotated.
    tokens_stay_valid(short_tokens(3), 9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stay_valid_when_refresh_tokens_rotate() {
    // Stricter than Tapis: each refresh token is good for one refresh.
    let fake = FakeConfig {
        rotate_refresh_tokens: true,
        ..short_tokens(3)
    };
    tokens_stay_valid(fake, 5).await;
}

/// Tapis's 4 h tokens: moving the agent's clock to 1 min before expiry
/// (inside the 5 min margin) wakes the refresher, which refreshes at once,
/// with no caller asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_wakes_when_the_clock_moves() {
    let a = TestAgent::start().await;
    a.login().await;
    let expires = |state: LoginState| match state {
        LoginState::LoggedIn { expires_at, .. } => expires_at,
        other => panic!("{other:?}"),
    };
    let first = expires(login_state(&a).await);
    a.clock.advance(Duration::from_secs(4 * 3600 - 60));
    // Far less than the refresher's 30 s look at the state directory.
    let deadline = Instant::now() + Duration::from_secs(3);
    while expires(login_state(&a).await) == first {
        assert!(Instant::now() < deadline, "the refresher slept on");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(expires(login_state(&a).await) > a.clock.now() + 3600);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_failures_are_retried_while_the_old_token_serves() {
    // 6 s tokens, refresh planned 4 s early: the refresher starts failing
    // while the current token still has ~4 s left (2 s after the login, on
    // the agent's clock, moved there at once).
    let a = TestAgent::start_with(short_tokens(6), |c| {
        c.refresh_margin = Some(Duration::from_secs(4));
    })
    .await;
    a.login().await;
    let first = match token(&a, 1).await {
        Response::Token(g) => g,
        other => panic!("{other:?}"),
    };
    // One more failure than a refresh's own retries (1 + 3 attempts): the
    // first scheduled refresh fails as a whole and the error stays visible
    // until the refresher's backoff (≥ 0.5 s) tries again and succeeds.
    let attempts = 1 + a.config.retries;
    a.fake
        .inject(Fault::new("create_token", FaultKind::status(503)).times(attempts + 1));
    a.clock.advance(Duration::from_secs(2));
    // While refreshes fail, callers keep getting the still-valid token.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut saw_error_in_status = false;
    let refreshed = loop {
        assert!(
            Instant::now() < deadline,
            "never refreshed after the failures"
        );
        match token(&a, 1).await {
            Response::Token(g) if g.access_token != first.access_token => break g,
            Response::Token(g) => assert!(g.expires_at > a.clock.now()),
            other => panic!("caller not served: {other:?}"),
        }
        if let LoginState::LoggedIn {
            last_refresh_error: Some(e),
            ..
        } = login_state(&a).await
        {
            assert!(e.contains("503"), "{e}");
            saw_error_in_status = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refreshed.expires_at > first.expires_at);
    assert!(saw_error_in_status, "status showed the last refresh error");
    assert!(
        a.fake.pending_faults().is_empty(),
        "all three failures were hit"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_refresh_token_means_login_required_and_the_agent_lives_on() {
    // `Invalid refresh_token.` is also what a failing Authenticator says:
    // the login ends only once Tapis has refused it this long (docs/
    // tapis-conformance.md, row 32); until then, "Tapis is failing".
    let a = TestAgent::start_with(short_tokens(2), |c| {
        c.refresh_give_up = Duration::from_millis(500);
    })
    .await;
    a.login().await;
    a.fake.revoke_all_refresh_tokens();
    // The access token runs out; the refresh is refused.
    a.clock.advance(Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let Response::Error(e) = token(&a, 1).await else {
            panic!("token despite revocation")
        };
        if e.kind != ErrorKind::TapisUnavailable {
            break e;
        }
        assert!(e.message.contains("the login is kept"), "{e:?}");
        assert!(Instant::now() < deadline, "{e:?}");
        // Past the pause before the next round of refreshes.
        a.clock.advance(Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(e.kind, ErrorKind::LoginRequired);
    assert_eq!(e.kind.exit_code(), 3);
    assert!(e.hint.as_deref().unwrap_or("").contains("tapis-cred login"));
    assert!(matches!(
        login_state(&a).await,
        LoginState::LoginRequired { .. }
    ));
    // No crash loop: a second caller is told the same without hammering Tapis.
    let calls = a.fake.calls("create_token");
    let Response::Error(_) = token(&a, 1).await else {
        panic!()
    };
    assert_eq!(
        a.fake.calls("create_token"),
        calls,
        "no new refresh attempt"
    );
    // And a new login fixes it.
    a.login().await;
    assert!(matches!(token(&a, 1).await, Response::Token(_)));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_login_completes_through_the_fake() {
    let a = TestAgent::start().await;
    // A password login registers the agent's OAuth client; logout keeps it.
    a.login().await;
    assert!(matches!(
        a.request(Request::Logout {
            forget_client: false
        })
        .await,
        Response::LoggedOut
    ));
    let Response::DeviceCode(code) = a.request(Request::Login(LoginMethod::DeviceStart)).await
    else {
        panic!("no device code")
    };
    assert!(code.verification_uri.starts_with("http://127.0.0.1"));
    assert!(matches!(
        a.request(Request::DevicePoll).await,
        Response::DevicePending
    ));
    assert!(a.fake.approve_device(&code.user_code, USER));
    let resp = a.request(Request::DevicePoll).await;
    let Response::LoggedIn {
        username,
        has_refresh_token,
        ..
    } = resp
    else {
        panic!("{resp:?}")
    };
    assert_eq!(username, USER);
    assert!(has_refresh_token);
    assert!(matches!(token(&a, 60).await, Response::Token(_)));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_without_a_client_explains_what_to_do() {
    let a = TestAgent::start().await;
    let Response::Error(e) = a.request(Request::Login(LoginMethod::DeviceStart)).await else {
        panic!()
    };
    assert!(e.message.contains("OAuth client"), "{}", e.message);
    assert!(e.hint.is_some());
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file_is_exported_fresh_and_imported() {
    let mut a = TestAgent::start_with(short_tokens(4), |_| {}).await;
    let file = a.dir.path().join("home/.tapis_tokens.json");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
    a.stop_agent().await;
    a.config.export_token_file = Some(file.clone());
    a.launch().await;
    a.login().await;

    let read = || -> (String, String) {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).expect("exported file")).expect("json");
        (
            v["access_token"].as_str().expect("access_token").to_owned(),
            v["expires_at"].as_str().expect("expires_at").to_owned(),
        )
    };
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (tok1, exp1) = read();
    // The seed parses expires_at with datetime.fromisoformat.
    assert!(exp1.ends_with("+00:00") && exp1.len() == 25, "{exp1}");
    let Response::Token(g) = token(&a, 1).await else {
        panic!()
    };
    assert_eq!(g.access_token.expose(), tok1);

    // After a refresh (due 1 s before expiry) the file holds the new token.
    a.clock.advance(Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(10);
    while read().0 == tok1 {
        assert!(Instant::now() < deadline, "exported file never refreshed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Import: a token from a file, through the real client binary.
    let import = a.dir.path().join("import.json");
    let minted = a.fake.mint_access_token(USER, Duration::from_secs(3600));
    std::fs::write(
        &import,
        serde_json::json!({"access_token": minted, "expires_at": "2099-01-01T00:00:00+00:00"})
            .to_string(),
    )
    .expect("write");
    std::fs::set_permissions(&import, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let socket = a.socket.clone();
    let import_path = import.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        tapis_agent_tests::harness::cred_cmd(
            &socket,
            &["login", "--import-token-file", &import_path],
            None,
        )
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Response::Token(g) = token(&a, 60).await else {
        panic!()
    };
    assert_eq!(g.access_token.expose(), minted);

    // The agent reads the file: what is wrong with it comes back as before.
    for (text, mode, code, says) in [
        ("{not json", 0o600, 1, "not valid JSON (line 1"),
        ("{}", 0o620, 1, "writable by group or others"),
        (
            r#"{"access_token": "a.b.c", "expires_at": "2001-01-01T00:00:00+00:00"}"#,
            0o600,
            3,
            "expired at 2001-01-01 00:00 UTC",
        ),
    ] {
        std::fs::write(&import, text).expect("write");
        std::fs::set_permissions(&import, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let socket = a.socket.clone();
        let import_path = import.display().to_string();
        let out = tokio::task::spawn_blocking(move || {
            tapis_agent_tests::harness::cred_cmd(
                &socket,
                &["login", "--import-token-file", &import_path],
                None,
            )
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{text}: {stderr}");
        assert!(stderr.contains(says), "{text}: {stderr}");
    }
    assert!(matches!(
        login_state(&a).await,
        LoginState::LoggedIn {
            has_refresh_token: false,
            ..
        }
    ));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_at_tapis_and_leaves_no_token_on_disk() {
    // Enforced revocation, so the test sees the revoked token die; the live
    // services record revocations without enforcing them.
    let fake = FakeConfig {
        enforce_revocation: true,
        ..FakeConfig::default()
    };
    let a = TestAgent::start_with(fake, |_| {}).await;
    a.login().await;
    let state = a.config.state_dir.clone();
    assert!(state.join("tokens.json").exists());
    let Response::Token(g) = token(&a, 1).await else {
        panic!()
    };
    assert!(matches!(
        a.request(Request::Logout {
            forget_client: false
        })
        .await,
        Response::LoggedOut
    ));
    assert_eq!(
        a.fake.calls("revoke_token"),
        2,
        "refresh and access token revoked"
    );
    // What stays is the logout itself, for the agents sharing the state
    // directory to see.
    let stored = std::fs::read_to_string(state.join("tokens.json")).expect("tokens.json");
    assert!(stored.contains("\"login\": null"), "{stored}");
    assert!(state.join("client.json").exists(), "client kept");
    assert!(matches!(login_state(&a).await, LoginState::LoggedOut));
    // The old token is dead at Tapis too.
    let resp = tapis_agent_tests::harness::fake_http()
        .get(format!("{}/v3/systems/ls6", a.fake.base_url()))
        .header("X-Tapis-Token", g.access_token.expose())
        .send()
        .await
        .expect("get");
    // The proxy's answer for a revoked token (see the fake's caller.rs).
    assert_eq!(resp.status().as_u16(), 500);
    // Nothing on disk holds a token any more.
    for entry in std::fs::read_dir(&state).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(g.access_token.expose()));
    }
    a.login().await;
    assert_eq!(
        a.fake.calls("create_client"),
        1,
        "re-login reuses the stored client"
    );
    assert!(matches!(
        a.request(Request::Logout {
            forget_client: true
        })
        .await,
        Response::LoggedOut
    ));
    assert!(!state.join("client.json").exists());
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_client_still_works_and_an_unknown_one_is_replaced() {
    let a = Arc::new(TestAgent::start().await);
    a.login().await;
    let client: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.config.state_dir.join("client.json")).expect("client.json"),
    )
    .expect("json");
    let id = client["client_id"].as_str().expect("id").to_owned();
    let Response::Token(g) = token(&a, 1).await else {
        panic!()
    };
    // Deleting a client (e.g. in the portal) only marks it inactive at Tapis;
    // token requests through it keep working, so nothing is registered anew.
    let resp = tapis_agent_tests::harness::fake_http()
        .delete(format!("{}/v3/oauth2/clients/{id}", a.fake.base_url()))
        .header("X-Tapis-Token", g.access_token.expose())
        .send()
        .await
        .expect("delete client");
    assert!(resp.status().is_success(), "{}", resp.status());
    a.login().await;
    assert_eq!(a.fake.calls("create_client"), 1);

    // A client Tapis does not know (here: the fake forgot everything) is
    // refused with `Invalid client credentials: ...`: the agent registers a
    // new one, and the login stays refreshable.
    a.fake.reset();
    a.login().await;
    assert_eq!(a.fake.calls("create_client"), 1);
    assert!(matches!(
        login_state(&a).await,
        LoginState::LoggedIn {
            has_refresh_token: true,
            refresh_problem: None,
            ..
        }
    ));
    Arc::try_unwrap(a).expect("owner").shutdown().await;
}
