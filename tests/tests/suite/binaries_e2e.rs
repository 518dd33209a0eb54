//! The real binaries end to end: `tapis-agent` as a process against the
//! fake, driven by the `tapis-cred` binary; exit codes and output as a user
//! sees them.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis, Fault, FaultKind};
use tapis_agent_tests::harness::{PASSWORD, USER, bin_path, cred_cmd, wait_for_socket};

struct AgentProcess {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl AgentProcess {
    async fn start(base_url: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tb")
            .tempdir_in("/tmp")
            .expect("tmp");
        let socket = dir.path().join("run/agent.sock");
        let child = Command::new(bin_path("tapis-agent"))
            .arg("--socket")
            .arg(&socket)
            .arg("--base-url")
            .arg(base_url)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tapis-agent");
        wait_for_socket(&socket).await;
        Self {
            child,
            socket,
            _dir: dir,
        }
    }

    fn cred(&self, args: &[&str]) -> Output {
        cred_cmd(&self.socket, args, None)
    }

    /// SIGTERM, then the exit status and the agent's log.
    fn terminate(self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let out = self.child.wait_with_output().expect("agent exit");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_flows_and_exit_codes() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let control = fake.control();
    let agent = std::sync::Arc::new(AgentProcess::start(&fake.base_url()).await);
    let a = agent.clone();

    let (not_logged_in, login, est, again, status, json, revoke, pki, nosuch, token) =
        blocking(move || {
            let not_logged_in = a.cred(&["establish", "ls6"]);
            let login = cred_cmd(
                &a.socket,
                &["login", "--username", USER, "--password-stdin"],
                Some(&format!("{PASSWORD}\n")),
            );
            let est = a.cred(&["establish", "stampede3", "ls6", "frontera"]);
            let again = a.cred(&["establish", "stampede3", "ls6", "frontera"]);
            let status = a.cred(&["status"]);
            let json = a.cred(&["--json", "establish", "ls6", "corral.pki"]);
            let revoke = a.cred(&["revoke", "ls6"]);
            let pki = a.cred(&["establish", "corral.pki"]);
            let nosuch = a.cred(&["establish", "nosuch"]);
            let token = a.cred(&["token", "--min-valid", "300"]);
            (
                not_logged_in,
                login,
                est,
                again,
                status,
                json,
                revoke,
                pki,
                nosuch,
                token,
            )
        })
        .await;

    assert_eq!(not_logged_in.status.code(), Some(3), "{not_logged_in:?}");
    assert!(text(&not_logged_in.stderr).contains("tapis-cred login"));

    assert!(login.status.success(), "{}", text(&login.stderr));
    assert!(text(&login.stdout).contains("logged in as testuser"));
    assert!(!text(&login.stdout).contains(PASSWORD) && !text(&login.stderr).contains(PASSWORD));

    assert!(est.status.success(), "{}", text(&est.stderr));
    assert_eq!(
        text(&est.stdout),
        "stampede3: created\nls6: created\nfrontera: created\n"
    );
    assert_eq!(
        text(&again.stdout),
        "stampede3: present (cached)\nls6: present (cached)\nfrontera: present (cached)\n"
    );
    assert!(status.status.success());
    assert!(
        text(&status.stdout).contains("testuser"),
        "{}",
        text(&status.stdout)
    );

    assert_eq!(json.status.code(), Some(6));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["systems"][0]["state"], "present");
    assert_eq!(doc["systems"][1]["error"]["kind"], "not_tms_keys");
    assert_eq!(doc["systems"][1]["error"]["code"], 6);

    assert_eq!(text(&revoke.stdout), "ls6: revoked\n");
    assert_eq!(pki.status.code(), Some(6));
    assert!(
        text(&pki.stderr).contains("PKI_KEYS"),
        "{}",
        text(&pki.stderr)
    );
    assert_eq!(nosuch.status.code(), Some(4), "{}", text(&nosuch.stderr));

    assert!(token.status.success());
    let tok = text(&token.stdout);
    assert_eq!(tok.lines().count(), 1, "only the token on stdout");
    assert_eq!(tok.trim().split('.').count(), 3, "a JWT");

    assert_eq!(control.calls("createUserCredential"), 3);
    let agent = std::sync::Arc::try_unwrap(agent).ok().expect("sole owner");
    let socket = agent.socket.clone();
    let (exit, log) = blocking(move || agent.terminate()).await;
    assert!(exit.success(), "SIGTERM exits 0: {exit:?}\n{log}");
    assert!(!socket.exists(), "socket removed");
    // The debug log saw the whole flow; no secret may be in it.
    assert!(!log.contains(PASSWORD), "password in the log");
    assert!(!log.contains(tok.trim()), "token in the log");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapis_down_and_agent_down_exit_codes() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let agent = AgentProcess::start(&fake.base_url()).await;
    let socket = agent.socket.clone();
    let login = blocking(move || {
        cred_cmd(
            &socket,
            &["login", "--username", USER, "--password-stdin"],
            Some(PASSWORD),
        )
    })
    .await;
    assert!(login.status.success(), "{}", text(&login.stderr));
    fake.inject(Fault::new("checkUserCredential", FaultKind::status(503)).times(50));
    let socket = agent.socket.clone();
    let down = blocking(move || cred_cmd(&socket, &["establish", "stampede3"], None)).await;
    assert_eq!(down.status.code(), Some(8), "{}", text(&down.stderr));
    assert!(text(&down.stderr).contains("503"));
    let socket = agent.socket.clone();
    let (exit, _) = blocking(move || agent.terminate()).await;
    assert!(exit.success());
    let gone = blocking(move || cred_cmd(&socket, &["status"], None)).await;
    assert_eq!(gone.status.code(), Some(7), "{}", text(&gone.stderr));
    fake.shutdown().await;
}
