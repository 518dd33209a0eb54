//! Figure 8: many agents on one state directory. Token grants per token
//! lifetime for 1, 5 and 20 agents, with an issuer that rotates refresh
//! tokens and one that does not (Tapis), and a job array's upstream checks.

use crate::fleet::{self, JobArrayReport, Soak, SoakReport};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// Agents per soak.
pub const AGENTS: [usize; 3] = [1, 5, 20];

/// What the figure found.
#[derive(Debug, Clone, Serialize)]
pub struct SharedResults {
    /// The command that produced it.
    pub command: String,
    /// One soak per agent count and rotation mode.
    pub soaks: Vec<SoakReport>,
    /// The job array.
    pub job_array: JobArrayReport,
}

/// Runs the soaks (`secs` each, one after the other) and a job array of
/// `tasks` tasks, 20 at a time.
pub fn run(secs: u64, tasks: usize, command: String) -> anyhow::Result<SharedResults> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut soaks = Vec::new();
    for rotate in [false, true] {
        for agents in AGENTS {
            eprintln!("bench: {agents} agent(s), rotation {rotate}, {secs} s");
            let soak = Soak::new(agents, Duration::from_secs(secs), rotate);
            soaks.push(rt.block_on(fleet::soak(&soak))?);
        }
    }
    eprintln!("bench: job array of {tasks} tasks");
    let job_array = rt.block_on(fleet::job_array(tasks, 20))?;
    Ok(SharedResults {
        command,
        soaks,
        job_array,
    })
}

/// The tables of the figure.
pub fn markdown(r: &SharedResults) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Produced by `{}`.\n", r.command);
    let _ = writeln!(
        s,
        "| agents | refresh tokens | run | token grants | per 3 s lifetime | client calls | failed | expired tokens seen | torn files seen / reads |"
    );
    let _ = writeln!(
        s,
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for k in &r.soaks {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} s | {} | {:.2} | {} | {} | {} | {} / {} |",
            k.agents,
            if k.rotate_refresh_tokens {
                "rotated"
            } else {
                "not rotated (Tapis)"
            },
            k.secs,
            k.grants,
            k.grants_per_lifetime(),
            k.answered,
            k.failures,
            k.expired_tokens,
            k.unparsable,
            k.state_reads
        );
    }
    let j = &r.job_array;
    let _ = writeln!(
        s,
        "\nJob array: {} × `tapis-agent exec -- tapis-cred establish stampede3`, {} at a time, \
         one state directory, no agent running: {} failed, **{} credential check(s)**, {} create(s), \
         {:.1} s in all ({:.0} ms per task at {} in parallel).",
        j.tasks,
        j.at_once,
        j.failed.len(),
        j.checks,
        j.creates,
        j.secs,
        j.secs * 1000.0 * j.at_once as f64 / j.tasks.max(1) as f64,
        j.at_once
    );
    s
}
