//! Local safety: the state directory's owner and mode, symlinks planted at
//! state files (refused, never followed), private file modes; and secrets,
//! which appear nowhere but in the token store, however verbose the log.
//! (A peer with another uid: agent_socket.rs.)

use crate::reliability_common;

use reliability_common::{AgentPaths, AgentProcess, temp_dir};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tapis_agent_proto::{LoginMethod, LoginState, Request, Response, Secret, TokenGrant};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis, Fault, FaultKind};
use tapis_agent_tests::harness::{TestAgent, USER, cred_cmd, test_config};

const WAIT: Duration = Duration::from_secs(10);

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("metadata").mode() & 0o777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs the agent in-process on `state_dir` and returns why it would not start.
async fn refusal(dir: &Path, state_dir: &Path) -> String {
    let socket = dir.join("run/agent.sock");
    let listener = tapis_agent::listener::bind(&socket).expect("bind");
    let config = test_config("http://127.0.0.1:9", state_dir);
    let result = tokio::time::timeout(
        WAIT,
        tapis_agent::run(listener, config, std::future::pending()),
    )
    .await
    .expect("the agent refuses at once");
    match result {
        Err(e) => e.to_string(),
        Ok(()) => panic!("the agent started on {}", state_dir.display()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_state_directories_are_refused() {
    let dir = temp_dir("ta");
    // Open to others.
    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).expect("mkdir");
    chmod(&loose, 0o755);
    let why = refusal(dir.path(), &loose).await;
    assert!(why.contains("chmod 700") && why.contains("loose"), "{why}");

    // A symlink to a private directory.
    let real = dir.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    chmod(&real, 0o700);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let why = refusal(dir.path(), &link).await;
    assert!(why.contains("symbolic link"), "{why}");

    // A missing one is created private.
    let fresh = dir.path().join("new/state");
    let socket = dir.path().join("run2/agent.sock");
    let listener = tapis_agent::listener::bind(&socket).expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = test_config("http://127.0.0.1:9", &fresh);
    let agent = tokio::spawn(tapis_agent::run(listener, config, async {
        let _ = rx.await;
    }));
    tapis_agent_tests::harness::wait_for_socket(&socket).await;
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("locks")), 0o700);
    assert_eq!(mode(&fresh.join("locks/probe.lock")), 0o600);
    assert_eq!(mode(&fresh.join("cache")), 0o700);
    let _ = tx.send(());
    agent.await.expect("join").expect("clean stop");
}

