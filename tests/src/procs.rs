//! Processes a test started: every test stops what it starts, agents that
//! `tapis-cred` autostarted included (they outlive the command that started
//! them, by design). Such an agent names its socket on its command line,
//! under the test's temp dir: that is how it is found.

use std::path::Path;
use std::time::{Duration, Instant};

/// How long a process asked to stop (SIGTERM) has before SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Pids of this user's processes (this one aside) whose command line
/// mentions `dir`.
pub fn under(dir: &Path) -> Vec<i32> {
    let Some(needle) = dir.to_str().filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
                String::from_utf8_lossy(&cmd)
                    .split('\0')
                    .any(|arg| arg.contains(needle))
            })
        })
        .collect()
}

/// Stops every process [`under`] `dir`: SIGTERM, then SIGKILL for those
/// still there after a few seconds. Returns how many there were.
pub fn stop_under(dir: &Path) -> usize {
    let pids = under(dir);
    for &pid in &pids {
        signal(pid, "TERM");
    }
    let deadline = Instant::now() + STOP_WAIT;
    let alive = |pid: i32| {
        // A zombie (a child not reaped yet) has stopped too.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for &pid in pids.iter().filter(|&&p| alive(p)) {
        signal(pid, "KILL");
    }
    pids.len()
}

/// `kill -SIGNAL PID` (kill(1)); a process gone meanwhile is no error.
fn signal(pid: i32, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status();
}
