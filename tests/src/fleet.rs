//! Many agents on one state directory, as batch jobs on a shared home run
//! them: each agent a real `tapis-agent` process with its own socket, all on
//! one state directory, each with a client asking for a token (and using it
//! against Tapis) and an establish in a loop; and the tasks of a job array.
//! Behind `tests/tests/suite/shared_state.rs` and `bench -- shared`.

use crate::fake::{FakeConfig, FakeTapis};
use crate::harness::{PASSWORD, USER, fake_http, output_with_stdin};
use crate::process::{AgentPaths, AgentProcess, CallError, ask};
use crate::sandbox::Sandbox;
use anyhow::{Context as _, ensure};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tapis_agent_proto::{LoginMethod, Outcome, Request, Response, Secret};

/// Longest wait for one answer of an agent.
const CALL_WAIT: Duration = Duration::from_secs(20);
/// Failures described in the report (all are counted).
const DESCRIBED: usize = 10;
/// The agents' settings: short cache TTL so establishes reach Tapis now
/// and then, quick retries.
const CONFIG: &str = "cache_ttl_secs = 2\nrequest_deadline_secs = 15\n\
                      http_timeout_secs = 5\nconnect_timeout_secs = 2\n";

/// What to run.
#[derive(Debug, Clone)]
pub struct Soak {
    /// Agents sharing the state directory.
    pub agents: usize,
    /// How long the clients run.
    pub duration: Duration,
    /// Lifetime of the fake's access tokens.
    pub token_ttl: Duration,
    /// Whether the fake refuses a used refresh token.
    pub rotate_refresh_tokens: bool,
    /// Kill -9 a random agent this often, and restart it.
    pub kill_every: Option<Duration>,
    /// Pause of each client between two rounds.
    pub pause: Duration,
}

