//! Establish, check and revoke through the in-process agent against the fake.

use std::sync::Arc;
use tapis_agent_proto::{CredState, ErrorKind, Request, Response};
use tapis_agent_tests::fake::{CredFixture, FakeConfig, Fault, FaultKind};
use tapis_agent_tests::harness::{TestAgent, USER, error_of, state_of, systems_of};

const CHECK: &str = "checkUserCredential";
const GET: &str = "getSystem";
const CREATE: &str = "createUserCredential";
const REMOVE: &str = "removeUserCredential";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn establish_creates_then_answers_from_cache_and_fresh_checks() {
    let a = TestAgent::start().await;
    a.login().await;

    let out = a.establish(&["stampede3"], false).await;
    assert_eq!(state_of(&out[0]), CredState::Created);
    assert_eq!(out[0].user, USER);
    assert!(!out[0].cached);
    assert_eq!(
        (a.fake.calls(CHECK), a.fake.calls(GET), a.fake.calls(CREATE)),
        (1, 1, 1)
    );
    assert_eq!(a.fake.credential(USER, "stampede3"), CredFixture::Present);

    let out = a.establish(&["stampede3"], false).await;
    assert_eq!(state_of(&out[0]), CredState::Present);
    assert!(out[0].cached);
    assert_eq!(a.fake.calls(CHECK), 1, "served from cache");

    let out = a.establish(&["stampede3"], true).await;
    assert_eq!(state_of(&out[0]), CredState::Present);
    assert!(!out[0].cached);
    assert_eq!(
        (a.fake.calls(CHECK), a.fake.calls(CREATE)),
        (2, 1),
        "--fresh: one check"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_establishes_share_one_upstream_sequence() {
    // A tiny queue: joining establishes must not take queue slots.
    let a = Arc::new(TestAgent::start_with(FakeConfig::default(), |c| c.queue_depth = 2).await);
    a.login().await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let a = a.clone();
        tasks.push(tokio::spawn(
            async move { a.establish(&["ls6"], false).await },
        ));
    }
    for t in tasks {
        let out = t.await.expect("task");
        let s = state_of(&out[0]);
        assert!(
            matches!(s, CredState::Created | CredState::Present),
            "{s:?}"
        );
    }
    assert_eq!(
        (a.fake.calls(CHECK), a.fake.calls(GET), a.fake.calls(CREATE)),
        (1, 1, 1)
    );
    Arc::try_unwrap(a).expect("sole owner").shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_systems_in_parallel_all_succeed() {
    let fake = FakeConfig {
        extra_tms_systems: 50,
        ..FakeConfig::default()
    };
    let a = TestAgent::start_with(fake, |_| {}).await;
    a.login().await;
    let names: Vec<String> = (0..50).map(|i| format!("sys{i:04}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = a.establish(&refs, false).await;
    assert_eq!(out.len(), 50);
    for (o, name) in out.iter().zip(&names) {
        assert_eq!(&o.system, name, "answers keep request order");
        assert_eq!(state_of(o), CredState::Created);
    }
    assert_eq!(a.fake.calls(CREATE), 50);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn establish_revoke_establish_keep_arrival_order() {
    let a = TestAgent::start().await;
    a.login().await;
    // Slow the first check down so the later requests queue up behind it.
    a.fake.inject(Fault::new(
        CHECK,
        FaultKind::Delay(std::time::Duration::from_millis(300)),
    ));
    let mut c1 = a.client().await;
    let mut c2 = a.client().await;
    let mut c3 = a.client().await;
    let first = tokio::spawn(async move {
        c1.call(Request::Establish {
            systems: vec!["frontera".into()],
            user: None,
            fresh: false,
        })
        .await
    });
    // Each request is sent only after the previous one is on the wire; the
    // system's queue sees them in this order.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let second = tokio::spawn(async move {
        c2.call(Request::Revoke {
            systems: vec!["frontera".into()],
            user: None,
        })
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let third = tokio::spawn(async move {
        c3.call(Request::Establish {
            systems: vec!["frontera".into()],
            user: None,
            fresh: false,
        })
        .await
    });
    let r1 = systems_of(first.await.expect("1"));
    let r2 = systems_of(second.await.expect("2"));
    let r3 = systems_of(third.await.expect("3"));
    assert_eq!(state_of(&r1[0]), CredState::Created);
    assert_eq!(state_of(&r2[0]), CredState::Revoked);
    assert_eq!(
        state_of(&r3[0]),
        CredState::Created,
        "re-created after the revoke, not cached"
    );
    assert_eq!(a.fake.calls(CREATE), 2);
    assert_eq!(a.fake.calls(REMOVE), 1);
    assert_eq!(a.fake.credential(USER, "frontera"), CredFixture::Present);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_tms_system_is_exit_6_without_create() {
    let a = TestAgent::start().await;
    a.login().await;
    let out = a.establish(&["corral.pki"], false).await;
    let e = error_of(&out[0]);
    assert_eq!(e.kind, ErrorKind::NotTmsKeys);
    assert_eq!(e.kind.exit_code(), 6);
    assert!(e.message.contains("PKI_KEYS"), "{}", e.message);
    assert_eq!(a.fake.calls(CREATE), 0);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_system_is_4_and_forbidden_is_5() {
    let a = TestAgent::start().await;
    a.login().await;
    let out = a.establish(&["nosuch"], false).await;
    assert_eq!(error_of(&out[0]).kind, ErrorKind::SystemNotFound);
    a.fake.set_forbidden(USER, "ls6", true);
    let out = a.establish(&["ls6"], false).await;
    assert_eq!(error_of(&out[0]).kind, ErrorKind::PermissionDenied);
    assert_eq!(a.fake.calls(CREATE), 0);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_succeed() {
    let a = TestAgent::start().await;
    a.login().await;
    a.fake
        .inject(Fault::new(CHECK, FaultKind::status(500)).times(3));
    let out = a.establish(&["stampede3"], false).await;
    assert_eq!(state_of(&out[0]), CredState::Created);
    assert_eq!(a.fake.calls(CHECK), 4);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapis_down_is_exit_8_in_bounded_time() {
    let a = TestAgent::start().await;
    a.login().await;
    a.fake
        .inject(Fault::new(CHECK, FaultKind::status(503)).times(100));
    let started = std::time::Instant::now();
    let out = a.establish(&["stampede3"], false).await;
    let e = error_of(&out[0]);
    assert_eq!(e.kind, ErrorKind::TapisUnavailable);
    assert!(
        e.message.contains("stampede3"),
        "names the system: {}",
        e.message
    );
    assert!(e.message.contains("503"), "names the cause: {}", e.message);
    assert!(
        started.elapsed() < a.config.request_deadline,
        "bounded by the deadline"
    );
    assert_eq!(a.fake.calls(CHECK), 1 + u64::from(a.config.retries));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_are_recreated_and_conn_fail_is_not() {
    let a = TestAgent::start().await;
    a.login().await;
    a.fake.set_credential(USER, "ls6", CredFixture::Rejected);
    let out = a.establish(&["ls6"], false).await;
    assert_eq!(state_of(&out[0]), CredState::Recreated);
    a.fake
        .set_credential(USER, "frontera", CredFixture::ConnFail);
    let out = a.establish(&["frontera"], false).await;
    assert_eq!(error_of(&out[0]).kind, ErrorKind::TapisUnavailable);
    assert_eq!(a.fake.calls(CREATE), 1, "no create for an unreachable host");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_without_changing() {
    let a = TestAgent::start().await;
    a.login().await;
    let out = systems_of(
        a.request(Request::Check {
            systems: vec!["stampede3".into(), "ls6".into()],
            user: None,
            fresh: false,
        })
        .await,
    );
    assert_eq!(state_of(&out[0]), CredState::Missing);
    assert_eq!(state_of(&out[1]), CredState::Missing);
    assert_eq!(a.fake.calls(CREATE) + a.fake.calls(GET), 0);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_timeout_is_rechecked_not_repeated() {
    let a = TestAgent::start_with(FakeConfig::default(), |c| {
        // A create makes Tapis SSH: it waits the longer of the two.
        c.http_timeout = std::time::Duration::from_millis(500);
        c.ssh_call_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    a.login().await;
    // The create takes effect at the fake but the answer comes too late.
    a.fake.inject(Fault::new(
        CREATE,
        FaultKind::Delay(std::time::Duration::from_secs(2)),
    ));
    let out = a.establish(&["stampede3"], false).await;
    assert_eq!(a.fake.calls(CREATE), 1, "never repeated blindly");
    assert_eq!(a.fake.calls(CHECK), 2, "checked again instead");
    // Whether the delayed create has landed decides the answer; either way
    // the agent does not claim success without evidence.
    match &out[0].outcome {
        tapis_agent_proto::Outcome::Ok(s) => assert_eq!(*s, CredState::Created),
        tapis_agent_proto::Outcome::Err(e) => assert_eq!(e.kind, ErrorKind::TapisUnavailable),
    }
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_logged_in_is_login_required() {
    let a = TestAgent::start().await;
    let resp = a
        .request(Request::Establish {
            systems: vec!["ls6".into()],
            user: None,
            fresh: false,
        })
        .await;
    let Response::Error(e) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(e.kind, ErrorKind::LoginRequired);
    assert!(e.hint.as_deref().unwrap_or("").contains("tapis-cred login"));
    a.shutdown().await;
}
