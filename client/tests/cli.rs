//! The real `tapis-cred` binary against a canned agent: output, exit codes
//! and what reaches the socket.

mod fake_agent;

use fake_agent::{FakeAgent, Greeting, Seen, cmd, run};
use serde_json::{Value, json};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::mpsc;
use tapis_agent_proto::{
    AgentSettings, CredState, DeviceCode, ErrorKind, ErrorReply, LoginMethod, LoginState, Outcome,
    PROTOCOL_VERSION, Request, Response, Secret, StateDirStatus, StatusInfo, SystemOutcome,
    SystemStatus, TokenGrant,
};

const EXPIRES: i64 = 1_795_456_800; // 2026-11-23 18:00 UTC
const PKI_HINT: &str = "ask the system's owner to switch it to TMS_KEYS";

fn seen(socket: &Path, args: &[&str]) -> Seen {
    run(socket, args, None).into()
}

fn outcome(system: &str, outcome: Outcome, cached: bool) -> SystemOutcome {
    SystemOutcome {
        system: system.into(),
        user: "testuser".into(),
        outcome,
        cached,
    }
}

/// Answers establish/revoke/check with one outcome per requested system:
/// `corral.pki` fails with NotTmsKeys, `stampede3` is cached, others created.
fn systems_agent() -> FakeAgent {
    FakeAgent::start(|req| {
        let systems = match req {
            Request::Establish { systems, .. } | Request::Check { systems, .. } => systems,
            Request::Revoke { systems, .. } => {
                return Response::Systems(
                    systems
                        .iter()
                        .map(|s| outcome(s, Outcome::Ok(CredState::Revoked), false))
                        .collect(),
                );
            }
            other => panic!("unexpected {other:?}"),
        };
        Response::Systems(
            systems
                .iter()
                .map(|s| match s.as_str() {
                    "corral.pki" => outcome(
                        s,
                        Outcome::Err(
                            ErrorReply::new(
                                ErrorKind::NotTmsKeys,
                                "corral.pki uses PKI_KEYS; TMS keys cannot be created",
                            )
                            .with_hint(PKI_HINT),
                        ),
                        false,
                    ),
                    "stampede3" => outcome(s, Outcome::Ok(CredState::Present), true),
                    _ => outcome(s, Outcome::Ok(CredState::Created), false),
                })
                .collect(),
        )
    })
}

#[test]
fn establish_prints_one_line_per_system_and_dedupes() {
    let agent = systems_agent();
    let s = seen(
        agent.path(),
        &["establish", "stampede3", "ls6", "stampede3"],
    );
    assert_eq!(
        (s.code, s.stdout.as_str(), s.stderr.as_str()),
        (0, "stampede3: present (cached)\nls6: created\n", "")
    );
    let requests = agent.requests();
    assert_eq!(
        requests[0],
        Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            client_version: env!("CARGO_PKG_VERSION").into(),
        }
    );
    assert_eq!(
        requests[1..],
        [Request::Establish {
            systems: vec!["stampede3".into(), "ls6".into()],
            user: None,
            fresh: false,
        }]
    );
}

#[test]
fn establish_json() {
    let agent = systems_agent();
    let s = seen(
        agent.path(),
        &["establish", "ls6", "--user", "other", "--fresh", "--json"],
    );
    assert_eq!((s.code, s.stderr.as_str()), (0, ""));
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(
        v,
        json!({"command": "establish", "ok": true, "exit_code": 0, "systems": [
            {"system": "ls6", "user": "testuser", "state": "created", "cached": false,
             "error": null}]})
    );
    assert_eq!(
        agent.calls(),
        [Request::Establish {
            systems: vec!["ls6".into()],
            user: Some("other".into()),
            fresh: true,
        }]
    );
}

