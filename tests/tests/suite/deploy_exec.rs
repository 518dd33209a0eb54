//! `tapis-agent exec -- COMMAND`: a private agent for the command's life
//! (socket exported, removed afterwards), a running agent shared when one
//! answers, signals passed on, and the command's exit status returned.

use crate::deploy_common;

use deploy_common::{Sandbox, kill, text, wait_exit};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};
use tapis_agent_tests::harness::{PASSWORD, TestAgent, USER, output_with_stdin};

/// `tapis-agent exec ARGS...` in the sandbox, with the agent state under it.
fn exec(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = sandbox.command("tapis-agent");
    cmd.arg("exec")
        .arg("--config")
        .arg(sandbox.path("cfg/none.toml"))
        .args(args);
    cmd
}

fn run(cmd: Command, stdin: Option<&str>) -> Output {
    output_with_stdin(cmd, stdin).expect("exec output")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

/// Private directories of exec's agents left in the sandbox's runtime dir.
fn leftovers(sandbox: &Sandbox) -> Vec<PathBuf> {
    std::fs::read_dir(sandbox.path("run/tapis-agent"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_agent_for_the_life_of_the_command() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let sandbox = std::sync::Arc::new(Sandbox::new(&fake.base_url()));

    // Log in through a private agent: the login is stored for the next one.
    let s = sandbox.clone();
    let login = blocking(move || {
        run(
            exec(
                &s,
                &[
                    "--",
                    "tapis-cred",
                    "login",
                    "--username",
                    USER,
                    "--password-stdin",
                ],
            ),
            Some(PASSWORD),
        )
    })
    .await;
    assert!(login.status.success(), "{}", text(&login.stderr));
    assert!(leftovers(&sandbox).is_empty(), "{:?}", leftovers(&sandbox));

    let script = r#"
        echo "$TAPIS_AGENT_SOCK"
        test -S "$TAPIS_AGENT_SOCK" || exit 90
        test -s "$TAPIS_TOKEN_FILE" || exit 91
        tapis-cred establish stampede3 || exit 92
        exit 42"#;
    let s = sandbox.clone();
    let out = blocking(move || run(exec(&s, &["--", "sh", "-c", script]), None)).await;
    assert_eq!(out.status.code(), Some(42), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let socket = PathBuf::from(stdout.lines().next().expect("socket line"));
    assert!(
        socket.starts_with(sandbox.path("run/tapis-agent")),
        "{}",
        socket.display()
    );
    assert!(stdout.contains("stampede3: created"), "{stdout}");
    assert!(!socket.exists(), "socket left behind");
    assert!(leftovers(&sandbox).is_empty(), "{:?}", leftovers(&sandbox));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_reach_the_command() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let sandbox = std::sync::Arc::new(Sandbox::new(&fake.base_url()));
    for (script, expect_code, expect_out) in [
        // The command handles SIGTERM itself and chooses its exit code.
        (
            r#"sleep 30 >/dev/null 2>&1 & trap 'kill $!; echo got-term; exit 7' TERM; echo ready; wait"#,
            7,
            "got-term",
        ),
        // The command dies of SIGTERM: exec reports 128 + 15.
        ("echo ready; exec sleep 30", 143, ""),
    ] {
        let s = sandbox.clone();
        let (code, stdout, err) = blocking(move || {
            let mut cmd = exec(&s, &["-q", "--", "sh", "-c", script]);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let first = lines.next().expect("a line").expect("read");
            assert_eq!(first, "ready");
            assert!(kill(child.id(), "TERM"));
            let rest = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
            let (status, err) = wait_exit(child);
            (status.code(), rest, err)
        })
        .await;
        assert_eq!(code, Some(expect_code), "{script}: {err}");
        assert!(stdout.contains(expect_out), "{script}: {stdout}");
        assert!(leftovers(&sandbox).is_empty(), "{:?}", leftovers(&sandbox));
    }
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_agent_is_shared() {
    let agent = TestAgent::start().await;
    agent.login().await;
    let sandbox = Sandbox::new(&agent.fake.base_url());
    let mut cmd = exec(
        &sandbox,
        &[
            "--",
            "sh",
            "-c",
            r#"echo "$TAPIS_AGENT_SOCK"; echo "${TAPIS_TOKEN_FILE:-none}""#,
        ],
    );
    cmd.env("TAPIS_AGENT_SOCK", &agent.socket);
    let out = blocking(move || run(cmd, None)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{}\nnone\n", agent.socket.display())
    );
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    agent.shutdown().await;
}

/// The batch-job case: another agent (the login node's) holds the state
/// directory and exec is not told its socket. The job's agent shares the
/// login and keeps its token valid for longer than one token lives. The job's
/// agent is a process of its own, on the system clock: the tokens age in
/// real time, so they are short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_outlives_its_token_beside_another_agent() {
    let fake = FakeConfig {
        token_ttl: std::time::Duration::from_secs(3),
        ..FakeConfig::default()
    };
    let agent = TestAgent::start_with(fake, |_| {}).await;
    agent.login().await;
    let sandbox = Sandbox::new(&agent.fake.base_url());
    let state = agent.config.state_dir.to_str().expect("utf-8").to_owned();
    // 3 s tokens refreshed 1 s before expiry: a refresh every 2 s. Four
    // refreshes: a token every 0.8 s for 8 s.
    let job = "for i in 1 2 3 4 5 6 7 8 9 10; do tapis-cred token --min-valid 1 || exit 1; \
               sleep 0.8; done";
    for extra in [&[][..], &["--private"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--state-dir", &state, "--", "sh", "-c", job]);
        let cmd = exec(&sandbox, &args);
        let before = agent.fake.calls("create_token");
        let out = blocking(move || run(cmd, None)).await;
        assert!(out.status.success(), "{extra:?}: {}", text(&out.stderr));
        let tokens: std::collections::BTreeSet<&str> = std::str::from_utf8(&out.stdout)
            .expect("utf-8")
            .lines()
            .collect();
        assert!(
            tokens.len() >= 3,
            "the job saw refreshed tokens: {tokens:?}"
        );
        assert!(tokens.iter().all(|t| t.starts_with("eyJ")));
        // Two agents, 8 s of refreshes every 2 s: about one refresh per
        // lifetime between them, not one each.
        let grants = agent.fake.calls("create_token") - before;
        assert!(grants <= 5, "{extra:?}: {grants} token grants");
    }
    assert_eq!(agent.fake.stats().expired_token, 0);
    // The other agent still hands out tokens.
    assert!(matches!(
        agent
            .request(tapis_agent_proto::Request::Token { min_valid_secs: 2 })
            .await,
        tapis_agent_proto::Response::Token(_)
    ));
    assert!(leftovers(&sandbox).is_empty(), "{:?}", leftovers(&sandbox));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_command_and_missing_login() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let sandbox = std::sync::Arc::new(Sandbox::new(&fake.base_url()));
    let s = sandbox.clone();
    let out = blocking(move || run(exec(&s, &["--", "no-such-command-here"]), None)).await;
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("command not found"));

    // Not logged in: a warning, never a prompt; the command still runs and
    // tapis-cred inside it says what to do.
    let s = sandbox.clone();
    let out = blocking(move || run(exec(&s, &["--", "tapis-cred", "token"]), None)).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("warning: not logged in"), "{err}");
    assert!(err.contains("tapis-cred login"), "{err}");
    assert!(leftovers(&sandbox).is_empty(), "{:?}", leftovers(&sandbox));
    fake.shutdown().await;
}
