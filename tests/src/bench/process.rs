//! Figure 1: wall time of whole client processes — `tapis-cred` against a
//! warm agent, a do-nothing binary (the floor: creating a process), and the
//! seed path (Python + tapipy).

use super::seed::Seed;
use super::stats::Summary;
use crate::fake::FakeControl;
use anyhow::{Context as _, ensure};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The systems of the example.
pub const SYSTEMS: [&str; 3] = ["stampede3", "ls6", "frontera"];

/// Figure 1 results (microseconds).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessResults {
    /// The do-nothing binary.
    pub noop: Summary,
    /// `tapis-cred establish stampede3 ls6 frontera`, warm cache.
    pub establish: Summary,
    /// `tapis-cred token`.
    pub token: Summary,
    /// The seed path, when it ran.
    pub seed: Option<Summary>,
    /// tapipy's version, when the seed ran.
    pub tapipy_version: Option<String>,
    /// Why the seed path did not run.
    pub seed_skipped: Option<String>,
    /// Upstream calls per seed run, by operation.
    pub seed_calls_per_run: BTreeMap<String, f64>,
    /// Upstream calls made during all the `tapis-cred` runs.
    pub agent_upstream_calls: u64,
    /// establish median / noop median.
    pub establish_vs_noop: f64,
    /// token median / noop median.
    pub token_vs_noop: f64,
    /// seed median / establish median.
    pub seed_vs_establish: Option<f64>,
}

/// Runs each binary `runs` times, interleaved (after a few warm-up runs), and
/// the seed `seed_runs` times when `seed` is set.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    noop: &Path,
    cred: &Path,
    socket: &Path,
    fake: &FakeControl,
    user: &str,
    runs: usize,
    seed: Result<&Seed, String>,
    seed_runs: usize,
) -> anyhow::Result<ProcessResults> {
    let mut establish_cmd = Command::new(cred);
    establish_cmd
        .arg("--socket")
        .arg(socket)
        .arg("establish")
        .args(SYSTEMS);
    let mut token_cmd = Command::new(cred);
    token_cmd.arg("--socket").arg(socket).arg("token");
    let mut noop_cmd = Command::new(noop);
    for cmd in [&mut establish_cmd, &mut token_cmd, &mut noop_cmd] {
        cmd.env_remove("TAPIS_AGENT_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }

    let before = fake.stats().total();
    let warmup = runs.clamp(1, 5);
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..warmup + runs {
        for (k, cmd) in [&mut noop_cmd, &mut establish_cmd, &mut token_cmd]
            .into_iter()
            .enumerate()
        {
            let took = time_process(cmd)?;
            if i >= warmup {
                samples[k].push(took);
            }
        }
    }
    let agent_upstream_calls = fake.stats().total() - before;
    let [noop, establish, token] = samples.map(|s| Summary::of_durations(&s).expect("runs > 0"));

    let (mut seed_summary, mut tapipy_version, mut seed_skipped) = (None, None, None);
    let mut seed_calls_per_run = BTreeMap::new();
    match seed {
        Err(why) => seed_skipped = Some(why),
        Ok(_) if seed_runs == 0 => seed_skipped = Some("no runs planned in this mode".into()),
        Ok(seed) => {
            let base_url = fake.base_url();
            // One unmeasured run loads the interpreter's files into the page cache.
            seed.run(&base_url, user, &SYSTEMS)?;
            let before = fake.stats();
            let mut times = Vec::with_capacity(seed_runs);
            for _ in 0..seed_runs {
                times.push(seed.run(&base_url, user, &SYSTEMS)?);
            }
            let after = fake.stats();
            for (op, n) in &after.calls {
                let d = n - before.calls(op);
                if d > 0 {
                    seed_calls_per_run.insert(op.clone(), d as f64 / seed_runs as f64);
                }
            }
            seed_summary = Summary::of_durations(&times);
            tapipy_version = Some(seed.tapipy_version.clone());
        }
    }
    Ok(ProcessResults {
        establish_vs_noop: establish.median / noop.median,
        token_vs_noop: token.median / noop.median,
        seed_vs_establish: seed_summary.map(|s| s.median / establish.median),
        noop,
        establish,
        token,
        seed: seed_summary,
        tapipy_version,
        seed_skipped,
        seed_calls_per_run,
        agent_upstream_calls,
    })
}

/// Wall time from spawn to exit. `tapis-cred` bounds its own waits for the
/// agent (`--timeout`), so a blocking wait cannot hang here.
fn time_process(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    let took = start.elapsed();
    ensure!(status.success(), "{cmd:?} failed with {status}");
    Ok(took)
}