#[test]
fn per_system_error_exits_with_its_code_and_hint() {
    let agent = systems_agent();
    let s = seen(agent.path(), &["establish", "corral.pki", "ls6"]);
    assert_eq!(s.code, 6);
    assert_eq!(s.stdout, "ls6: created\n");
    assert_eq!(
        s.stderr,
        format!(
            "tapis-cred: establish corral.pki: corral.pki uses PKI_KEYS; TMS keys cannot be \
             created\n  hint: {PKI_HINT}\n"
        )
    );

    let s = seen(agent.path(), &["--json", "establish", "ls6", "corral.pki"]);
    assert_eq!((s.code, s.stderr.as_str()), (6, ""));
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["exit_code"].clone()),
        (json!(false), json!(6))
    );
    assert_eq!(
        v["systems"][1]["error"],
        json!({"kind": "not_tms_keys", "code": 6,
               "message": "corral.pki uses PKI_KEYS; TMS keys cannot be created",
               "hint": PKI_HINT})
    );
}

#[test]
fn quiet_revoke_prints_nothing() {
    let agent = systems_agent();
    let s = seen(agent.path(), &["revoke", "ls6", "-q"]);
    assert_eq!((s.code, s.stdout.as_str(), s.stderr.as_str()), (0, "", ""));
    let s = seen(agent.path(), &["revoke", "ls6"]);
    assert_eq!(s.stdout, "ls6: revoked\n");
}

#[test]
fn bad_system_id_is_a_usage_error_before_connecting() {
    let agent = systems_agent();
    let s = seen(agent.path(), &["check", "ls6", "no such"]);
    assert_eq!(s.code, 2);
    assert!(
        s.stderr
            .starts_with("tapis-cred: check: invalid system id \"no such\""),
        "{}",
        s.stderr
    );
    assert!(agent.requests().is_empty());
}

fn token_agent() -> FakeAgent {
    FakeAgent::start(|req| match req {
        Request::Token { .. } => Response::Token(TokenGrant {
            access_token: Secret::new("header.payload.signature"),
            expires_at: EXPIRES,
            username: "testuser".into(),
        }),
        Request::Settings => no_settings(),
        other => panic!("unexpected {other:?}"),
    })
}

#[test]
fn token_is_alone_on_stdout() {
    let agent = token_agent();
    let s = seen(agent.path(), &["token", "--min-valid", "300"]);
    assert_eq!(
        (s.code, s.stdout.as_str(), s.stderr.as_str()),
        (0, "header.payload.signature\n", "")
    );
    assert_eq!(
        agent.calls(),
        [Request::Token {
            min_valid_secs: 300
        }]
    );
    assert_eq!(
        agent.requests_behind_hello(),
        [true],
        "the request goes in the same write as the hello"
    );

    let s = seen(agent.path(), &["token", "--json"]);
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(
        v,
        json!({"command": "token", "ok": true, "exit_code": 0,
               "access_token": "header.payload.signature",
               "expires_at": "2026-11-23T18:00:00Z", "expires_at_unix": EXPIRES,
               "username": "testuser", "base_url": "http://127.0.0.1:1"})
    );
}

