//! Benchmarks of the agent against the seed path and the physical limits.
//!
//! [`run`] starts a fake Tapis in this process and the real `tapis-agent`
//! binary as a separate process, then measures the seven figures of
//! BENCHMARKS.md in one go, so their ratios come from one machine state.
//! Every loop is bounded in count or time; only loopback TCP and Unix
//! sockets in a temp dir are used.

pub mod agent;
pub mod bins;
pub mod client;
pub mod coalesce;
pub mod cold;
pub mod ipc;
pub mod machine;
pub mod memory;
pub mod process;
pub mod report;
pub mod seed;
pub mod shared;
pub mod stats;
pub mod throughput;

use crate::fake::{CredFixture, FakeConfig, FakeTapis};
use crate::harness::USER;
use agent::{AgentProcess, Memory};
use anyhow::Context as _;
use bins::{BinSize, Bins};
use coalesce::Burst;
use machine::Machine;
use seed::{PythonSource, Seed};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How much of everything to do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `all`, `quick` or `smoke`.
    pub mode: &'static str,
    /// Runs of each client process.
    pub process_runs: usize,
    /// Runs of the seed script.
    pub seed_runs: usize,
    /// Round trips of each IPC request.
    pub ipc_iters: usize,
    /// Concurrent client counts for the throughput figure.
    pub levels: Vec<usize>,
    /// Time per throughput level.
    pub level_time: Duration,
    /// Concurrent cold establishes of one system.
    pub coalesce_one: usize,
    /// Systems in the many-systems burst.
    pub coalesce_systems: usize,
    /// Clients per system in that burst.
    pub coalesce_per_system: usize,
    /// Systems cached for the memory figure.
    pub cached_systems: usize,
    /// Cold establishes for the overhead figure.
    pub cold_runs: usize,
}

impl Plan {
    /// The full run behind BENCHMARKS.md (a few minutes).
    pub fn all() -> Self {
        Plan {
            mode: "all",
            process_runs: 300,
            seed_runs: 20,
            ipc_iters: 20_000,
            levels: vec![1, 8, 64, 256],
            level_time: Duration::from_secs(3),
            coalesce_one: 1000,
            coalesce_systems: 100,
            coalesce_per_system: 10,
            cached_systems: report::bounds::MANY_SYSTEMS,
            cold_runs: 300,
        }
    }

    /// Every figure with fewer runs (well under a minute); CI runs it.
    pub fn quick() -> Self {
        Plan {
            mode: "quick",
            process_runs: 30,
            seed_runs: 3,
            ipc_iters: 3_000,
            level_time: Duration::from_millis(500),
            cached_systems: 1_000,
            cold_runs: 30,
            ..Self::all()
        }
    }

    /// A few of everything: keeps the code path alive in `cargo test`.
    pub fn smoke() -> Self {
        Plan {
            mode: "smoke",
            process_runs: 2,
            seed_runs: 0,
            ipc_iters: 20,
            levels: vec![1, 4],
            level_time: Duration::from_millis(50),
            coalesce_one: 20,
            coalesce_systems: 4,
            coalesce_per_system: 3,
            cached_systems: 40,
            cold_runs: 2,
        }
    }

    /// Shrinks the bursts to what the open-file limit allows: the bench holds
    /// one socket per client and the agent (which inherits the limit) one
    /// per connection. Returns a note when it had to.
    fn fit_open_files(&mut self, limit: usize) -> Option<String> {
        const SPARE: usize = 128;
        let most = limit.saturating_sub(SPARE).max(16);
        let wanted = (self.coalesce_one, self.coalesce_per_system);
        self.coalesce_one = self.coalesce_one.min(most);
        let per_system = most / self.coalesce_systems.max(1);
        self.coalesce_per_system = self.coalesce_per_system.min(per_system.max(1));
        (wanted != (self.coalesce_one, self.coalesce_per_system)).then(|| {
            format!(
                "open-file limit {limit}: bursts cut to {} and {} × {} clients (raise it with ulimit -n)",
                self.coalesce_one, self.coalesce_systems, self.coalesce_per_system
            )
        })
    }

