//! Tokens: min-valid, refresh on expiry and on rejection, restart persistence.

use std::time::Duration;
use tapis_agent_proto::{CredState, ErrorKind, LoginState, Request, Response};
use tapis_agent_tests::fake::FakeConfig;
use tapis_agent_tests::harness::{TestAgent, USER, state_of};

fn claims_exp(token: &str) -> i64 {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    v["exp"].as_i64().expect("exp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_honours_min_valid() {
    let a = TestAgent::start().await;
    a.login().await;
    let Response::Token(grant) = a
        .request(Request::Token {
            min_valid_secs: 3600,
        })
        .await
    else {
        panic!("no token")
    };
    assert_eq!(grant.username, USER);
    let exp = claims_exp(grant.access_token.expose());
    assert_eq!(exp, grant.expires_at);
    assert!(
        exp - a.clock.now() >= 3600,
        "valid for at least the hour asked"
    );
    // Longer than Tapis ever issues: a clear error, not a refresh loop.
    let resp = a
        .request(Request::Token {
            min_valid_secs: 10 * 3600,
        })
        .await;
    let Response::Error(e) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(e.kind, ErrorKind::Usage);
    assert!(a.fake.calls("create_token") <= 3, "no refresh storm");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_gets_a_refresh_token_through_its_own_client() {
    let a = TestAgent::start().await;
    a.login().await;
    assert_eq!(a.fake.calls("create_client"), 1);
    let Response::Status(s) = a.request(Request::Status).await else {
        panic!()
    };
    let LoginState::LoggedIn {
        has_refresh_token,
        username,
        ..
    } = s.login
    else {
        panic!("{:?}", s.login)
    };
    assert!(has_refresh_token);
    assert_eq!(username, USER);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_once_and_never_reaches_tapis() {
    // 4 s tokens: after login, the agent's clock moves past their expiry.
    let fake = FakeConfig {
        token_ttl: Duration::from_secs(4),
        ..FakeConfig::default()
    };
    let a = TestAgent::start_with(fake, |c| {
        // Keep the background refresher out of the way: callers refresh.
        c.refresh_margin = Some(Duration::ZERO);
    })
    .await;
    a.login().await;
    let logins = a.fake.calls("create_token");
    a.clock.advance(Duration::from_secs(5));
    let out = a.establish(&["stampede3"], false).await;
    assert_eq!(state_of(&out[0]), CredState::Created);
    assert_eq!(
        a.fake.stats().rejected_token,
        0,
        "no call carried an expired token"
    );
    assert!(
        a.fake.calls("create_token") > logins,
        "refreshed before use"
    );
    a.shutdown().await;
}

/// An agent against a fake that enforces revocation as the deployment's
/// proxy does: a revoked token that has not expired is refused.
async fn agent_enforcing_revocation() -> TestAgent {
    let fake = FakeConfig {
        enforce_revocation: true,
        ..FakeConfig::default()
    };
    TestAgent::start_with(fake, |_| {}).await
}

/// Revokes `token` at a fake that enforces revocation: afterwards the proxy
/// answers 500 `Token is revoked.` for it.
async fn revoke_at_fake(a: &TestAgent, token: &str) {
    let resp = tapis_agent_tests::harness::fake_http()
        .post(format!("{}/v3/oauth2/tokens/revoke", a.fake.base_url()))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .expect("revoke");
    assert!(resp.status().is_success(), "{}", resp.status());
}

async fn current_token(a: &TestAgent) -> String {
    let Response::Token(g) = a.request(Request::Token { min_valid_secs: 1 }).await else {
        panic!("no token")
    };
    g.access_token.expose().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_401_is_never_read_as_missing_credentials() {
    let a = agent_enforcing_revocation().await;
    a.login().await;
    a.fake
        .set_credential(USER, "ls6", tapis_agent_tests::fake::CredFixture::Present);
    revoke_at_fake(&a, &current_token(&a).await).await;
    let refreshes = a.fake.calls("create_token");
    let out = a.establish(&["ls6"], false).await;
    // The token problem was fixed by one refresh; the credentials were there
    // all along and nothing was created.
    assert_eq!(state_of(&out[0]), CredState::Present);
    assert_eq!(a.fake.stats().rejected_token, 1);
    assert_eq!(a.fake.calls("create_token"), refreshes + 1);
    assert_eq!(
        a.fake.calls("getSystem") + a.fake.calls("createUserCredential"),
        0
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_without_refresh_is_login_required_not_create() {
    let a = agent_enforcing_revocation().await;
    let imported = a.fake.mint_access_token(USER, Duration::from_secs(3600));
    let resp = a.import_token(&imported).await;
    assert!(
        matches!(
            resp,
            Response::LoggedIn {
                has_refresh_token: false,
                ..
            }
        ),
        "{resp:?}"
    );
    revoke_at_fake(&a, &imported).await;
    let out = a.establish(&["ls6"], false).await;
    let tapis_agent_proto::Outcome::Err(e) = &out[0].outcome else {
        panic!("{:?}", out[0])
    };
    assert_eq!(e.kind, ErrorKind::LoginRequired, "{e:?}");
    assert!(e.hint.as_deref().unwrap_or("").contains("tapis-cred login"));
    assert_eq!(
        a.fake.calls("getSystem") + a.fake.calls("createUserCredential"),
        0
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_login_and_cache() {
    let mut a = TestAgent::start().await;
    a.login().await;
    let out = a.establish(&["stampede3", "ls6"], false).await;
    assert!(out.iter().all(|o| state_of(o) == CredState::Created));
    a.stop_agent().await;
    assert!(!a.socket.exists(), "socket removed on exit");
    a.launch().await;
    let calls_before = a.fake.stats().total();
    let out = a.establish(&["stampede3", "ls6"], false).await;
    assert!(
        out.iter()
            .all(|o| o.cached && state_of(o) == CredState::Present)
    );
    let Response::Token(_) = a.request(Request::Token { min_valid_secs: 60 }).await else {
        panic!("login lost across restart")
    };
    assert_eq!(
        a.fake.stats().total(),
        calls_before,
        "no upstream call after restart"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_token_callers_share_one_refresh() {
    let fake = FakeConfig {
        token_ttl: Duration::from_secs(4),
        ..FakeConfig::default()
    };
    let a = std::sync::Arc::new(
        TestAgent::start_with(fake, |c| c.refresh_margin = Some(Duration::ZERO)).await,
    );
    a.login().await;
    let before = a.fake.calls("create_token");
    // Age the token until it has under 2 s left (JWT times are whole seconds),
    // so every caller below needs a refresh.
    a.clock.advance(Duration::from_millis(3050));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            a.request(Request::Token { min_valid_secs: 2 }).await
        }));
    }
    for t in tasks {
        assert!(matches!(t.await.expect("task"), Response::Token(_)));
    }
    let refreshes = a.fake.calls("create_token") - before;
    assert_eq!(
        refreshes, 1,
        "{refreshes} refreshes for 100 concurrent callers"
    );
    std::sync::Arc::try_unwrap(a)
        .expect("owner")
        .shutdown()
        .await;
}
