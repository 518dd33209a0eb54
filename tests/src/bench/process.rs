//! Figure 1: wall time of whole client processes — `tapis-cred` against a
//! warm agent, a do-nothing binary (the floor: creating a process), and the
//! seed path (Python + tapipy).

use super::bins::Bins;
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

/// One linkage's figures: the do-nothing binary and the two commands.
#[derive(Debug, Clone, Serialize)]
pub struct Linkage {
    /// The do-nothing binary.
    pub noop: Summary,
    /// `tapis-cred establish stampede3 ls6 frontera`, warm cache.
    pub establish: Summary,
    /// `tapis-cred token`.
    pub token: Summary,
    /// establish median / noop median.
    pub establish_vs_noop: f64,
    /// token median / noop median.
    pub token_vs_noop: f64,
}

/// Figure 1 results (microseconds).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessResults {
    /// Dynamically linked binaries (what `cargo build` makes).
    pub dynamic: Linkage,
    /// Statically linked binaries (`+crt-static`), when they were built.
    #[serde(rename = "static")]
    pub static_: Option<Linkage>,
    /// Which linkage the targets use: the static one when measured, its
    /// do-nothing binary being the cheapest process the machine can start.
    pub targets_use: &'static str,
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
    /// seed median / establish median (of the linkage the targets use).
    pub seed_vs_establish: Option<f64>,
}

impl ProcessResults {
    /// The figures the targets are checked against.
    pub fn for_targets(&self) -> &Linkage {
        self.static_.as_ref().unwrap_or(&self.dynamic)
    }
}

/// Runs each binary `runs` times, interleaved (after a few warm-up runs):
/// noop, establish and token, dynamic and (when built) static; then the
/// seed `seed_runs` times when `seed` is set.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    bins: &Bins,
    socket: &Path,
    fake: &FakeControl,
    user: &str,
    runs: usize,
    seed: Result<&Seed, String>,
    seed_runs: usize,
) -> anyhow::Result<ProcessResults> {
    let commands = |noop: &Path, cred: &Path| {
        let mut establish = Command::new(cred);
        establish
            .arg("--socket")
            .arg(socket)
            .arg("establish")
            .args(SYSTEMS);
        let mut token = Command::new(cred);
        token.arg("--socket").arg(socket).arg("token");
        let mut cmds = [Command::new(noop), establish, token];
        for cmd in &mut cmds {
            cmd.env_remove("TAPIS_AGENT_SOCK")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        cmds
    };
    let mut cmds: Vec<Command> = commands(&bins.noop, &bins.cred).into();
    if bins.has_static() {
        cmds.extend(commands(&bins.noop_static, &bins.cred_static));
    }

    let before = fake.stats().total();
    let warmup = runs.clamp(1, 5);
    let mut samples = vec![Vec::with_capacity(runs); cmds.len()];
    for i in 0..warmup + runs {
        for (k, cmd) in cmds.iter_mut().enumerate() {
            let took = time_process(cmd)?;
            if i >= warmup {
                samples[k].push(took);
            }
        }
    }
    let agent_upstream_calls = fake.stats().total() - before;
    let summaries: Vec<Summary> = samples
        .iter()
        .map(|s| Summary::of_durations(s).expect("runs > 0"))
        .collect();
    let linkage = |s: &[Summary]| Linkage {
        establish_vs_noop: s[1].median / s[0].median,
        token_vs_noop: s[2].median / s[0].median,
        noop: s[0],
        establish: s[1],
        token: s[2],
    };
    let dynamic = linkage(&summaries[..3]);
    let static_ = (summaries.len() == 6).then(|| linkage(&summaries[3..]));

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
    let mut results = ProcessResults {
        targets_use: if static_.is_some() {
            "static"
        } else {
            "dynamic"
        },
        dynamic,
        static_,
        seed: seed_summary,
        tapipy_version,
        seed_skipped,
        seed_calls_per_run,
        agent_upstream_calls,
        seed_vs_establish: None,
    };
    results.seed_vs_establish = results
        .seed
        .as_ref()
        .map(|s| s.median / results.for_targets().establish.median);
    Ok(results)
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
