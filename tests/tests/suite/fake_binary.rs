//! The `fake-tapis` binary: readiness line, a login and a check, stats, and a clean
//! exit on SIGTERM.

use crate::fake_common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use fake_common::*;
use tapis_agent_tests::fake::Stats;

/// Waits for the child to exit, at most `limit`.
fn wait_with_limit(mut child: Child, limit: Duration) -> ExitStatus {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.expect("wait succeeds"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("fake-tapis did not exit within {limit:?} of SIGTERM");
        }
    }
}

/// Starts `fake-tapis ARGS` and reads its base URL from the readiness line.
/// The fake's process, killed if a failing test never gets to terminate it.
struct FakeProcess(Option<Child>);

impl Drop for FakeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_fake(args: &[&str]) -> (FakeProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-tapis"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fake-tapis starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("reads the first line");
    let base = first
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    (FakeProcess(Some(child)), base)
}

/// SIGTERM, then a clean exit.
fn terminate(mut fake: FakeProcess) {
    let child = fake.0.take().expect("a running fake");
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = wait_with_limit(child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn binary_serves_until_sigterm() {
    let user = format!("{USER}:{PASSWORD}");
    let (child, base) = spawn_fake(&[
        "--token-ttl",
        "60",
        "--user",
        "alice:secret",
        "--user",
        &user,
        "--extra-tms-systems",
        "3",
    ]);
    let http = http();
    let reply = password_login(&http, &base, USER, PASSWORD, None).await;
    reply.expect_message(200, "Token created successfully.");
    assert_eq!(reply.result()["access_token"]["expires_in"], 60);
    let token = reply.result()["access_token"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    password_login(&http, &base, "alice", "secret", None)
        .await
        .expect_message(200, "Token created successfully.");
    check(&http, &base, &token, "stampede3")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    create_tms(&http, &base, &token, "sys0002")
        .await
        .expect_envelope(201, "SYSAPI_CRED_UPDATED");

    let stats: Stats = get_json(&http, &format!("{base}/_fake/stats")).await;
    assert_eq!(stats.calls("create_token"), 2);
    assert_eq!(stats.calls("checkUserCredential"), 1);
    assert_eq!(stats.calls("createUserCredential"), 1);
    terminate(child);
}

#[tokio::test]
async fn strict_flags_make_the_binary_stricter_than_tapis() {
    let (child, base) = spawn_fake(&["--rotate-refresh-tokens", "--enforce-revocation"]);
    let http = http();
    let token = password_login(&http, &base, USER, PASSWORD, None)
        .await
        .result()["access_token"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    send(
        http.post(format!("{base}/v3/oauth2/clients"))
            .header("X-Tapis-Token", &token)
            .json(&serde_json::json!({"client_id": "c", "client_key": "k"})),
    )
    .await
    .expect_message(200, "Client created successfully.");
    let with_client = password_login(&http, &base, USER, PASSWORD, Some(("c", "k"))).await;
    let refresh_token = with_client.result()["refresh_token"]["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let refresh = || {
        send(
            http.post(format!("{base}/v3/oauth2/tokens"))
                .basic_auth("c", Some("k"))
                .json(&serde_json::json!({"grant_type": "refresh_token",
                                          "refresh_token": refresh_token})),
        )
    };
    refresh()
        .await
        .expect_message(200, "Token created successfully.");
    refresh()
        .await
        .expect_message(400, "Invalid refresh_token.");

    send(
        http.post(format!("{base}/v3/oauth2/tokens/revoke"))
            .json(&serde_json::json!({"token": token})),
    )
    .await
    .expect_envelope(200, "Token ");
    check(&http, &base, &token, "ls6")
        .await
        .expect_proxy_revoked();
    terminate(child);
}

#[test]
fn bad_flags_are_usage_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-tapis"))
        .args(["--user", "no-colon"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("NAME:PASSWORD"));
    let help = Command::new(env!("CARGO_BIN_EXE_fake-tapis"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "--listen",
        "--token-ttl",
        "--rotate-refresh-tokens",
        "--enforce-revocation",
        "/_fake/faults",
        "reset_mid_body",
    ] {
        assert!(text.contains(needle), "--help mentions {needle}");
    }
}
