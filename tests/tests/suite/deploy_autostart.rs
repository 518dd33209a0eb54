//! `tapis-cred` starting the agent when none answers on the default socket:
//! many clients at once start exactly one, and the switches that turn it
//! off are honoured.

use crate::deploy_common;

use deploy_common::{Sandbox, alive, kill, text, wait_until};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};

const CLIENTS: usize = 8;

/// Stops the autostarted agent (its pid as the starting client reported
/// it) when the test ends, also when it fails.
#[derive(Default)]
struct StopAgent(AtomicU32);

impl StopAgent {
    /// Notes the pid from a client's "started tapis-agent (pid N; ...)".
    fn note(&self, stderr: &str) {
        let pid = stderr
            .split("started tapis-agent (pid ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|n| n.parse().ok());
        if let Some(pid) = pid {
            self.0.store(pid, Ordering::SeqCst);
        }
    }

    fn pid(&self) -> Option<u32> {
        Some(self.0.load(Ordering::SeqCst)).filter(|p| *p != 0)
    }
}

impl Drop for StopAgent {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|p| alive(*p)) {
            kill(pid, "KILL");
        }
    }
}

fn status(sandbox: &Sandbox, env: &[(&str, &str)]) -> Output {
    sandbox
        .command("tapis-cred")
        .arg("status")
        .envs(env.iter().copied())
        .output()
        .expect("run tapis-cred")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_start_one_agent() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let sandbox = Arc::new(Sandbox::new(&fake.base_url()));
    let guard = StopAgent::default();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (sandbox, barrier) = (sandbox.clone(), barrier.clone());
            tokio::task::spawn_blocking(move || {
                barrier.wait();
                status(&sandbox, &[])
            })
        })
        .collect();
    let mut starters = 0;
    for client in clients {
        let out = client.await.expect("join");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("not logged in"),
            "{}",
            text(&out.stdout)
        );
        guard.note(&text(&out.stderr));
        starters += usize::from(text(&out.stderr).contains("started tapis-agent"));
    }
    assert_eq!(starters, 1, "exactly one client starts the agent");
    let log = std::fs::read_to_string(sandbox.state_dir().join("agent.log")).expect("agent log");
    assert_eq!(log.matches("agent ready").count(), 1, "{log}");
    assert!(!log.contains("another tapis-agent"), "{log}");

    // It keeps running for the next client, detached from the first.
    let pid = guard.pid().expect("agent pid");
    assert!(alive(pid));
    let again = status(&sandbox, &[]);
    assert!(again.status.success());
    assert!(
        !text(&again.stderr).contains("started"),
        "{}",
        text(&again.stderr)
    );

    assert!(kill(pid, "TERM"));
    let socket = sandbox.default_socket();
    tokio::task::spawn_blocking(move || wait_until("the agent to stop", || !socket.exists()))
        .await
        .expect("join");
    fake.shutdown().await;
}

#[test]
fn switched_off_or_under_systemd_it_stays_off() {
    let sandbox = Arc::new(Sandbox::new("http://127.0.0.1:9"));
    let guard = StopAgent::default();
    for env in [
        ("TAPIS_AGENT_AUTOSTART", "0"),
        ("INVOCATION_ID", "0123456789abcdef0123456789abcdef"),
    ] {
        let out = status(&sandbox, &[env]);
        guard.note(&text(&out.stderr));
        assert_eq!(out.status.code(), Some(7), "{env:?}: {}", text(&out.stderr));
        assert!(!sandbox.state_dir().join("agent.log").exists(), "{env:?}");
    }
    // An installed socket unit means systemd starts the agent.
    let units = sandbox.path("cfg/systemd/user");
    std::fs::create_dir_all(&units).expect("unit dir");
    std::fs::write(units.join("tapis-agent.socket"), "").expect("unit");
    let out = status(&sandbox, &[("TAPIS_AGENT_AUTOSTART", "")]);
    guard.note(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(!sandbox.state_dir().join("agent.log").exists());
}

#[test]
fn an_agent_that_cannot_start_says_why_at_the_client() {
    let sandbox = Sandbox::new("http://127.0.0.1:9");
    let guard = StopAgent::default();
    let config = sandbox.path("cfg/tapis-agent");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("config.toml"), "cache_tll_secs = 5\n").expect("config");
    let out = status(&sandbox, &[]);
    guard.note(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    // The agent's own words, from its log, not only "exited at once".
    let err = text(&out.stderr);
    assert!(
        err.contains("tapis-agent exited at once")
            && err.contains("unknown key `cache_tll_secs` (did you mean `cache_ttl_secs`?)")
            && err.contains("agent.log")
            && err.ends_with("hint: fix what the agent says above, then run the command again\n"),
        "{err}"
    );
}

#[test]
fn doctor_points_at_the_log_the_started_agent_writes() {
    // Tapis unreachable, so the tapis check fails and names the log.
    let sandbox = Sandbox::new("http://127.0.0.1:9");
    let guard = StopAgent::default();
    let out = status(&sandbox, &[]);
    guard.note(&text(&out.stderr));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sandbox
        .command("tapis-cred")
        .args(["--json", "doctor"])
        .output()
        .expect("run tapis-cred");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let tapis = doc["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "tapis"))
        .cloned()
        .unwrap_or_default();
    let fix = tapis["fix"].as_str().unwrap_or_default();
    let log = sandbox.state_dir().join("agent.log");
    assert!(
        fix.ends_with(&format!("the agent's log: {}", log.display())),
        "{doc}"
    );
    assert!(!fix.contains("journalctl"), "{fix}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_runs_without_an_agent() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let sandbox = Arc::new(Sandbox::new(&fake.base_url()));
    let guard = StopAgent::default();
    let s = sandbox.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = s.command("tapis-cred");
        cmd.args(["--direct", "login", "--username"])
            .arg(tapis_agent_tests::harness::USER)
            .arg("--password-stdin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        std::io::Write::write_all(
            &mut child.stdin.take().expect("stdin"),
            tapis_agent_tests::harness::PASSWORD.as_bytes(),
        )
        .expect("password");
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let s = sandbox.clone();
    let out = tokio::task::spawn_blocking(move || {
        s.command("tapis-cred")
            .args(["establish", "stampede3", "--direct", "--json"])
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true, "{doc}");

    // Same exit codes as with an agent: an unknown system is 4.
    let s = sandbox.clone();
    let out = tokio::task::spawn_blocking(move || {
        s.command("tapis-cred")
            .args(["--direct", "establish", "no-such-system"])
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    guard.note(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    // No agent was left running, and none was autostarted.
    assert!(!sandbox.default_socket().exists());
    assert!(!sandbox.state_dir().join("agent.log").exists());
    assert!(
        text(&out.stderr).starts_with("tapis-cred: "),
        "{}",
        text(&out.stderr)
    );
    fake.shutdown().await;
}
