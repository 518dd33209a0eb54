//! Socket activation the way systemd does it: the socket is bound before
//! the agent runs and handed over as fd 3 with `LISTEN_FDS=1` and
//! `LISTEN_PID` set to the agent's own pid. The agent adopts it, reports
//! `READY=1`, `STATUS=`, `WATCHDOG=1` and `STOPPING=1` on `NOTIFY_SOCKET`,
//! and leaves the socket file to its owner on exit.

use crate::deploy_common;

use deploy_common::{Sandbox, kill, wait_exit, wait_until};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use tapis_agent_proto::Response;
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};
use tapis_agent_tests::harness::{AgentClient, WAIT, bin_path};

/// Starts the agent with `fd` as its fd 3, as systemd would: `LISTEN_PID`
/// must be the agent's pid, which `sh` knows as `$$` and keeps across `exec`.
/// The descriptor travels as the shell's stdin and is moved to 3 by the
/// redirection on `exec`.
fn activate(sandbox: &Sandbox, fd: OwnedFd, notify: &Path, extra_env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new("sh");
    sandbox.apply(&mut cmd);
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@" 3<&0 0</dev/null"#)
        .arg(bin_path("tapis-agent"))
        .arg("--state-dir")
        .arg(sandbox.path("state/agent"))
        .arg("--config")
        .arg(sandbox.path("cfg/none.toml"))
        .env("NOTIFY_SOCKET", notify)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::from(fd))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().expect("spawn the agent")
}

/// Notifications received within `limit`, until `until` is among them.
fn notifications(sock: &UnixDatagram, until: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m: &String| m.lines().any(|l| l == until)) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {until} among {seen:?}");
        sock.set_read_timeout(Some(left)).expect("timeout");
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {until} among {seen:?}: {e}"));
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    seen
}

async fn status_over(socket: &Path) -> Response {
    let mut client = AgentClient::connect(socket).await;
    client.call(tapis_agent_proto::Request::Status).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_socket_and_notifies_like_under_systemd() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let sandbox = Sandbox::new(&fake.base_url());
    let socket = sandbox.path("run/agent.sock");
    let listener = UnixListener::bind(&socket).expect("pre-bind");
    let notify = UnixDatagram::bind(sandbox.path("run/notify")).expect("notify socket");
    let child = activate(
        &sandbox,
        OwnedFd::from(listener),
        &sandbox.path("run/notify"),
        &[("WATCHDOG_USEC", "100000")],
    );
    // The socket existed before the agent: connecting needs no waiting.
    let status = status_over(&socket).await;
    assert!(matches!(status, Response::Status(_)), "{status:?}");

    let notify = tokio::task::spawn_blocking(move || {
        let seen = notifications(&notify, "READY=1");
        (notify, seen)
    });
    let (notify, seen) = notify.await.expect("join");
    let ready = seen.iter().find(|m| m.contains("READY=1")).expect("ready");
    assert!(
        ready.contains(&format!(
            "STATUS=serving on {} (from systemd)",
            socket.display()
        )),
        "{ready}"
    );
    let notify = tokio::task::spawn_blocking(move || {
        notifications(&notify, "WATCHDOG=1");
        notify
    })
    .await
    .expect("join");

    assert!(kill(child.id(), "TERM"));
    let ((status, err), seen) = tokio::task::spawn_blocking(move || {
        let seen = notifications(&notify, "STOPPING=1");
        (wait_exit(child), seen)
    })
    .await
    .expect("join");
    assert!(status.success(), "{err}");
    assert!(seen.iter().any(|m| m.contains("STOPPING=1")));
    // systemd owns the socket file: the agent leaves it.
    assert!(socket.exists(), "the adopted socket file was removed");
    fake.shutdown().await;
}

#[test]
fn refuses_an_inherited_socket_that_is_not_a_listening_stream() {
    let sandbox = Sandbox::new("http://127.0.0.1:9");
    let dgram = UnixDatagram::bind(sandbox.path("run/dgram")).expect("datagram");
    let notify = sandbox.path("run/notify");
    let (status, err) = wait_exit(activate(&sandbox, OwnedFd::from(dgram), &notify, &[]));
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("is not a stream socket"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_socket_activate_starts_agent_on_first_connection() {
    let Some(activator) = tapis_agent_tests::needs::tool("systemd-socket-activate") else {
        return;
    };
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let sandbox = Sandbox::new(&fake.base_url());
    let socket = sandbox.path("run/agent.sock");
    let mut cmd = Command::new(activator);
    sandbox.apply(&mut cmd);
    // The activator passes on only the variables named with -E.
    let child = cmd
        .arg("-l")
        .arg(&socket)
        .arg(bin_path("tapis-agent"))
        .arg("--state-dir")
        .arg(sandbox.path("state/agent"))
        .arg("--config")
        .arg(sandbox.path("cfg/none.toml"))
        .arg("--base-url")
        .arg(fake.base_url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn systemd-socket-activate");
    let probe = socket.clone();
    tokio::task::spawn_blocking(move || wait_until("the activation socket", || probe.exists()))
        .await
        .expect("join");
    let status = tokio::time::timeout(WAIT, status_over(&socket))
        .await
        .expect("the activated agent answers");
    assert!(matches!(status, Response::Status(_)), "{status:?}");

    assert!(kill(child.id(), "TERM"));
    let exit = tokio::task::spawn_blocking(move || wait_exit(child))
        .await
        .expect("join");
    assert!(exit.0.success(), "{}", exit.1);
    assert!(exit.1.contains("(from systemd)"), "{}", exit.1);
    fake.shutdown().await;
}