#[test]
fn closed_stdout_is_a_clean_exit() {
    // The agent holds its answer until the reading end of stdout is closed,
    // so the client's write surely meets a broken pipe.
    let (go, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let agent = FakeAgent::start(move |_| {
        wait.lock().unwrap().recv().unwrap();
        Response::Token(TokenGrant {
            access_token: Secret::new("x".repeat(20_000)),
            expires_at: EXPIRES,
            username: "testuser".into(),
        })
    });
    let mut child = cmd(agent.path(), &["token"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    go.send(()).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
}

#[test]
fn whole_request_error_uses_its_kind() {
    let agent = FakeAgent::start(|_| {
        Response::Error(
            ErrorReply::new(ErrorKind::LoginRequired, "not logged in")
                .with_hint("run: tapis-cred login"),
        )
    });
    let s = seen(agent.path(), &["token"]);
    assert_eq!(s.code, 3);
    assert_eq!(s.stdout, "");
    assert_eq!(
        s.stderr,
        "tapis-cred: not logged in\n  hint: run: tapis-cred login\n"
    );
    let s = seen(agent.path(), &["establish", "ls6", "--json"]);
    assert_eq!((s.code, s.stderr.as_str()), (3, ""));
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(
        v,
        json!({"command": "establish", "ok": false, "exit_code": 3,
               "error": {"kind": "login_required", "code": 3, "message": "not logged in",
                         "hint": "run: tapis-cred login"}})
    );
}

#[test]
fn status_human_and_json() {
    let agent = FakeAgent::start(|req| {
        assert_eq!(req, &Request::Status);
        Response::Status(StatusInfo {
            agent_version: "0.1.0".into(),
            pid: 4242,
            uptime_secs: 3600,
            base_url: "https://designsafe.tapis.io".into(),
            login: LoginState::LoggedIn {
                username: "testuser".into(),
                tenant: "designsafe".into(),
                expires_at: EXPIRES,
                has_refresh_token: true,
                refresh_expires_at: None,
                next_refresh_at: None,
                last_refresh_error: None,
                refresh_problem: None,
            },
            systems: vec![SystemStatus {
                system: "stampede3".into(),
                user: "testuser".into(),
                state: CredState::Present,
                checked_at: EXPIRES - 3600,
            }],
            systems_total: 3,
            state: StateDirStatus {
                dir: "/home/testuser/.local/state/tapis-agent".into(),
                filesystem: None,
                lock_method: "flock".into(),
                lock_reason: None,
            },
        })
    });
    let s = seen(agent.path(), &["status"]);
    assert_eq!((s.code, s.stderr.as_str()), (0, ""));
    for part in [
        "agent     tapis-agent 0.1.0, pid 4242, up 1 h\n",
        "tapis     https://designsafe.tapis.io\n",
        "login     testuser (designsafe)\n",
        "token     valid until 2026-11-23 18:00 UTC",
        "refresh   yes\n",
        "state     /home/testuser/.local/state/tapis-agent\n",
        "locks     flock\n",
        "systems   3 cached\n",
        "  stampede3  testuser  present  checked ",
        "  ... 2 more\n",
    ] {
        assert!(s.stdout.contains(part), "{part:?} not in:\n{}", s.stdout);
    }
    let s = seen(agent.path(), &["status", "--json"]);
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["agent"]["pid"], 4242);
    assert_eq!(v["login"]["state"], "logged_in");
    assert_eq!(v["systems"][0]["checked_at"], "2026-11-23T17:00:00Z");
    assert_eq!(v["systems_total"], 3);
    assert_eq!(v["state_dir"]["lock_method"], "flock");
}

#[test]
fn unreachable_agent_exits_7() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let s = seen(&path, &["status"]);
    assert_eq!(s.code, 7);
    assert_eq!(s.stdout, "");
    assert_eq!(
        s.stderr,
        format!(
            "tapis-cred: cannot reach the agent at {}: no such file\n  hint: start it with: \
             tapis-agent   (or: systemctl --user start tapis-agent.socket)\n",
            path.display()
        )
    );
    let s = seen(&path, &["status", "--json"]);
    assert_eq!((s.code, s.stderr.as_str()), (7, ""));
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "agent_unreachable");
    assert_eq!(v["exit_code"], 7);
}