impl Soak {
    /// `agents` agents for `duration`, 3 s tokens, no kills.
    pub fn new(agents: usize, duration: Duration, rotate_refresh_tokens: bool) -> Self {
        Self {
            agents,
            duration,
            token_ttl: Duration::from_secs(3),
            rotate_refresh_tokens,
            kill_every: None,
            pause: Duration::from_millis(100),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakReport {
    /// Agents.
    pub agents: usize,
    /// Seconds the clients ran.
    pub secs: f64,
    /// Token lifetime, seconds.
    pub token_ttl_secs: u64,
    /// Whether refresh tokens were rotated.
    pub rotate_refresh_tokens: bool,
    /// Requests answered by a running agent.
    pub answered: u64,
    /// Requests that failed (an error answer, a refused token, no answer
    /// from an agent that was not killed).
    pub failures: u64,
    /// The first few failures.
    pub described: Vec<String>,
    /// Requests that found their agent killed (not failures).
    pub agent_down: u64,
    /// Agents killed with SIGKILL (and restarted).
    pub kills: u64,
    /// Tokens Tapis granted while the clients ran (refreshes, as nobody
    /// logs in then).
    pub grants: u64,
    /// Expired tokens Tapis was shown.
    pub expired_tokens: u64,
    /// Tokens Tapis refused for any reason.
    pub rejected_tokens: u64,
    /// Credential checks Tapis answered.
    pub checks: u64,
    /// Reads of the state files, and how many did not parse.
    pub state_reads: u64,
    /// State files read that were not whole JSON.
    pub unparsable: u64,
    /// Log lines of the agents that say something went wrong (a panic, an
    /// error), the first few.
    pub log_problems: Vec<String>,
}

impl SoakReport {
    /// Token grants per token lifetime.
    pub fn grants_per_lifetime(&self) -> f64 {
        let lifetimes = self.secs / self.token_ttl_secs.max(1) as f64;
        self.grants as f64 / lifetimes.max(1.0)
    }
}

#[derive(Default)]
struct Tally {
    answered: u64,
    failures: u64,
    described: Vec<String>,
    agent_down: u64,
    state_reads: u64,
    unparsable: u64,
}

impl Tally {
    fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.described.len() < DESCRIBED {
            self.described.push(what);
        }
    }
}

type Shared = Arc<Mutex<Tally>>;

fn tally(t: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the soak. Needs the `tapis-agent` binary beside the running one
/// (as `cargo test` and `cargo run --bin bench` build it).
pub async fn soak(soak: &Soak) -> anyhow::Result<SoakReport> {
    let fake = FakeTapis::start(FakeConfig {
        token_ttl: soak.token_ttl,
        rotate_refresh_tokens: soak.rotate_refresh_tokens,
        ..FakeConfig::default()
    })
    .await?;
    let dir = tempfile::Builder::new()
        .prefix("tf")
        .tempdir_in("/tmp")
        .context("temp dir")?;
    std::fs::write(dir.path().join("config.toml"), CONFIG)?;
    let paths: Vec<AgentPaths> = (0..soak.agents).map(|i| paths(dir.path(), i)).collect();
    let mut agents = Vec::new();
    for p in &paths {
        agents.push(AgentProcess::start(p, &fake.base_url(), "info").await);
    }
    let login = Request::Login(LoginMethod::Password {
        username: USER.into(),
        password: Secret::new(PASSWORD),
    });
    let answer = ask(&paths[0].socket, &login, CALL_WAIT).await;
    ensure!(
        matches!(answer, Ok(Response::LoggedIn { .. })),
        "login failed: {answer:?}"
    );
    let before = fake.stats();
    let started = Instant::now();
    let deadline = started + soak.duration;
    let t: Shared = Arc::default();

    let mut tasks = Vec::new();
    for p in &paths {
        let (socket, t, base) = (p.socket.clone(), t.clone(), fake.base_url());
        let (pause, killing) = (soak.pause, soak.kill_every.is_some());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                round(&socket, &base, &t, killing).await;
                tokio::time::sleep(pause).await;
            }
        }));
    }
    tasks.push(tokio::spawn(watch_files(
        dir.path().join("state"),
        t.clone(),
        deadline,
    )));
    let kills = match soak.kill_every {
        Some(every) => {
            kill_and_restart(&mut agents, &paths, &fake.base_url(), every, deadline).await
        }
        None => 0,
    };
    for task in tasks {
        task.await.context("a client task failed")?;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = fake.stats();
    let mut log_problems = Vec::new();
    for (i, agent) in agents.iter_mut().enumerate() {
        agent.terminate();
        // What the agents said went wrong, for the report of a failed soak.
        let text = agent.log_text();
        let bad = text
            .lines()
            .filter(|l| l.contains("panicked") || l.contains("ERROR"))
            .map(|l| format!("agent{i}: {l}"));
        log_problems.extend(bad.take(LOG_PROBLEMS));
    }
    log_problems.truncate(LOG_PROBLEMS);
    fake.shutdown().await;
    let t = std::mem::take(&mut *tally(&t));
    let delta = |op: &str| after.calls(op) - before.calls(op);
    Ok(SoakReport {
        agents: soak.agents,
        secs,
        token_ttl_secs: soak.token_ttl.as_secs(),
        rotate_refresh_tokens: soak.rotate_refresh_tokens,
        answered: t.answered,
        failures: t.failures,
        described: t.described,
        agent_down: t.agent_down,
        kills,
        grants: delta("create_token"),
        expired_tokens: after.expired_token - before.expired_token,
        rejected_tokens: after.rejected_token - before.rejected_token,
        checks: delta("checkUserCredential"),
        state_reads: t.state_reads,
        unparsable: t.unparsable,
        log_problems,
    })
}

/// Most log lines kept in a [`SoakReport`].
const LOG_PROBLEMS: usize = 20;

fn paths(dir: &Path, i: usize) -> AgentPaths {
    AgentPaths {
        socket: dir.join(format!("run{i}/agent.sock")),
        state_dir: dir.join("state"),
        config: dir.join("config.toml"),
        log: dir.join(format!("agent{i}.log")),
    }
}

/// One round of a client: a token, used against Tapis, then an establish.
async fn round(socket: &Path, base: &str, t: &Shared, killing: bool) {
    let failed = |what: String, e: CallError| {
        let mut t = tally(t);
        match e {
            // A killed agent's socket refuses or drops connections.
            CallError::Connect(_) | CallError::Codec(_) if killing => t.agent_down += 1,
            e => t.fail(format!("{what}: no answer ({e:?})")),
        }
    };
    let token = match ask(socket, &Request::Token { min_valid_secs: 1 }, CALL_WAIT).await {
        Ok(Response::Token(g)) => g,
        Ok(other) => return tally(t).fail(format!("token: {other:?}")),
        Err(e) => return failed("token".into(), e),
    };
    tally(t).answered += 1;
    let used = fake_http()
        .get(format!("{base}/v3/systems/stampede3"))
        .header("X-Tapis-Token", token.access_token.expose())
        .send()
        .await
        .map(|r| r.status().as_u16());
    if used.as_ref().ok() != Some(&200) {
        tally(t).fail(format!("the token, used at Tapis: {used:?}"));
    }
    let establish = Request::Establish {
        systems: vec!["stampede3".into()],
        user: None,
        fresh: false,
    };
    match ask(socket, &establish, CALL_WAIT).await {
        Ok(Response::Systems(v)) if v.iter().all(|o| matches!(o.outcome, Outcome::Ok(_))) => {
            tally(t).answered += 1;
        }
        Ok(other) => tally(t).fail(format!("establish: {other:?}")),
        Err(e) => failed("establish".into(), e),
    }
}

