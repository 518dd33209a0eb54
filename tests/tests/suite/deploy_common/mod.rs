//! Helpers shared by the deployment tests: a sandboxed environment (runtime,
//! state, config and home directories in one temp dir), signals through
//! `kill(1)`, and bounded polling.

#![allow(dead_code)] // not every helper is used

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tapis_agent_tests::harness::WAIT;

pub use tapis_agent_tests::sandbox::Sandbox;

/// Sends `signal` (e.g. "TERM") to `pid` with kill(1).
pub fn kill(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether process `pid` exists (and is not a zombie of ours).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Polls `ready` with a short, growing pause until it holds; panics with
/// `what` after [`WAIT`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut pause = Duration::from_millis(2);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The shipped unit files.
pub fn shipped_unit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../systemd")
        .join(name)
}

/// `systemd-analyze` (a test fails without it, unless told to skip: see
/// `tapis_agent_tests::needs::tool`).
pub fn systemd_analyze() -> Option<PathBuf> {
    tapis_agent_tests::needs::tool("systemd-analyze")
}

/// Text of a byte buffer, for assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits (bounded) for `child` to exit and returns its status and stderr.
/// Stderr is drained meanwhile, so a chatty child cannot block on a full pipe.
pub fn wait_exit(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = stderr {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        }
        text
    });
    let mut status = None;
    wait_until("the process to exit", || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    let err = reader.join().expect("stderr reader");
    (status.expect("exit status"), err)
}
