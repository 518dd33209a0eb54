//! The agent against the fake in real mode (the live services' behaviour, as
//! read from their source; see docs/tapis-conformance.md), through the real
//! binaries: exit codes, messages and `--json` as a user sees them.

use crate::reliability_common;

use reliability_common::{AgentPaths, AgentProcess, temp_dir};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tapis_agent_proto::{Request, Response};
use tapis_agent_tests::fake::{CredFixture, FakeConfig, FakeSystem, FakeTapis, Fault, FaultKind};
use tapis_agent_tests::harness::{PASSWORD, TestAgent, USER, bin_path, cred_cmd, fake_http};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output ({e}): {}", text(&out.stdout)))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

/// `tapis-cred ARGS` against `a`, off the async threads, timed.
async fn cred(a: &TestAgent, args: &[&str], stdin: Option<&str>) -> (Output, Duration) {
    let socket = a.socket.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(str::to_owned);
    blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let start = Instant::now();
        let out = cred_cmd(&socket, &args, stdin.as_deref());
        (out, start.elapsed())
    })
    .await
}

const LOGIN: [&str; 5] = ["--json", "login", "--username", USER, "--password-stdin"];

async fn password_login(a: &TestAgent) -> Output {
    let (out, _) = cred(a, &LOGIN, Some(&format!("{PASSWORD}\n"))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_works_end_to_end() {
    let a = TestAgent::start().await;
    // A device login needs the OAuth client a password login registers.
    password_login(&a).await;
    a.fake.reset_stats();
    let mut child = Command::new(bin_path("tapis-cred"))
        .arg("--socket")
        .arg(&a.socket)
        .args(["--json", "login", "--device"])
        .env_remove("TAPIS_AGENT_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tapis-cred");
    // The code goes to stderr: read it there, as a user would, and enter it
    // (the fake's stand-in for the browser page).
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((_, code)) = line.split_once("enter the code ") {
                let _ = tx.send(code.trim().to_owned());
            }
        }
    });
    let code = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("tapis-cred shows a code");
    // Until the code is entered Tapis answers `device code not ready.`: the
    // agent reads it as "pending" (its poll is the one the client makes).
    assert_eq!(
        a.request(Request::DevicePoll).await,
        Response::DevicePending
    );
    assert!(a.fake.approve_device(&code, USER), "code {code:?}");
    let out = blocking(move || child.wait_with_output())
        .await
        .expect("exit");
    assert!(out.status.success(), "{:?}", out.status);
    let doc = json(&out);
    assert_eq!(doc["username"], USER);
    assert_eq!(doc["refreshable"], true, "{doc}");
    // A device login's token lives 30 days.
    let left = doc["expires_at_unix"].as_i64().unwrap() - jiff::Timestamp::now().as_second();
    assert!((30 * 86_400 - 60..=30 * 86_400).contains(&left), "{left}");
    assert_eq!(a.fake.calls("generate_device_code"), 1);
    assert!(a.fake.calls("create_token") >= 2, "polled until entered");
    a.shutdown().await;
}