/// Reads the state files over and over: each must always be whole JSON.
async fn watch_files(state: PathBuf, t: Shared, deadline: Instant) {
    while Instant::now() < deadline {
        let mut files = vec![state.join("tokens.json"), state.join("client.json")];
        if let Ok(dir) = std::fs::read_dir(state.join("cache")) {
            files.extend(
                dir.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json")),
            );
        }
        for f in files {
            // Gone between the listing and the read is fine (a revoke).
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let whole = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
            let mut t = tally(&t);
            t.state_reads += 1;
            if !whole {
                t.unparsable += 1;
                t.fail(format!("{} is not whole JSON", f.display()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Until `deadline`: every `every` (jittered), SIGKILL a random agent, and
/// restart it a moment later. Returns the number of kills.
async fn kill_and_restart(
    agents: &mut [AgentProcess],
    paths: &[AgentPaths],
    base: &str,
    every: Duration,
    deadline: Instant,
) -> u64 {
    let mut kills = 0;
    loop {
        let wait = every.mul_f64(0.5 + rand::random::<f64>());
        if Instant::now() + wait >= deadline {
            tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
            return kills;
        }
        tokio::time::sleep(wait).await;
        let i = rand::random_range(0..agents.len());
        agents[i].kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
        agents[i] = AgentProcess::start(&paths[i], base, "info").await;
    }
}

/// What a job array did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobArrayReport {
    /// Tasks run.
    pub tasks: usize,
    /// Tasks running at once.
    pub at_once: usize,
    /// Wall time of all tasks, seconds.
    pub secs: f64,
    /// Tasks that did not exit 0, with their stderr.
    pub failed: Vec<String>,
    /// Tasks that said `created`.
    pub created_answers: usize,
    /// Credential checks Tapis answered.
    pub checks: u64,
    /// Credentials Tapis created.
    pub creates: u64,
}

/// `tasks` runs of `tapis-agent exec -- tapis-cred establish stampede3`,
/// `at_once` at a time, in one user's environment (one state directory,
/// no running agent): the tasks of a job array. Logs in first.
pub async fn job_array(tasks: usize, at_once: usize) -> anyhow::Result<JobArrayReport> {
    let fake = FakeTapis::start(FakeConfig::default()).await?;
    let sandbox = Arc::new(Sandbox::new(&fake.base_url()));
    let login = [
        "tapis-cred",
        "login",
        "--username",
        USER,
        "--password-stdin",
    ];
    let s = sandbox.clone();
    let out = tokio::task::spawn_blocking(move || exec_task(&s, &login, Some(PASSWORD))).await??;
    ensure!(
        out.status.success(),
        "login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..at_once)
        .map(|w| {
            let sandbox = sandbox.clone();
            let mine = (w..tasks).step_by(at_once).count();
            tokio::task::spawn_blocking(move || {
                (0..mine)
                    .map(|_| exec_task(&sandbox, &["tapis-cred", "establish", "stampede3"], None))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut report = JobArrayReport {
        tasks,
        at_once,
        ..JobArrayReport::default()
    };
    for w in workers {
        for out in w.await? {
            let out = out?;
            let said = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || !said.starts_with("stampede3: ") {
                report.failed.push(format!(
                    "{}: {said} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            report.created_answers += usize::from(said.contains("created"));
        }
    }
    report.secs = started.elapsed().as_secs_f64();
    report.checks = fake.calls("checkUserCredential");
    report.creates = fake.calls("createUserCredential");
    fake.shutdown().await;
    Ok(report)
}

/// `tapis-agent exec -- ARGS...` in the sandbox, with `stdin` fed in.
fn exec_task(
    sandbox: &Sandbox,
    args: &[&str],
    stdin: Option<&str>,
) -> std::io::Result<std::process::Output> {
    let mut cmd = sandbox.command("tapis-agent");
    cmd.arg("exec")
        .arg("--config")
        .arg(sandbox.path("cfg/none.toml"))
        .arg("--")
        .args(args);
    output_with_stdin(cmd, stdin)
}