#[test]
fn socket_comes_from_the_environment_without_the_flag() {
    let agent = token_agent();
    let out = std::process::Command::new(fake_agent::bin())
        .arg("token")
        .env("TAPIS_AGENT_SOCK", agent.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = Seen::from(out);
    assert_eq!(
        (s.code, s.stdout.as_str()),
        (0, "header.payload.signature\n")
    );
}

#[test]
fn protocol_mismatch_exits_7() {
    let agent = FakeAgent::with(Greeting::Version(99), Box::new(|_| unreachable!()));
    let s = seen(agent.path(), &["token"]);
    assert_eq!(s.code, 7);
    assert_eq!(
        s.stderr,
        format!(
            "tapis-cred: agent speaks protocol 99, this client speaks {PROTOCOL_VERSION}: \
             restart the agent or reinstall\n"
        )
    );
    assert!(agent.calls().is_empty(), "no request after a bad hello");
}

#[test]
fn garbage_instead_of_hello_exits_7() {
    let agent = FakeAgent::with(
        Greeting::Raw(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
        Box::new(|_| unreachable!()),
    );
    let s = seen(agent.path(), &["status"]);
    assert_eq!(s.code, 7);
    assert!(s.stderr.starts_with("tapis-cred: "), "{}", s.stderr);
}

#[test]
fn garbage_answer_after_hello_exits_1() {
    let junk = {
        let body = [0xff_u8; 16];
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        bytes
    };
    let agent = FakeAgent::with(Greeting::Normal, Box::new(move |_| junk.clone()));
    let s = seen(agent.path(), &["status"]);
    assert_eq!(s.code, 1);
    assert!(
        s.stderr
            .starts_with("tapis-cred: cannot understand the agent at "),
        "{}",
        s.stderr
    );
}

#[test]
fn agent_hanging_up_mid_request_exits_7() {
    // An empty answer: the fake drops the connection without replying.
    let agent = FakeAgent::with(Greeting::Normal, Box::new(|_| Vec::new()));
    let s = seen(agent.path(), &["logout"]);
    assert_eq!(s.code, 7);
    assert!(s.stderr.contains("lost the agent at"), "{}", s.stderr);
}

fn login_agent() -> FakeAgent {
    FakeAgent::start(|req| match req {
        Request::Login(_) => Response::LoggedIn {
            username: "testuser".into(),
            tenant: "designsafe".into(),
            expires_at: EXPIRES,
            has_refresh_token: true,
            refresh_problem: None,
        },
        // No configured default user: the client must have one or ask.
        Request::Settings => no_settings(),
        other => panic!("unexpected {other:?}"),
    })
}

/// The settings of an agent with nothing configured.
fn no_settings() -> Response {
    Response::Settings(AgentSettings {
        base_url: "http://127.0.0.1:1".into(),
        tenant: None,
        username: None,
        config_file: None,
        state_dir: "/nonexistent".into(),
        export_token_file: None,
    })
}

const LOGGED_IN: &str = "logged in as testuser (designsafe); token valid until \
                         2026-11-23 18:00 UTC; refresh: yes\n";

#[test]
fn login_with_password_on_stdin() {
    let password = "correct horse battery staple ";
    let agent = login_agent();
    for extra in [&[][..], &["-v"], &["--json", "-v"]] {
        let mut args = vec!["login", "--username", "testuser", "--password-stdin"];
        args.extend_from_slice(extra);
        let s: Seen = run(agent.path(), &args, Some(&format!("{password}\n"))).into();
        assert_eq!(s.code, 0, "{}", s.stderr);
        assert!(!s.stdout.contains("horse") && !s.stderr.contains("horse"));
    }
    let s: Seen = run(
        agent.path(),
        &["login", "--username", "testuser", "--password-stdin"],
        Some(&format!("{password}\n")),
    )
    .into();
    assert_eq!((s.stdout.as_str(), s.stderr.as_str()), (LOGGED_IN, ""));
    let behind = agent.requests_behind_hello();
    assert!(
        !behind.is_empty() && behind.iter().all(|b| !b),
        "a password waits for the agent's hello: {behind:?}"
    );
    for call in agent.calls() {
        assert_eq!(
            call,
            Request::Login(LoginMethod::Password {
                username: "testuser".into(),
                password: Secret::new(password),
            })
        );
    }
}

#[test]
fn login_without_any_source_exits_3() {
    let agent = login_agent();
    let s = seen(agent.path(), &["login", "--username", "testuser"]);
    assert_eq!(s.code, 3);
    assert_eq!(
        s.stderr,
        "tapis-cred: login: no password source: stdin is not a terminal\n  hint: in Python \
         or a notebook: tapis_agent.login(); in a script: tapis-cred login --username U \
         --password-stdin (or --password-file PATH); in a browser: tapis-cred login --device\n"
    );
    let s: Seen = run(agent.path(), &["login", "--password-stdin"], Some("pw\n")).into();
    assert_eq!(s.code, 2, "no username and no terminal to ask on");
    assert_eq!(
        agent.calls(),
        [Request::Settings],
        "asked for a default only"
    );
}

#[test]
fn login_with_password_file_refuses_open_modes() {
    let agent = login_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "file-secret\n").unwrap();
    let args = [
        "login",
        "--username",
        "testuser",
        "--password-file",
        file.to_str().unwrap(),
    ];
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let s = seen(agent.path(), &args);
    assert_eq!(s.code, 1);
    assert!(
        s.stderr
            .contains("accessible by group or others (mode 0640)")
    );
    assert!(agent.requests().is_empty());

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = seen(agent.path(), &args);
    assert_eq!((s.code, s.stdout.as_str()), (0, LOGGED_IN));
    assert_eq!(
        agent.calls(),
        [Request::Login(LoginMethod::Password {
            username: "testuser".into(),
            password: Secret::new("file-secret"),
        })]
    );
}

#[test]
fn login_imports_a_token_file() {
    let agent = login_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".tapis_tokens.json");
    std::fs::write(
        &file,
        r#"{"access_token": "imported.jwt.value", "expires_at": "2999-01-01T00:00:00+00:00"}"#,
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The default path is under HOME.
    let out = cmd(agent.path(), &["login", "--import-token-file"])
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = Seen::from(out);
    assert_eq!((s.code, s.stdout.as_str()), (0, LOGGED_IN));
    // The agent reads the file (with the code that writes its export): the
    // client names it, by its absolute path.
    let sent = |path: &Path| {
        Request::Login(LoginMethod::ImportTokenFile {
            path: path.display().to_string(),
        })
    };
    assert_eq!(agent.calls(), [sent(&file)]);

    let out = cmd(
        agent.path(),
        &["login", "--import-token-file", "tokens.json"],
    )
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(Seen::from(out).code, 0);
    assert_eq!(
        agent.calls(),
        [sent(&file), sent(&dir.path().join("tokens.json"))]
    );
}

#[test]
fn device_login_shows_the_code_and_polls() {
    let agent = FakeAgent::start(|req| match req {
        Request::Login(LoginMethod::DeviceStart) => Response::DeviceCode(DeviceCode {
            verification_uri: "https://designsafe.tapis.io/device".into(),
            user_code: "WXYZ-1234".into(),
            expires_in: 60,
            interval: 1,
        }),
        Request::DevicePoll => Response::LoggedIn {
            username: "testuser".into(),
            tenant: "designsafe".into(),
            expires_at: EXPIRES,
            has_refresh_token: true,
            refresh_problem: None,
        },
        other => panic!("unexpected {other:?}"),
    });
    let s = seen(agent.path(), &["login", "--device"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(s.stdout, LOGGED_IN);
    assert_eq!(
        s.stderr,
        "Open https://designsafe.tapis.io/device and enter the code WXYZ-1234\n"
    );
    assert_eq!(
        agent.calls(),
        [
            Request::Login(LoginMethod::DeviceStart),
            Request::DevicePoll
        ]
    );
}

#[test]
fn logout_and_export_make_paths_absolute() {
    let agent = FakeAgent::start(|req| match req {
        Request::Logout { .. } => Response::LoggedOut,
        // Logout asks which token file the agent keeps fresh (none here).
        Request::Settings => no_settings(),
        Request::ExportTokenFile { path } => Response::Exported {
            path: path
                .clone()
                .unwrap_or_else(|| "/home/u/.tapis_tokens.json".into()),
            expires_at: EXPIRES,
        },
        other => panic!("unexpected {other:?}"),
    });
    let s = seen(agent.path(), &["logout", "--forget-client"]);
    assert_eq!((s.code, s.stdout.as_str()), (0, "logged out\n"));

    let dir = tempfile::tempdir().unwrap();
    let out = cmd(agent.path(), &["export-token-file", "tok.json"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = Seen::from(out);
    let expected = dir.path().join("tok.json").to_str().unwrap().to_owned();
    assert_eq!(
        s.stdout,
        format!("wrote {expected} (valid until 2026-11-23 18:00 UTC)\n")
    );
    assert_eq!(
        agent.calls(),
        [
            Request::Settings,
            Request::Logout {
                forget_client: true
            },
            Request::ExportTokenFile {
                path: Some(expected)
            }
        ]
    );
}

#[test]
fn usage_errors_exit_2_also_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let s = seen(&path, &["establish"]);
    assert_eq!((s.code, s.stdout.as_str()), (2, ""));
    let s = seen(&path, &["--json", "establish"]);
    assert_eq!((s.code, s.stderr.as_str()), (2, ""));
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["command"], "establish");
    assert_eq!(v["error"]["kind"], "usage");
}