/// Everything a user could see, for the secret scan.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, what: &str, out: &Output) {
        self.0
            .push((what.into(), text(&out.stdout) + &text(&out.stderr)));
    }

    fn assert_free_of(&self, secrets: &[String]) {
        for (what, seen) in &self.0 {
            for s in secrets {
                assert!(!seen.contains(s.as_str()), "{what} shows a secret: {seen}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_client_key_never_leaves_the_agent() {
    let fake = FakeTapis::start(FakeConfig {
        token_ttl: Duration::from_secs(60),
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    let dir = temp_dir("tc");
    let paths = AgentPaths::under(dir.path());
    // Short and hyphenated like the keys Tapis generates, so only the
    // redaction of the Authenticator's echo can catch it.
    let key = format!("k-{:08x}", rand::random::<u32>());
    let key_file = dir.path().join("client.key");
    std::fs::write(&key_file, &key).expect("key file");
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    std::fs::write(
        &paths.config,
        format!(
            "client_id = \"agent-cfg\"\nclient_key_file = \"{}\"\n",
            key_file.display()
        ),
    )
    .expect("config");
    let mut agent = AgentProcess::start(&paths, &fake.base_url(), "trace").await;
    let socket = agent.socket.clone();
    let run = |args: &'static [&'static str], stdin: Option<String>| {
        let socket = socket.clone();
        blocking(move || cred_cmd(&socket, args, stdin.as_deref()))
    };
    let pw = || Some(format!("{PASSWORD}\n"));
    let mut seen = Seen::default();

    // The configured client is unknown at Tapis: the Authenticator answers
    // `Invalid client credentials: agent-cfg, <key>. session: ...`. The login
    // still works, unrefreshable, and says why without the key.
    let out = run(&LOGIN, pw()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["refreshable"], false, "{doc}");
    let problem = doc["refresh_problem"]
        .as_str()
        .expect("a reason")
        .to_owned();
    assert!(
        problem.contains("Invalid client credentials: agent-cfg, [redacted]"),
        "{problem}"
    );
    assert!(text(&out.stderr).contains("this login cannot be refreshed"));
    seen.add("json login", &out);
    let out = run(
        &["login", "--username", "testuser", "--password-stdin"],
        pw(),
    )
    .await;
    assert!(text(&out.stderr).contains("warning: this login cannot be refreshed"));
    seen.add("login", &out);
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["doctor"],
        &["--json", "doctor"],
    ] {
        let out = run(args, None).await;
        let shown = text(&out.stdout);
        assert!(
            shown.contains("Invalid client credentials: agent-cfg"),
            "{args:?}: {shown}"
        );
        seen.add(&args.join(" "), &out);
    }

    // Tapis learns the client: the login becomes refreshable ...
    let token = fake.mint_access_token(USER, Duration::from_secs(60));
    let registered = fake_http()
        .post(format!("{}/v3/oauth2/clients", fake.base_url()))
        .header("X-Tapis-Token", token)
        .json(&serde_json::json!({"client_id": "agent-cfg", "client_key": key}))
        .send()
        .await
        .expect("register");
    assert!(registered.status().is_success());
    let out = run(&LOGIN, pw()).await;
    assert_eq!(json(&out)["refreshable"], true);
    seen.add("refreshable login", &out);
    // ... then forgets it: the refresh is refused with the echo, and the
    // reason for `login required` keeps the id only. (A second passes first,
    // so the 60 s token has less than 60 s left and must be refreshed.)
    fake.reset();
    let second = jiff::Timestamp::now().as_second();
    while jiff::Timestamp::now().as_second() <= second {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = run(&["--json", "token", "--min-valid", "60"], None).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let message = json(&out)["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(message.contains("agent-cfg, [redacted]"), "{message}");
    seen.add("refused refresh", &out);
    for args in [&["status"][..], &["--json", "status"], &["token"]] {
        let out = run(args, None).await;
        seen.add(&args.join(" "), &out);
    }
    let out = run(&["--json", "status"], None).await;
    assert_eq!(json(&out)["login"]["state"], "login_required");

    let mut secrets = vec![key.clone()];
    // The tokens the agent holds must not show up anywhere either.
    let stored = std::fs::read_to_string(paths.state_dir.join("tokens.json")).unwrap_or_default();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap_or_default();
    for field in ["access", "refresh"] {
        if let Some(t) = stored["login"][field].as_str() {
            secrets.push(t.to_owned());
        }
    }
    assert!(secrets.len() >= 2, "tokens.json holds the login: {stored}");
    seen.assert_free_of(&secrets);
    blocking(move || {
        agent.terminate();
        agent
    })
    .await
    .log_text()
    .lines()
    .for_each(|line| {
        for s in &secrets {
            assert!(
                !line.contains(s.as_str()),
                "log line shows a secret: {line}"
            );
        }
    });
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixty_character_host_name_gives_a_refreshable_login() {
    let host = format!("{}.stampede3.tacc.utexas.edu", "n".repeat(34));
    assert_eq!(host.chars().count(), 60);
    let name = host.clone();
    let a = TestAgent::start_with(FakeConfig::default(), move |c| c.hostname = Some(name)).await;
    let out = password_login(&a).await;
    let doc = json(&out);
    assert_eq!(doc["refreshable"], true, "{doc}");
    assert_eq!(doc["has_refresh_token"], true);
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    // The registered client's fields fit the Authenticator's columns.
    let Response::Token(g) = a.request(Request::Token { min_valid_secs: 1 }).await else {
        panic!("no token")
    };
    let clients: serde_json::Value = fake_http()
        .get(format!("{}/v3/oauth2/clients", a.fake.base_url()))
        .header("X-Tapis-Token", g.access_token.expose())
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let client = &clients["result"][0];
    let len = |f: &str| client[f].as_str().map_or(usize::MAX, |s| s.chars().count());
    assert!(
        len("client_id") <= 80 && len("client_key") <= 80,
        "{client}"
    );
    assert!(
        len("display_name") <= 50 && len("description") <= 70,
        "{client}"
    );
    assert!(
        client["display_name"]
            .as_str()
            .is_some_and(|d| d.starts_with("tapis-agent on nnnn")),
        "{client}"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_system_is_exit_5_at_once_after_one_check() {
    let a = TestAgent::start().await;
    a.login().await;
    a.fake.set_forbidden(USER, "ls6", true);
    for args in [
        &["establish", "ls6"][..],
        &["--json", "check", "--fresh", "ls6"],
    ] {
        a.fake.reset_stats();
        let (out, took) = cred(&a, args, None).await;
        assert_eq!(
            out.status.code(),
            Some(5),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(took < Duration::from_secs(2), "{args:?} took {took:?}");
        assert_eq!(a.fake.calls("checkUserCredential"), 1, "{args:?}");
        assert_eq!(
            a.fake.calls("getSystem") + a.fake.calls("createUserCredential"),
            0
        );
        let shown = text(&out.stdout) + &text(&out.stderr);
        assert!(
            shown.contains("SYSAPI_CHECK_ERROR") && shown.contains("Error: SYSLIB_UNAUTH"),
            "{shown}"
        );
        assert!(!shown.contains("jwtTenant"), "boilerplate dropped: {shown}");
    }
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_recreated_only_when_rejected() {
    let a = TestAgent::start().await;
    a.login().await;
    for (fixture, inner) in [
        (CredFixture::Incomplete, "SYSLIB_CRED_NOT_FOUND"),
        (CredFixture::NotSupported, "SYSLIB_CRED_NOT_SUPPORTED"),
    ] {
        a.fake.set_credential(USER, "ls6", fixture);
        a.fake.reset_stats();
        for args in [
            &["establish", "--fresh", "ls6"][..],
            &["--json", "check", "ls6"],
        ] {
            let (out, _) = cred(&a, args, None).await;
            assert_eq!(
                out.status.code(),
                Some(1),
                "{args:?}: {}",
                text(&out.stderr)
            );
            let shown = text(&out.stdout) + &text(&out.stderr);
            assert!(
                shown.contains("Tapis cannot validate the stored credentials")
                    && shown.contains(&format!("Message: {inner}")),
                "{shown}"
            );
        }
        assert_eq!(a.fake.calls("createUserCredential"), 0, "{inner}");
        assert_eq!(a.fake.calls("getSystem"), 0, "{inner}");
        assert_eq!(a.fake.credential(USER, "ls6"), fixture);
    }
    // Only keys the host rejects are replaced.
    a.fake.set_credential(USER, "ls6", CredFixture::Rejected);
    let (out, _) = cred(&a, &["establish", "--fresh", "ls6"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ls6: recreated\n");
    assert_eq!(a.fake.credential(USER, "ls6"), CredFixture::Present);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_tms_creation_exits_6_naming_the_cause_in_time() {
    let mut systems = FakeConfig::default().systems;
    systems.push(FakeSystem::tms("shared", "shared.example.org").static_user("wma_prtl"));
    systems.push(FakeSystem::tms("bucket", "s3.example.org").system_type("S3"));
    let a = TestAgent::start_with(
        FakeConfig {
            systems,
            ..FakeConfig::default()
        },
        |_| {},
    )
    .await;
    a.login().await;
    let deadline = a.config.request_deadline;
    for (system, cause) in [
        ("shared", "SYSLIB_CRED_TMS_KEYS_NOT_ALLOWED"),
        ("bucket", "SYSLIB_CRED_TMS_KEYS_INVALID_SYS_TYPE"),
    ] {
        a.fake.reset_stats();
        let (out, took) = cred(&a, &["establish", system], None).await;
        assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
        assert!(took < deadline, "{took:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(cause) && err.contains("SYSAPI_CRED_ERROR"),
            "{err}"
        );
        assert!(
            err.contains("hint: Tapis creates TMS keys only on LINUX systems"),
            "{err}"
        );
        // Not an outage: asked once, not retried.
        assert_eq!(a.fake.calls("createUserCredential"), 1);
        let (out, _) = cred(&a, &["--json", "establish", system], None).await;
        let doc = json(&out);
        assert_eq!(doc["systems"][0]["error"]["kind"], "not_tms_keys", "{doc}");
    }
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_exit_10_keeps_the_login_and_registers_nothing() {
    let a = TestAgent::start().await;
    password_login(&a).await;
    a.fake.reset_stats();
    let (out, _) = cred(&a, &LOGIN, Some("wrong\n")).await;
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stdout));
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "wrong_password", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap_or("").to_owned();
    assert!(
        message.contains("Invalid username/password combination.")
            && message.ends_with(&format!("your previous login as {USER} is still active")),
        "{message}"
    );
    // The stored client was fine: no new one is registered for a bad password,
    // and a wrong password is not retried.
    assert_eq!(a.fake.calls("create_token"), 1);
    // The login held before still gives tokens, without a new grant.
    let (out, _) = cred(&a, &["token"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(a.fake.calls("create_token"), 1);
    assert_eq!(a.fake.calls("create_client"), 0);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapis_failing_behind_a_login_is_retried_then_exit_8() {
    // tapis-project/authenticator, service/controllers.py, `TokensResource.post`:
    // a 400 `Failure to generate an access token; please try again later.`
    // when the Tokens API call fails after the password was accepted.
    let a = TestAgent::start().await;
    let failing = || {
        Fault::new(
            "create_token",
            FaultKind::Answer {
                status: 400,
                message: "Failure to generate an access token; please try again later.".into(),
            },
        )
    };
    // Once: retried, and the login goes through.
    a.fake.inject(failing());
    password_login(&a).await;
    // Always: a bounded number of tries, then Tapis failing (exit 8), and the
    // login from before is untouched.
    a.fake.reset_stats();
    for _ in 0..10 {
        a.fake.inject(failing());
    }
    let (out, _) = cred(&a, &LOGIN, Some(&format!("{PASSWORD}\n"))).await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stdout));
    assert_eq!(json(&out)["error"]["kind"], "tapis_unavailable");
    let tries = a.fake.calls("create_token");
    assert!((2..=5).contains(&tries), "{tries} tries");
    let (out, _) = cred(&a, &["token"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrefreshable_login_says_so_at_login_in_status_and_in_doctor() {
    let a = TestAgent::start().await;
    // The client registration fails (as a too-long display name would at Tapis).
    a.fake
        .inject(Fault::new("create_client", FaultKind::status(400)));
    let why = "registering an OAuth client at Tapis failed";
    let (out, _) = cred(&a, &LOGIN[1..], Some(&format!("{PASSWORD}\n"))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("refresh: no\n"),
        "{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: this login cannot be refreshed") && err.contains(why),
        "{err}"
    );
    let (out, _) = cred(&a, &["status"], None).await;
    assert!(
        text(&out.stdout).contains(&format!("refresh   NOT POSSIBLE: {why}")),
        "{}",
        text(&out.stdout)
    );
    let (out, _) = cred(&a, &["--json", "status"], None).await;
    let problem = json(&out)["login"]["refresh_problem"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(problem.starts_with(why), "{problem}");
    let (out, _) = cred(&a, &["--json", "doctor"], None).await;
    let doc = json(&out);
    let login = doc["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "login"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(login["status"], "warn", "{doc}");
    assert!(
        login["detail"].as_str().is_some_and(|d| d.contains(why)),
        "{login}"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_credentials_are_exit_5_and_unknown_systems_exit_4() {
    let a = TestAgent::start().await;
    a.login().await;
    // A readable system, someone else's credentials: 403 `SYSLIB_UNAUTH`.
    let (out, took) = cred(&a, &["check", "--user", "someone", "ls6"], None).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(2), "{took:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("SYSLIB_UNAUTH Permission denied.") && !err.contains("Operation:"),
        "{err}"
    );
    // 404 `SYSAPI_NOSYSTEM`.
    let (out, _) = cred(&a, &["--json", "establish", "nosuch"], None).await;
    assert_eq!(out.status.code(), Some(4));
    let message = json(&out)["systems"][0]["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    // In the user's words: the verb typed, Tapis's key, not its operation name.
    assert!(
        message.starts_with("establish nosuch: ")
            && message.contains("SYSAPI_NOSYSTEM No system found.")
            && !message.contains("Operation:"),
        "{message}"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_the_user_typed_and_what_they_meant() {
    let a = TestAgent::start().await;
    a.login().await;
    let (out, _) = cred(&a, &["establish", "stampede3"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Pasted with a space: the same system.
    let (out, _) = cred(&a, &["establish", "stampede3 "], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "stampede3: present (cached)\n");
    // The wrong case: Tapis knows no such system; the one the agent has seen
    // is suggested.
    let (out, _) = cred(&a, &["establish", "Stampede3"], None).await;
    assert_eq!(out.status.code(), Some(4));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("tapis-cred: establish Stampede3: ")
            && err.contains("SYSAPI_NOSYSTEM")
            && !err.contains("Operation:")
            && err.ends_with("  hint: did you mean stampede3?\n"),
        "{err}"
    );
    let (out, _) = cred(&a, &["--json", "check", "stampede"], None).await;
    assert_eq!(
        json(&out)["systems"][0]["error"]["hint"],
        "did you mean stampede3?"
    );
    // Nothing close: the general hint stays.
    let (out, _) = cred(&a, &["establish", "nosuch"], None).await;
    assert!(
        !text(&out.stderr).contains("did you mean"),
        "{}",
        text(&out.stderr)
    );
    a.shutdown().await;
}

/// Every row of docs/tapis-conformance.md names at least one test, and every
/// test it names exists.
#[test]
fn the_conformance_table_names_tests_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/tapis-conformance.md")).expect("the page");
    let sources = |dir: &std::path::Path| {
        let mut all = String::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("dir").map_while(Result::ok) {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    all += &std::fs::read_to_string(&p).unwrap_or_default();
                }
            }
        }
        all
    };
    let daemon = sources(&root.join("daemon/src"));
    let mut rows = 0;
    for row in doc.lines().filter(|l| {
        l.strip_prefix("| ")
            .and_then(|r| r.split(' ').next())
            .is_some_and(|n| n.parse::<u32>().is_ok())
    }) {
        rows += 1;
        let tests = row.trim_end_matches('|').rsplit('|').next().unwrap_or("");
        let names: Vec<&str> = tests
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| n.contains("::"))
            .collect();
        assert!(!names.is_empty(), "row without a test: {row}");
        // `::function` names another test of the file named before it.
        let mut file = "";
        for name in names {
            let (mut first, function) = (
                name.split("::").next().unwrap_or(""),
                name.rsplit("::").next().unwrap_or(""),
            );
            if first.is_empty() {
                first = file;
            }
            file = first;
            if first.ends_with(".py") {
                let code = std::fs::read_to_string(root.join(first))
                    .unwrap_or_else(|_| panic!("no test file for {name}"));
                assert!(
                    code.contains(&format!("def {function}(")),
                    "{name} does not exist"
                );
                continue;
            }
            let code = if first == "tapis_agent" {
                daemon.clone()
            } else {
                let dir = root.join("tests/tests/suite");
                std::fs::read_to_string(dir.join(format!("{first}.rs")))
                    .or_else(|_| std::fs::read_to_string(dir.join(first).join("mod.rs")))
                    .unwrap_or_else(|_| panic!("no test file for {name}"))
            };
            assert!(
                code.contains(&format!("fn {function}("))
                    || code.contains(&format!("fn {function}<")),
                "{name} does not exist"
            );
        }
    }
    assert!(rows >= 30, "{rows} rows");
}