    /// Connections the agent must accept at once.
    fn connections(&self) -> usize {
        let largest = [
            self.coalesce_one,
            self.coalesce_systems * self.coalesce_per_system,
            self.levels.iter().copied().max().unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        (largest + 64).max(512)
    }
}

/// What to run and where the results go.
#[derive(Debug, Clone)]
pub struct Options {
    /// The amounts.
    pub plan: Plan,
    /// The measured binaries.
    pub bins: Bins,
    /// Where Python with tapipy comes from.
    pub python: PythonSource,
    /// The command line to print in the report.
    pub command: String,
}

/// Figure 5.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryResults {
    /// Right after start (not logged in).
    pub started: Memory,
    /// Logged in with 3 systems cached and no clients.
    pub idle: Memory,
    /// Peak RSS during the largest throughput level, bytes.
    pub peak_clients: u64,
    /// Clients in that level.
    pub peak_level: usize,
    /// Whether the peak mark was reset right before that level (else it is
    /// the peak since start).
    pub peak_reset: bool,
    /// Systems cached for `cached`.
    pub cached_systems: usize,
    /// After caching them.
    pub cached: Memory,
    /// The agent restarted on the same state (the cache loaded from disk,
    /// no per-system tasks yet).
    pub restarted: Memory,
    /// How long establishing them took, seconds.
    pub fill_secs: f64,
}

/// Figure 4.
#[derive(Debug, Clone, Serialize)]
pub struct CoalesceResults {
    /// Many clients, one system.
    pub one_system: Burst,
    /// Many clients on each of many systems.
    pub many_systems: Burst,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The command that produced this.
    pub command: String,
    /// The amounts.
    pub plan: Plan,
    /// The machine.
    pub machine: Machine,
    /// The agent's config file during the run.
    pub agent_config: String,
    /// Figure 1.
    pub process: process::ProcessResults,
    /// Figure 2.
    pub ipc: ipc::IpcResults,
    /// Figure 3.
    pub throughput: Vec<throughput::Level>,
    /// Figure 4.
    pub coalescing: CoalesceResults,
    /// Figure 5.
    pub memory: MemoryResults,
    /// Figure 6.
    pub cold: cold::ColdResults,
    /// Figure 7.
    pub sizes: Vec<BinSize>,
    /// The targets and whether they were met.
    pub targets: Vec<report::Target>,
    /// Total time, seconds.
    pub total_secs: f64,
}