/// Someone else's state directory: only root can make one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(as_root), ignore = "needs root")]
async fn a_state_directory_of_another_user_is_refused() {
    tapis_agent_tests::needs::root("to chown a directory to another user");
    let dir = temp_dir("ta");
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    chmod(&theirs, 0o700);
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
    let why = refusal(dir.path(), &theirs).await;
    assert!(why.contains("owned by uid 65534"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_planted_at_state_files_are_refused_not_followed() {
    let dir = temp_dir("tl");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o700);
    // Files the symlinks point at: a victim that must not be overwritten,
    // and attacker-chosen content that must not be read.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    let planted = dir.path().join("planted.json");
    std::fs::write(&planted, br#"{"username":"mallory"}"#).expect("planted");
    chmod(&planted, 0o600);
    std::os::unix::fs::symlink(&planted, state.join("tokens.json")).expect("symlink");
    std::os::unix::fs::symlink(&victim, state.join("client.json")).expect("symlink");
    // And at the shared cache's entry and the locks ls6 will use.
    let key = tapis_agent::cache::key_id(USER, "ls6");
    let entry = state.join(format!("cache/{key}.json"));
    let planted_locks = [
        state.join("locks/refresh.lock"),
        state.join(format!("locks/cred-{key}.lock")),
    ];
    for d in ["cache", "locks"] {
        std::fs::create_dir(state.join(d)).expect("mkdir");
        chmod(&state.join(d), 0o700);
    }
    for link in planted_locks.iter().chain([&entry]) {
        std::os::unix::fs::symlink(&victim, link).expect("symlink");
    }

    let fake = FakeConfig::default();
    let mut a = TestAgent::start_with(fake, |c| c.state_dir = state.clone()).await;
    let Response::Status(s) = a.request(Request::Status).await else {
        panic!("no status")
    };
    assert_eq!(
        s.login,
        LoginState::LoggedOut,
        "the planted login was not read"
    );
    // Logging in and establishing write tokens, client and cache: each
    // write must refuse the link, not write through it.
    a.login().await;
    let out = a.establish(&["ls6"], false).await;
    assert_eq!(out.len(), 1);
    a.stop_agent().await;
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    assert_eq!(
        std::fs::read(&planted).expect("planted"),
        br#"{"username":"mallory"}"#
    );
    // A removal unlinks the planted cache entry (never what it points at);
    // the victim above is intact either way.
    let entry_now = std::fs::symlink_metadata(&entry).expect("entry");
    assert!(entry_now.file_type().is_symlink() || entry_now.is_file());
    let links = [state.join("tokens.json"), state.join("client.json")];
    for f in links.iter().chain(&planted_locks) {
        assert!(
            std::fs::symlink_metadata(f)
                .expect("still there")
                .file_type()
                .is_symlink(),
            "{} was replaced or followed",
            f.display()
        );
    }

    // A link in place of the locks directory stops the agent from starting.
    std::fs::remove_dir_all(state.join("locks")).expect("rm locks");
    std::os::unix::fs::symlink(dir.path(), state.join("locks")).expect("symlink");
    let why = refusal(dir.path(), &state).await;
    assert!(why.contains("locks is a symbolic link"), "{why}");
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_files_are_created_private_and_loose_ones_refused() {
    let mut a = TestAgent::start().await;
    a.login().await;
    a.establish(&["ls6", "frontera"], false).await;
    let export = a.dir.path().join("export.json");
    let resp = a
        .request(Request::ExportTokenFile {
            path: Some(export.display().to_string()),
        })
        .await;
    assert!(matches!(resp, Response::Exported { .. }), "{resp:?}");
    a.stop_agent().await;
    let state = a.config.state_dir.clone();
    assert_eq!(mode(&state), 0o700);
    for f in ["tokens.json", "client.json"] {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }
    for d in ["cache", "locks"] {
        assert_eq!(mode(&state.join(d)), 0o700, "{d}");
        for entry in std::fs::read_dir(state.join(d)).expect(d) {
            let path = entry.expect("entry").path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert_eq!(mode(&export), 0o600, "export file");

    // A token file someone made readable to others is not trusted.
    chmod(&state.join("tokens.json"), 0o644);
    a.launch().await;
    let Response::Status(s) = a.request(Request::Status).await else {
        panic!("no status")
    };
    assert_eq!(s.login, LoginState::LoggedOut, "loose token file ignored");
    a.shutdown().await;
}

/// Everything a user sees, and the agent's own log, at trace level.
struct Transcript {
    texts: Vec<(String, String)>,
}

impl Transcript {
    fn add(&mut self, what: &str, out: &Output) {
        self.texts
            .push((format!("{what} stdout"), text(&out.stdout)));
        self.texts
            .push((format!("{what} stderr"), text(&out.stderr)));
    }

    fn add_text(&mut self, what: &str, t: String) {
        self.texts.push((what.to_owned(), t));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The access and refresh tokens and the client key now on disk.
fn stored_secrets(state: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(b) = std::fs::read(state.join("tokens.json")) {
        let v: serde_json::Value = serde_json::from_slice(&b).expect("tokens.json");
        for field in ["access", "refresh"] {
            if let Some(t) = v["login"][field].as_str() {
                found.push(t.to_owned());
            }
        }
    }
    if let Ok(b) = std::fs::read(state.join("client.json")) {
        let v: serde_json::Value = serde_json::from_slice(&b).expect("client.json");
        found.push(v["client_key"].as_str().expect("client_key").to_owned());
    }
    found
}

async fn cred(socket: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let socket = socket.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cred_cmd(&socket, &args, stdin.as_deref())
    })
    .await
    .expect("join")
}

/// Waits until the wall clock has passed the second it was in: a token
/// issued before then has less than its full lifetime left.
async fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    let start = now();
    while now() == start {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_errors_json_state_or_debug_output() {
    let password = format!("Pw-{:016x}-secret", rand::random::<u64>());
    let fake = FakeTapis::start(FakeConfig {
        users: vec![(USER.into(), password.clone())],
        token_ttl: Duration::from_secs(3600),
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    let dir = temp_dir("tx");
    let paths = AgentPaths::under(dir.path());
    let agent = AgentProcess::start(&paths, &fake.base_url(), "trace").await;
    let sock: PathBuf = agent.socket.clone();
    let mut seen = Transcript { texts: Vec::new() };
    let mut secrets: Vec<String> = vec![password.clone()];

    // A wrong password first: its error must not echo what was typed.
    let wrong = format!("{password}-wrong");
    secrets.push(wrong.clone());
    let out = cred(
        &sock,
        &["login", "--username", USER, "--password-stdin"],
        Some(&wrong),
    )
    .await;
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stderr));
    seen.add("bad login", &out);

    let login = format!("{password}\n");
    let out = cred(
        &sock,
        &["--json", "login", "--username", USER, "--password-stdin"],
        Some(&login),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    seen.add("login", &out);
    secrets.extend(stored_secrets(&paths.state_dir));

    for args in [
        &[
            "--json",
            "establish",
            "stampede3",
            "ls6",
            "corral.pki",
            "nosuch",
        ][..],
        &["establish", "stampede3", "ls6"],
        &["--json", "check", "stampede3", "frontera"],
        &["-v", "revoke", "ls6"],
        &["--json", "status"],
        &["status"],
    ] {
        let out = cred(&sock, args, None).await;
        seen.add(&args.join(" "), &out);
    }
    // Upstream failures, with bodies that would carry tokens: a cut-off
    // token answer during a refresh, a 503 on a check.
    fake.inject(Fault::new("create_token", FaultKind::TruncatedJson).times(10));
    fake.inject(Fault::new("checkUserCredential", FaultKind::status(503)).times(10));
    next_second().await;
    for args in [
        &["--json", "token", "--min-valid", "3600"][..],
        &["--json", "establish", "--fresh", "frontera"],
    ] {
        let out = cred(&sock, args, None).await;
        assert!(!out.status.success());
        seen.add(&args.join(" "), &out);
    }
    fake.clear_faults();
    // A second login: its tokens are more secrets to look for.
    let out = cred(
        &sock,
        &["login", "--username", USER, "--password-stdin"],
        Some(&login),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    seen.add("second login", &out);
    secrets.extend(stored_secrets(&paths.state_dir));
    // A real refresh: new tokens to look for.
    next_second().await;
    let out = cred(&sock, &["token", "--min-valid", "3600"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout).trim().to_owned();
    seen.add_text("token stderr", text(&out.stderr));
    secrets.push(printed);
    secrets.extend(stored_secrets(&paths.state_dir));

    // Debug output of the daemon's types holding secrets.
    let stored: serde_json::Value = serde_json::from_slice(
        &std::fs::read(paths.state_dir.join("tokens.json")).expect("tokens"),
    )
    .expect("tokens.json");
    let tokens: tapis_agent::token::Tokens =
        serde_json::from_value(stored["login"].clone()).expect("the stored login");
    let client: serde_json::Value = serde_json::from_slice(
        &std::fs::read(paths.state_dir.join("client.json")).expect("client"),
    )
    .expect("client.json");
    let creds = tapis_agent::tapis::ClientCreds {
        client_id: client["client_id"].as_str().expect("id").to_owned(),
        client_key: Secret::new(client["client_key"].as_str().expect("key")),
    };
    let mut config = tapis_agent::Config::new(fake.base_url(), &paths.state_dir);
    config.client_id = Some(creds.client_id.clone());
    config.client_key = Some(creds.client_key.clone());
    let set = tapis_agent::tapis::TokenSet {
        access: tokens.access.clone(),
        access_expires_at: tokens.access_expires_at,
        access_issued_at: tokens.access_issued_at,
        refresh: tokens.refresh.clone(),
        refresh_expires_at: tokens.refresh_expires_at,
    };
    let login_req = Request::Login(LoginMethod::Password {
        username: USER.into(),
        password: Secret::new(password.clone()),
    });
    let grant = Response::Token(TokenGrant {
        access_token: tokens.access.clone(),
        expires_at: tokens.access_expires_at,
        username: USER.into(),
    });
    seen.add_text(
        "Debug output",
        format!(
            "{tokens:?}\n{tokens:#?}\n{creds:?}\n{config:?}\n{set:?}\n{login_req:?}\n{grant:?}"
        ),
    );

    let out = cred(&sock, &["--json", "logout"], None).await;
    seen.add("logout", &out);
    let mut agent = agent;
    assert!(agent.terminate().success());
    let log = agent.log_text();
    assert!(log.contains("TRACE"), "the log is at trace level");
    assert!(log.lines().count() > 100, "the log saw the flow");
    seen.add_text("agent log", log);
    for d in ["cache", "locks"] {
        for entry in std::fs::read_dir(paths.state_dir.join(d))
            .into_iter()
            .flatten()
        {
            let path = entry.expect("entry").path();
            if let Ok(t) = std::fs::read_to_string(&path) {
                seen.add_text(&path.display().to_string(), t);
            }
        }
    }

    secrets.sort();
    secrets.dedup();
    assert!(
        secrets.len() >= 6,
        "password(s), 2+ access, 2+ refresh, key: {}",
        secrets.len()
    );
    let mut hits = Vec::new();
    for (what, t) in &seen.texts {
        for s in &secrets {
            assert!(s.len() >= 16, "a secret too short to search for");
            if t.contains(s.as_str()) {
                let line = t
                    .lines()
                    .find(|l| l.contains(s.as_str()))
                    .unwrap_or_default();
                hits.push(format!("{what}: {}", line.replace(s.as_str(), "<SECRET>")));
            }
        }
    }
    assert!(hits.is_empty(), "secrets found:\n{}", hits.join("\n"));
    // And the one place they belong is private.
    assert_eq!(mode(&paths.state_dir.join("client.json")), 0o600);
    fake.shutdown().await;
}
