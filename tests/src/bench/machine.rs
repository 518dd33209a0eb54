//! What the benchmark ran on: CPU, kernel, load, build and source revision.

use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// Facts about the machine and the build, recorded with every run.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs (from `/proc/cpuinfo`, else the scheduler's view).
    pub cores: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory in MiB.
    pub mem_total_mib: u64,
    /// 1/5/15-minute load averages when the run started.
    pub load_start: String,
    /// The same when it ended.
    pub load_end: String,
    /// `rustc -V`, when a compiler is on the PATH.
    pub rustc: String,
    /// Build profile of the benchmark and the measured binaries.
    pub profile: String,
    /// Short git revision, `-dirty` when the tree has changes.
    pub git_rev: String,
    /// Start time (UTC, RFC 3339).
    pub started_at: String,
}

impl Machine {
    /// Reads everything but `load_end`.
    pub fn probe(repo: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let processors = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let cores = if processors > 0 {
            processors
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        };
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .or_else(|_| output("uname", &["-r"], None))
            .unwrap_or_else(|_| "unknown".into());
        let mem_total_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb / 1024);
        Machine {
            cores,
            cpu_model,
            kernel,
            mem_total_mib,
            load_start: load_average(),
            load_end: String::new(),
            rustc: output("rustc", &["-V"], None).unwrap_or_else(|_| "unknown".into()),
            profile: if cfg!(debug_assertions) {
                "debug".into()
            } else {
                "release".into()
            },
            git_rev: git_rev(repo),
            started_at: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
        }
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn git_rev(repo: &Path) -> String {
    let Ok(rev) = output("git", &["rev-parse", "--short=12", "HEAD"], Some(repo)) else {
        return "unknown".into();
    };
    match output(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        Some(repo),
    ) {
        Ok(changes) if !changes.is_empty() => format!("{rev}-dirty"),
        _ => rev,
    }
}

fn output(program: &str, args: &[&str], dir: Option<&Path>) -> std::io::Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!("{program} failed")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
