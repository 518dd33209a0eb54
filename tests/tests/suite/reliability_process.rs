//! The agent as a process: SIGKILL at random moments never leaves a broken
//! state file, a damaged state file means a clean start with a warning, a
//! second agent on the same socket refuses to run and one on the same state
//! directory shares it.

use crate::reliability_common;

use rand::Rng;
use reliability_common::{AgentPaths, AgentProcess, Client, ask, temp_dir};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tapis_agent_proto::{LoginMethod, LoginState, Request, Response, Secret};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};
use tapis_agent_tests::harness::{PASSWORD, USER};

const STATE_FILES: [&str; 2] = ["tokens.json", "client.json"];
const WAIT: Duration = Duration::from_secs(10);

/// Iterations of the kill loop: 200 by default (well under a minute), more
/// with `TAPIS_AGENT_CRASH_ITERATIONS`.
fn iterations() -> usize {
    std::env::var("TAPIS_AGENT_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// What a look at the state directory found.
#[derive(Debug, Default)]
struct Look {
    logged_in: bool,
    cache_entries: usize,
    temp_files: Vec<String>,
}

/// Every state file present is complete, well-formed and private; temp
/// files (a write cut short) are counted.
fn inspect(state_dir: &Path) -> Look {
    let mut look = Look::default();
    for (name, path) in files(state_dir) {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        if name.ends_with(".tmp") {
            look.temp_files.push(name);
            continue;
        }
        assert!(meta.is_file(), "{name} is not a plain file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name} mode");
        let bytes = std::fs::read(&path).expect("read state file");
        let json = || -> serde_json::Value {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{name} is broken ({e}): {bytes:?}"))
        };
        match name.as_str() {
            "tokens.json" => {
                let v = json();
                assert!(v["generation"].is_u64(), "{v}");
                if !v["login"].is_null() {
                    assert_eq!(v["login"]["username"], USER);
                    assert!(v["login"]["access"].is_string());
                    look.logged_in = true;
                }
            }
            "client.json" => {
                let v = json();
                assert!(v["client_id"].is_string() && v["client_key"].is_string());
            }
            n if n.starts_with("cache/") && n.ends_with(".json") => {
                let v = json();
                assert!(v["system"].is_string() && v["state"].is_string(), "{v}");
                look.cache_entries += 1;
            }
            "cache/epoch" => {}
            n if n.starts_with("locks/") => {}
            other => panic!("unexpected file {other} in the state directory"),
        }
    }
    look
}

/// Every file of the state directory and its `cache/` and `locks/`, by
/// name relative to it.
fn files(state_dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut found = Vec::new();
    for sub in ["", "cache/", "locks/"] {
        let Ok(entries) = std::fs::read_dir(state_dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("dir entry");
            let name = format!("{sub}{}", entry.file_name().to_string_lossy());
            if !matches!(name.as_str(), "cache" | "locks") {
                found.push((name, entry.path()));
            }
        }
    }
    found
}

/// A random mix of what users do, each step on a fresh connection; any
/// step may be cut off by the kill.
async fn workload(socket: std::path::PathBuf, seed: u64) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let systems = [
        "stampede3",
        "ls6",
        "frontera",
        "sys0000",
        "sys0001",
        "sys0002",
    ];
    for _ in 0..20 {
        let pick = |rng: &mut rand::rngs::StdRng| -> Vec<String> {
            let n = rng.random_range(1..=3);
            (0..n)
                .map(|_| systems[rng.random_range(0..systems.len())].to_owned())
                .collect()
        };
        let req = match rng.random_range(0..100) {
            0..20 => Request::Login(LoginMethod::Password {
                username: USER.into(),
                password: Secret::new(PASSWORD),
            }),
            20..45 => Request::Establish {
                systems: pick(&mut rng),
                user: None,
                fresh: true,
            },
            45..60 => Request::Revoke {
                systems: pick(&mut rng),
                user: None,
            },
            60..70 => Request::Check {
                systems: pick(&mut rng),
                user: None,
                fresh: true,
            },
            // A token valid for its whole lifetime: a refresh as soon as
            // the clock has ticked since the last one.
            70..95 => Request::Token {
                min_valid_secs: 3600,
            },
            _ => Request::Logout {
                forget_client: rng.random_bool(0.3),
            },
        };
        if ask(&socket, &req, WAIT).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_leaves_a_broken_state() {
    let _turn = crate::HEAVY.lock().await;
    let n = iterations();
    let fake = FakeTapis::start(FakeConfig {
        extra_tms_systems: 3,
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    let base = fake.base_url();
    let dir = temp_dir("tk");
    let paths = AgentPaths::under(dir.path());
    let mut rng = rand::rng();
    let started = Instant::now();
    let (mut cut_writes, mut restarts_logged_in, mut restarts_with_cache) = (0, 0, 0);
    for i in 0..n {
        let before = inspect(&paths.state_dir);
        let mut agent = AgentProcess::start(&paths, &base, "info").await;
        // The restarted agent loaded what is on disk.
        let Ok(Response::Status(status)) = ask(&agent.socket, &Request::Status, WAIT).await else {
            panic!("iteration {i}: restarted agent does not answer");
        };
        if before.logged_in {
            restarts_logged_in += 1;
            assert!(
                !matches!(status.login, LoginState::LoggedOut),
                "iteration {i}: tokens.json on disk but not loaded:\n{}",
                agent.log_text()
            );
        }
        if before.cache_entries > 0 {
            restarts_with_cache += 1;
        }
        assert_eq!(
            status.systems_total as usize, before.cache_entries,
            "iteration {i}: cache not loaded"
        );
        let log = agent.log_text();
        assert!(
            !log.contains("ignoring"),
            "iteration {i}: a state file was rejected:\n{log}"
        );
        // Temp files of the killed agent are cleared at start.
        let after_start = inspect(&paths.state_dir);
        for t in &before.temp_files {
            assert!(
                !after_start.temp_files.contains(t),
                "iteration {i}: {t} left behind"
            );
        }

        let work = tokio::spawn(workload(agent.socket.clone(), rng.random()));
        // Mostly early (logins, refreshes, token writes), sometimes late
        // enough for establishes and their cache writes.
        let delay = if rng.random_bool(0.7) {
            Duration::from_micros(rng.random_range(0..30_000))
        } else {
            Duration::from_micros(rng.random_range(30_000..150_000))
        };
        tokio::time::sleep(delay).await;
        agent.kill9();
        let _ = work.await;
        let look = inspect(&paths.state_dir);
        if !look.temp_files.is_empty() {
            cut_writes += 1;
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{n} kills in {took:?}: {cut_writes} cut a state write short; \
         {restarts_logged_in} restarts loaded a login, {restarts_with_cache} a cache"
    );
    // The kills landed in the middle of things, not only between them.
    assert!(restarts_logged_in > 0 && restarts_with_cache > 0);

    // A last clean start and stop.
    let mut agent = AgentProcess::start(&paths, &base, "info").await;
    assert!(Client::connect(&agent.socket, WAIT).await.is_ok());
    assert!(agent.terminate().success());
    assert!(inspect(&paths.state_dir).temp_files.is_empty());
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_state_files_mean_a_clean_start_with_a_warning() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("td");
    let paths = AgentPaths::under(dir.path());
    let mut agent = AgentProcess::start(&paths, &fake.base_url(), "info").await;
    let login = Request::Login(LoginMethod::Password {
        username: USER.into(),
        password: Secret::new(PASSWORD),
    });
    assert!(matches!(
        ask(&agent.socket, &login, WAIT).await,
        Ok(Response::LoggedIn { .. })
    ));
    let est = Request::Establish {
        systems: vec!["ls6".into()],
        user: None,
        fresh: false,
    };
    assert!(matches!(
        ask(&agent.socket, &est, WAIT).await,
        Ok(Response::Systems(_))
    ));
    assert!(agent.terminate().success());

    // What a non-atomic writer or a disk fault could leave: a cut-off
    // token file, a garbage cache.
    let tokens = paths.state_dir.join("tokens.json");
    let full = std::fs::read(&tokens).expect("tokens.json");
    std::fs::write(&tokens, &full[..full.len() / 2]).expect("cut");
    let entry = files(&paths.state_dir)
        .into_iter()
        .find(|(name, _)| name.starts_with("cache/") && name.ends_with(".json"))
        .expect("a cache entry")
        .1;
    std::fs::write(&entry, b"\0\0garbage").expect("garbage");
    let mut agent = AgentProcess::start(&paths, &fake.base_url(), "info").await;
    let Ok(Response::Status(status)) = ask(&agent.socket, &Request::Status, WAIT).await else {
        panic!("agent does not answer")
    };
    assert_eq!(status.login, LoginState::LoggedOut, "starts clean");
    assert_eq!(status.systems_total, 0);
    assert!(agent.terminate().success());
    let log = agent.log_text();
    for file in ["tokens.json", "cache/"] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(file) && l.contains("ignoring")),
            "a warning names {file}:\n{log}"
        );
    }
    for file in STATE_FILES {
        let p = paths.state_dir.join(file);
        if p.exists() {
            assert_eq!(
                std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
                0o600
            );
        }
    }
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_socket_refuses_one_on_the_same_state_dir_shares_it() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("t2");
    let paths = AgentPaths::under(dir.path());
    let mut first = AgentProcess::start(&paths, &fake.base_url(), "info").await;

    // Same socket, other state directory.
    let other = AgentPaths {
        state_dir: dir.path().join("state2"),
        log: dir.path().join("second.log"),
        ..paths.clone()
    };
    let second = AgentProcess::spawn(&other, &fake.base_url(), "info");
    let (code, log) = exit_of(second);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("already listening"), "{log}");
    assert!(log.contains(&paths.socket.display().to_string()), "{log}");

    // Same state directory, other socket: it runs, and shares the login.
    let other = AgentPaths {
        socket: dir.path().join("run2/agent.sock"),
        log: dir.path().join("third.log"),
        ..paths.clone()
    };
    let mut third = AgentProcess::start(&other, &fake.base_url(), "info").await;
    let login = Request::Login(LoginMethod::Password {
        username: USER.into(),
        password: Secret::new(PASSWORD),
    });
    assert!(matches!(
        ask(&first.socket, &login, WAIT).await,
        Ok(Response::LoggedIn { .. })
    ));
    let token = Request::Token { min_valid_secs: 60 };
    let Ok(Response::Token(a)) = ask(&first.socket, &token, WAIT).await else {
        panic!("no token from the first agent")
    };
    let Ok(Response::Token(b)) = ask(&third.socket, &token, WAIT).await else {
        panic!("no token from the agent sharing the state directory")
    };
    assert_eq!(a.access_token, b.access_token, "one login, adopted");
    assert_eq!(
        fake.calls("create_token"),
        2,
        "one login: plain, then through the client"
    );
    assert!(third.terminate().success());
    assert!(first.terminate().success());
    fake.shutdown().await;
}

/// Waits (bounded) for a process that should refuse to run.
fn exit_of(mut p: AgentProcess) -> (Option<i32>, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(s) = p.child.try_wait().expect("wait") {
            return (s.code(), p.log_text());
        }
        assert!(Instant::now() < deadline, "second agent keeps running");
        std::thread::sleep(Duration::from_millis(10));
    }
}