/// Runs every figure. Progress goes to stderr.
pub fn run(opts: &Options) -> anyhow::Result<Results> {
    let started = Instant::now();
    let mut plan = opts.plan.clone();
    if let Some(note) = plan.fit_open_files(open_file_limit()) {
        progress(&note);
    }
    let plan = &plan;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut machine = Machine::probe(&repo);
    opts.bins.check()?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-fake")
        .enable_all()
        .build()?;
    let fake_config = FakeConfig {
        extra_tms_systems: plan.cached_systems.max(plan.coalesce_systems + 1),
        ..FakeConfig::default()
    };
    let extra: Vec<String> = fake_config
        .all_systems()
        .into_iter()
        .skip(fake_config.systems.len())
        .map(|s| s.id)
        .collect();
    let fake_server = rt.block_on(FakeTapis::start(fake_config))?;
    let fake = fake_server.control();
    let base_url = fake.base_url();

    let agent_config = format!(
        "# The default (512) is raised so that every burst client is connected at once.\nmax_connections = {}\n",
        plan.connections()
    );
    let mut agent = AgentProcess::start(&opts.bins.agent, &base_url, &agent_config)?;
    let mem_started = agent.memory()?;
    agent.login()?;
    let systems: Vec<String> = process::SYSTEMS.iter().map(|s| s.to_string()).collect();
    agent.client()?.establish(&systems, false)?;
    let mem_idle = agent.memory()?;

    progress("1/7 client processes");
    let work = tempfile::tempdir()?;
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    let token = fake.mint_access_token(USER, Duration::from_secs(2 * 3600));
    let seed = Seed::prepare(&opts.python, work.path(), &token, &expires.to_string())
        .map_err(|e| format!("{e:#}"));
    if let Err(why) = &seed {
        progress(&format!("seed path skipped: {why}"));
    }
    let process = process::measure(
        &opts.bins,
        &agent.socket,
        &fake,
        USER,
        plan.process_runs,
        seed.as_ref().map_err(Clone::clone),
        plan.seed_runs,
    )
    .context("figure 1")?;

    progress("2/7 IPC round trips");
    let ipc = ipc::measure(&agent.socket, &systems[0], plan.ipc_iters).context("figure 2")?;

    progress("3/7 throughput");
    let mut levels = Vec::new();
    let largest = plan.levels.iter().copied().max().unwrap_or(0);
    let mut peak = (0, false);
    for &clients in &plan.levels {
        let reset = clients == largest && agent.reset_peak();
        let level = throughput::level(&agent.socket, &systems[0], clients, plan.level_time)
            .with_context(|| format!("figure 3, {clients} clients"))?;
        if clients == largest {
            peak = (agent.memory()?.hwm, reset);
        }
        levels.push(level);
    }

    progress("6/7 cold path");
    let cold_system = &extra[plan.coalesce_systems];
    let cold = cold::measure(&agent.socket, &fake, USER, cold_system, plan.cold_runs)
        .context("figure 6")?;

    progress("4/7 coalescing");
    let one = "designsafe.storage.default".to_owned();
    let one_system = coalesce::burst(&agent.socket, &fake, &[one], plan.coalesce_one)
        .context("figure 4, one system")?;
    let many_systems = coalesce::burst(
        &agent.socket,
        &fake,
        &extra[..plan.coalesce_systems],
        plan.coalesce_per_system,
    )
    .context("figure 4, many systems")?;

    progress("5/7 memory with many systems cached");
    let fill_systems = &extra[..plan.cached_systems];
    for s in fill_systems {
        // One check call each: the memory figure is about the agent's cache.
        fake.set_credential(USER, s, CredFixture::Present);
    }
    let fill = memory::fill(&agent.socket, fill_systems).context("figure 5")?;
    let cached = agent.memory()?;
    agent.restart().context("figure 5, restart")?;
    let restarted = agent.memory()?;
    let one_cached = agent
        .client()?
        .call(&client::establish(&systems[..1], false))?;
    anyhow::ensure!(
        client::is_cached_present(&one_cached),
        "the restarted agent lost its cache: {one_cached:?}"
    );
    let memory = MemoryResults {
        started: mem_started,
        idle: mem_idle,
        peak_clients: peak.0,
        peak_level: largest,
        peak_reset: peak.1,
        cached_systems: plan.cached_systems,
        cached,
        restarted,
        fill_secs: fill.as_secs_f64(),
    };

    progress("7/7 binary sizes");
    let sizes = bins::sizes(&opts.bins)?;

    drop(agent);
    rt.block_on(fake_server.shutdown());
    machine.load_end = machine::load_average();
    let mut results = Results {
        command: opts.command.clone(),
        plan: plan.clone(),
        machine,
        agent_config,
        process,
        ipc,
        throughput: levels,
        coalescing: CoalesceResults {
            one_system,
            many_systems,
        },
        memory,
        cold,
        sizes,
        targets: Vec::new(),
        total_secs: started.elapsed().as_secs_f64(),
    };
    results.targets = report::targets(&results);
    Ok(results)
}

/// The soft limit on open files, from `/proc/self/limits` (generous when
/// unreadable).
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(usize::MAX)
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_fit_the_open_file_limit() {
        let mut plan = Plan::all();
        assert!(plan.fit_open_files(20_000).is_none());
        assert_eq!((plan.coalesce_one, plan.coalesce_per_system), (1000, 10));
        let note = plan.fit_open_files(1024).expect("a note");
        assert_eq!((plan.coalesce_one, plan.coalesce_per_system), (896, 8));
        assert!(note.contains("1024"), "{note}");
    }
}
