//! `[profiles.NAME]`: one agent process serving two Tapis tenants (two fakes)
//! on two sockets, with separate logins and state; `tapis-cred --profile`
//! picks the socket.

use std::process::{Command, Stdio};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};
use tapis_agent_tests::harness::{PASSWORD, USER, bin_path, cred_cmd, wait_for_socket};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_serves_two_profiles() {
    let first = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let second = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = tempfile::Builder::new()
        .prefix("tp")
        .tempdir_in("/tmp")
        .expect("tmp");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "base_url = \"{}\"\nretries = 1\n\n[profiles.second]\nbase_url = \"{}\"\n",
            first.base_url(),
            second.base_url()
        ),
    )
    .expect("config");
    let socket = dir.path().join("run/agent.sock");
    let profile_socket = dir.path().join("run/profile-second.sock");
    let state = dir.path().join("state");
    let mut agent = Command::new(bin_path("tapis-agent"))
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(&state)
        .arg("--config")
        .arg(&config)
        .env_remove("TAPIS_BASE_URL")
        .env_remove("TAPIS_PROFILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tapis-agent");
    wait_for_socket(&socket).await;
    wait_for_socket(&profile_socket).await;

    let (s, first_url, second_url) = (socket.clone(), first.base_url(), second.base_url());
    blocking(move || {
        let status = |extra: &[&str]| {
            let mut args = extra.to_vec();
            args.extend(["status", "--json"]);
            json(&cred_cmd(&s, &args, None))
        };
        assert_eq!(status(&[])["agent"]["base_url"], first_url.as_str());
        let doc = status(&["--profile", "second"]);
        assert_eq!(doc["agent"]["base_url"], second_url.as_str());
        assert_eq!(doc["login"]["state"], "logged_out");

        // A login through one profile is that profile's alone.
        let login = cred_cmd(
            &s,
            &[
                "--profile",
                "second",
                "login",
                "--username",
                USER,
                "--password-stdin",
            ],
            Some(PASSWORD),
        );
        assert!(login.status.success(), "{login:?}");
        let token = cred_cmd(&s, &["--profile", "second", "token"], None);
        assert!(token.status.success(), "{token:?}");
        assert_eq!(cred_cmd(&s, &["token"], None).status.code(), Some(3));
        let bad = cred_cmd(&s, &["--profile", "../x", "status"], None);
        assert_eq!(bad.status.code(), Some(2), "{bad:?}");

        // doctor checks the profile's agent and the profile's config.
        let doc = json(&cred_cmd(
            &s,
            &["--profile", "second", "doctor", "--json"],
            None,
        ));
        let check = |name: &str| {
            doc["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .cloned()
                .unwrap()
        };
        assert_eq!(check("config")["status"], "pass", "{doc}");
        assert_eq!(check("login")["status"], "pass", "{doc}");
        assert!(
            check("state dir")["detail"]
                .as_str()
                .unwrap()
                .contains("profiles/second"),
            "{doc}"
        );
        let doc = json(&cred_cmd(
            &s,
            &["--profile", "nosuch", "doctor", "--json"],
            None,
        ));
        assert_eq!(doc["checks"][0]["status"], "fail", "{doc}");
        assert!(
            doc["checks"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("no [profiles.nosuch]"),
            "{doc}"
        );
    })
    .await;
    assert_eq!(first.control().calls("create_token"), 0);
    assert!(second.control().calls("create_token") >= 1);
    assert!(state.join("profiles/second/tokens.json").is_file());

    let cfg = config.clone();
    let st = state.clone();
    let show = blocking(move || {
        Command::new(bin_path("tapis-agent"))
            .arg("--config")
            .arg(&cfg)
            .arg("--state-dir")
            .arg(&st)
            .args(["config", "show", "--json", "--profile", "second"])
            .env_remove("TAPIS_BASE_URL")
            .output()
            .expect("config show")
    })
    .await;
    let doc = json(&show);
    assert_eq!(doc["profile"], "second");
    assert_eq!(doc["values"]["base_url"]["source"], "file, line 5");
    assert_eq!(doc["values"]["retries"]["value"], 1);
    assert_eq!(
        doc["values"]["state_dir"]["value"],
        state.join("profiles/second").display().to_string()
    );

    // SIGTERM stops both, and both sockets go away.
    let killed = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = blocking(move || agent.wait().expect("wait")).await;
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists() && !profile_socket.exists());
    first.shutdown().await;
    second.shutdown().await;
}
