//! `tapis-cred doctor` and the configured default user of `login`, with the
//! real client against an in-process agent and the fake Tapis.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use tapis_agent_proto::{Request, Response};
use tapis_agent_tests::fake::{FakeConfig, Fault, FaultKind};
use tapis_agent_tests::harness::{PASSWORD, TestAgent, USER, cred_cmd};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

fn check<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {doc}"))
}

fn doctor_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("doctor --json is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_in_order_and_reports_fixes() {
    let export = tempfile::tempdir().expect("tmp");
    let export_file = export.path().join("tokens.json");
    let file = export_file.clone();
    let agent = TestAgent::start_with(FakeConfig::default(), move |c| {
        c.export_token_file = Some(file);
    })
    .await;
    let socket = agent.socket.clone();

    // Not logged in: the login check fails with the fix; Tapis is still probed.
    let s = socket.clone();
    let out = blocking(move || cred_cmd(&s, &["doctor", "--json"], None)).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc = doctor_json(&out);
    let names: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config",
            "socket dir",
            "agent",
            "login",
            "tapis",
            "state dir",
            "locks",
            "systemd",
            "token file"
        ]
    );
    assert_eq!(check(&doc, "agent")["status"], "pass");
    assert_eq!(check(&doc, "login")["status"], "fail");
    assert_eq!(check(&doc, "login")["fix"], "tapis-cred login");
    assert_eq!(check(&doc, "tapis")["status"], "pass", "{doc}");
    assert!(
        check(&doc, "tapis")["detail"]
            .as_str()
            .unwrap()
            .contains("/v3/systems/healthcheck answered in"),
        "{doc}"
    );
    assert_eq!(check(&doc, "token file")["status"], "fail");
    assert_eq!(check(&doc, "locks")["status"], "pass", "{doc}");
    assert!(
        check(&doc, "locks")["detail"]
            .as_str()
            .unwrap()
            .starts_with("flock"),
        "{doc}"
    );
    assert!(agent.fake.calls("healthCheck") >= 1);

    // Logged in, token file written: login, tapis and token file pass.
    agent.login().await;
    let s = socket.clone();
    let out = blocking(move || {
        let exported = cred_cmd(&s, &["export-token-file"], None);
        assert!(exported.status.success(), "{}", text(&exported.stderr));
        cred_cmd(&s, &["doctor"], None)
    })
    .await;
    let human = text(&out.stdout);
    assert!(human.contains(&format!("✓ login       {USER}")), "{human}");
    assert!(human.contains("✓ token file"), "{human}");
    assert!(
        !human.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    // A state file others can read is a failure with a chmod fix; -q shows
    // only what is wrong.
    let state_file = agent.config.state_dir.join("tokens.json");
    std::fs::set_permissions(&state_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    agent
        .fake
        .inject(Fault::new("healthCheck", FaultKind::status(503)));
    let s = socket.clone();
    let out = blocking(move || cred_cmd(&s, &["doctor", "-q"], None)).await;
    std::fs::set_permissions(&state_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let human = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{human}");
    assert!(human.contains("✗ state dir"), "{human}");
    assert!(
        human.contains(&format!("fix: chmod 600 {}", state_file.display())),
        "{human}"
    );
    assert!(human.contains("✗ tapis"), "{human}");
    assert!(!human.contains("✓"), "-q hides passing checks: {human}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_without_an_agent_says_how_to_start_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let socket = dir.path().join("run/agent.sock");
    let out = blocking(move || cred_cmd(&socket, &["doctor"], None)).await;
    assert_eq!(out.status.code(), Some(1));
    let human = text(&out.stdout);
    assert!(human.contains("✗ socket dir"), "{human}");
    assert!(human.contains("✗ agent"), "{human}");
    assert!(human.contains("fix: start it with: tapis-agent"), "{human}");
    assert!(
        human.contains("- login       the agent is not reachable"),
        "{human}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_uses_the_configured_username() {
    let agent = TestAgent::start_with(FakeConfig::default(), |c| {
        c.username = Some(USER.into());
        c.tenant = Some("designsafe".into());
    })
    .await;
    match agent.request(Request::Settings).await {
        Response::Settings(s) => {
            assert_eq!(s.username.as_deref(), Some(USER));
            assert_eq!(s.state_dir, agent.config.state_dir.display().to_string());
        }
        other => panic!("{other:?}"),
    }
    let socket = agent.socket.clone();
    let out = blocking(move || {
        cred_cmd(
            &socket,
            &["login", "--password-stdin", "--json"],
            Some(PASSWORD),
        )
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stdout));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["username"], USER);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reports_tapis_failures_without_retrying() {
    let agent = TestAgent::start().await;
    agent
        .fake
        .inject(Fault::new("healthCheck", FaultKind::status(503)));
    match agent.request(Request::Ping).await {
        Response::Pong(p) => {
            assert!(p.url.ends_with("/v3/systems/healthcheck"), "{p:?}");
            assert_eq!(p.tapis_latency_ms, None);
            assert!(p.tapis_error.is_some_and(|e| e.contains("503")));
        }
        other => panic!("{other:?}"),
    }
    match agent.request(Request::Ping).await {
        Response::Pong(p) => assert!(p.tapis_latency_ms.is_some(), "{p:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(agent.fake.calls("healthCheck"), 2);
    agent.shutdown().await;
}
