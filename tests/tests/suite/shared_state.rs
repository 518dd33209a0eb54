//! Many agents sharing one state directory, as on an HPC system where the
//! home directory is one filesystem for the login node and every compute
//! node: each keeps a valid token for as long as it runs, they refresh about
//! once per token lifetime between them, whether or not the issuer rotates
//! refresh tokens, agents killed at any moment break nothing, a logout
//! anywhere reaches them all, a failing `flock` falls back to lock files,
//! and a job array shares one credential check.
//!
//! The soaks run 10 s each by default, long enough for five refreshes and
//! a few kills; `TAPIS_AGENT_SOAK_SECS=600` runs them long (RELIABILITY.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tapis_agent::clock::TestClock;
use tapis_agent::store::lock::FlockCall;
use tapis_agent_proto::{ErrorKind, LoginMethod, LoginState, Request, Response, Secret};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};
use tapis_agent_tests::fleet::{Soak, SoakReport, job_array, soak};
use tapis_agent_tests::harness::{AgentClient, PASSWORD, USER, test_config, wait_for_socket};
use tapis_agent_tests::process::{AgentPaths, AgentProcess, ask};

const WAIT: Duration = Duration::from_secs(20);

fn soak_time() -> Duration {
    let secs = std::env::var("TAPIS_AGENT_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// What every soak must show: no failed call, no expired token seen by
/// Tapis, no torn state file, at most two token grants per token lifetime.
fn assert_healthy(r: &SoakReport) {
    eprintln!(
        "{r:#?}\ngrants per token lifetime: {:.2}",
        r.grants_per_lifetime()
    );
    assert_eq!(r.failures, 0, "failed calls: {:#?}", r.described);
    assert_eq!(r.expired_tokens, 0, "Tapis saw expired tokens");
    assert_eq!(r.rejected_tokens, 0, "Tapis refused tokens");
    assert_eq!(r.unparsable, 0, "torn state files");
    // Lower bounds far below what a loaded machine does (reads every 50 ms,
    // a round every 100 ms), to show that the run was not idle.
    assert!(
        r.state_reads as f64 > 2.0 * r.secs,
        "the state files were watched"
    );
    assert!(
        r.answered as f64 > r.secs * r.agents as f64,
        "the clients were busy: {}",
        r.answered
    );
    assert!(r.grants > 0, "tokens were refreshed");
    assert!(
        r.grants_per_lifetime() <= 2.0,
        "{} grants in {:.1} s of {} s tokens",
        r.grants,
        r.secs,
        r.token_ttl_secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_keep_their_tokens_fresh_without_rotation() {
    let r = soak(&Soak::new(20, soak_time(), false))
        .await
        .expect("soak");
    assert_healthy(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_keep_their_tokens_fresh_with_rotation() {
    let r = soak(&Soak::new(20, soak_time(), true)).await.expect("soak");
    assert_healthy(&r);
}

/// Without rotation (the real Tapis), a kill -9 at any moment, a refresh
/// cut short included, loses nothing. With rotation, a kill between
/// Tapis's answer and the write of the new tokens loses the login: the
/// issuer took the old refresh token and the new one died with the process
/// (RELIABILITY.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_killed_at_random_and_restarted_break_nothing() {
    let r = soak(&Soak {
        kill_every: Some(Duration::from_secs(2)),
        ..Soak::new(20, soak_time(), false)
    })
    .await
    .expect("soak");
    assert_healthy(&r);
    // One every 1-3 s, restarts included.
    assert!(
        r.kills as f64 >= r.secs / 5.0,
        "{} kills in {:.0} s",
        r.kills,
        r.secs
    );
}

/// Agents in this process on one state directory, against one fake.
struct InProcess {
    sockets: Vec<PathBuf>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), tapis_agent::RunError>>>,
}

impl InProcess {
    async fn start(n: usize, dir: &Path, base: &str, flock: FlockCall, clock: &TestClock) -> Self {
        let mut me = Self {
            sockets: Vec::new(),
            stops: Vec::new(),
            tasks: Vec::new(),
        };
        for i in 0..n {
            let socket = dir.join(format!("run{i}/agent.sock"));
            let listener = tapis_agent::listener::bind(&socket).expect("bind");
            let mut config = test_config(base, &dir.join("state"));
            config.flock_call = flock;
            config.clock = clock.clock();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            me.tasks
                .push(tokio::spawn(tapis_agent::run(listener, config, async {
                    let _ = rx.await;
                })));
            wait_for_socket(&socket).await;
            me.sockets.push(socket);
            me.stops.push(tx);
        }
        me
    }

    async fn stop(self) {
        for tx in self.stops {
            let _ = tx.send(());
        }
        for task in self.tasks {
            task.await.expect("join").expect("clean stop");
        }
    }
}

/// Waits until no agent has a refresh overdue on `clock`.
async fn caught_up(clients: &mut [AgentClient], clock: &TestClock) {
    let deadline = Instant::now() + WAIT;
    for c in clients {
        loop {
            let Response::Status(s) = c.call(Request::Status).await else {
                panic!("no status")
            };
            match s.login {
                LoginState::LoggedIn {
                    next_refresh_at: Some(at),
                    ..
                } if at <= clock.now() => {}
                _ => break,
            }
            assert!(Instant::now() < deadline, "a refresh never came");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn login() -> Request {
    Request::Login(LoginMethod::Password {
        username: USER.into(),
        password: Secret::new(PASSWORD),
    })
}

/// A `flock` that fails as on NFS without a lock manager: the agents say
/// so, use lock files, and still refresh about once per lifetime, with an
/// issuer that rotates refresh tokens (where a second refresh would fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_flock_falls_back_to_lock_files() {
    fn enolck(_: &std::fs::File) -> std::io::Result<bool> {
        Err(std::io::Error::from_raw_os_error(libc::ENOLCK))
    }
    let clock = TestClock::new();
    let fake = FakeTapis::start(FakeConfig {
        token_ttl: Duration::from_secs(3),
        rotate_refresh_tokens: true,
        clock: clock.clock(),
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    let dir = tempfile::Builder::new()
        .prefix("tn")
        .tempdir_in("/tmp")
        .expect("dir");
    let agents = InProcess::start(5, dir.path(), &fake.base_url(), FlockCall(enolck), &clock).await;
    let mut first = AgentClient::connect(&agents.sockets[0]).await;
    assert!(matches!(
        first.call(login()).await,
        Response::LoggedIn { .. }
    ));
    let grants_before = fake.calls("create_token");
    let started = clock.now_ms();
    // 12 s on the agents' clock, 100 ms at a time (and what real time
    // passes meanwhile); at every step each agent hands out a token.
    let mut clients = Vec::new();
    for socket in &agents.sockets {
        clients.push(AgentClient::connect(socket).await);
    }
    for _ in 0..120 {
        clock.advance(Duration::from_millis(100));
        // The refreshers, woken by the move, catch up before the clock moves
        // on: time runs no faster than a loaded machine can follow.
        caught_up(&mut clients, &clock).await;
        for c in &mut clients {
            let answer = c.call(Request::Token { min_valid_secs: 1 }).await;
            assert!(matches!(answer, Response::Token(_)), "{answer:?}");
        }
    }
    drop(clients);
    let grants = fake.calls("create_token") - grants_before;
    let secs = (clock.now_ms() - started) as f64 / 1000.0;
    // At most two grants per lifetime, between the five of them.
    assert!(
        grants >= 2 && grants as f64 <= 2.0 * secs / 3.0,
        "{grants} grants in {secs:.1} s of 3 s tokens"
    );
    assert_eq!(fake.stats().expired_token, 0);
    for socket in &agents.sockets {
        let Response::Status(s) = AgentClient::connect(socket)
            .await
            .call(Request::Status)
            .await
        else {
            panic!("no status")
        };
        assert_eq!(s.state.lock_method, "lockfile");
        let why = s.state.lock_reason.unwrap_or_default();
        assert!(why.contains("ENOLCK"), "{why}");
    }
    // What status shows, a person sees too.
    let out = tapis_agent_tests::harness::cred_cmd(&agents.sockets[1], &["status"], None);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("locks     lock files ("), "{shown}");
    let out = tapis_agent_tests::harness::cred_cmd(&agents.sockets[1], &["doctor", "--json"], None);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor json");
    let locks = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "locks")
        .expect("a state locks check");
    assert_eq!(locks["status"], "warn", "{locks}");
    assert!(
        locks["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ENOLCK"),
        "{locks}"
    );
    assert!(dir.path().join("state/locks/lockfile-mode").exists());
    agents.stop().await;
    fake.shutdown().await;
}

/// `logout` on one agent: every peer stops handing out tokens within one
/// refresh margin (1 s for 3 s tokens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_anywhere_is_a_logout_everywhere() {
    let fake = FakeTapis::start(FakeConfig {
        token_ttl: Duration::from_secs(3),
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    let dir = tempfile::Builder::new()
        .prefix("to")
        .tempdir_in("/tmp")
        .expect("dir");
    std::fs::write(dir.path().join("config.toml"), "").expect("config");
    let mut agents = Vec::new();
    for i in 0..5 {
        let paths = AgentPaths {
            socket: dir.path().join(format!("run{i}/agent.sock")),
            state_dir: dir.path().join("state"),
            config: dir.path().join("config.toml"),
            log: dir.path().join(format!("agent{i}.log")),
        };
        agents.push(AgentProcess::start(&paths, &fake.base_url(), "info").await);
    }
    let token = Request::Token { min_valid_secs: 1 };
    assert!(matches!(
        ask(&agents[0].socket, &login(), WAIT).await,
        Ok(Response::LoggedIn { .. })
    ));
    for a in &agents {
        assert!(matches!(
            ask(&a.socket, &token, WAIT).await,
            Ok(Response::Token(_))
        ));
    }
    let logout = Request::Logout {
        forget_client: false,
    };
    assert!(matches!(
        ask(&agents[2].socket, &logout, WAIT).await,
        Ok(Response::LoggedOut)
    ));
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for a in &agents {
        loop {
            match ask(&a.socket, &token, WAIT).await {
                Ok(Response::Error(e)) if e.kind == ErrorKind::LoginRequired => break,
                Ok(Response::Token(_)) => {}
                other => panic!("{other:?}"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "a peer kept its login"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slowest = slowest.max(start.elapsed());
    }
    eprintln!("every peer logged out within {slowest:?}");
    // One refresh margin (1 s), and some room for a loaded machine.
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    for a in &mut agents {
        assert!(a.terminate().success());
    }
    fake.shutdown().await;
}

/// `tapis-agent exec -- tapis-cred establish stampede3` as the 200 tasks
/// of a job array, 20 at a time, on one state directory: one credential
/// check between them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_array_shares_one_credential_check() {
    let r = job_array(200, 20).await.expect("job array");
    eprintln!("{r:#?}");
    assert!(r.failed.is_empty(), "{:#?}", r.failed);
    assert_eq!(r.checks, 1, "one check for the whole array");
    assert_eq!(r.creates, 1);
    assert_eq!(r.created_answers, 1);
}
