//! Helpers shared by the deployment tests: a sandboxed environment (runtime,
//! state, config and home directories in one temp dir), signals through
//! `kill(1)`, and bounded polling.

#![allow(dead_code)] // each test file uses its own subset

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tapis_agent_tests::harness::{WAIT, bin_path};
use tempfile::TempDir;

/// Variables that would let the host leak into a test: another agent's
/// socket, systemd's view of this process, log settings.
const SCRUBBED: &[&str] = &[
    "TAPIS_AGENT_SOCK",
    "TAPIS_AGENT_AUTOSTART",
    "TAPIS_AGENT_STATE_DIR",
    "TAPIS_BASE_URL",
    "TAPIS_TOKEN_FILE",
    "INVOCATION_ID",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "RUST_LOG",
];

/// A user's directories in one temp dir: `run/` (XDG_RUNTIME_DIR, 0700),
/// `state/`, `cfg/`, `home/`.
pub struct Sandbox {
    pub dir: TempDir,
    pub base_url: String,
}

impl Sandbox {
    /// A sandbox whose agents talk to `base_url`.
    pub fn new(base_url: &str) -> Self {
        // Short: socket paths must fit in 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("td")
            .tempdir_in("/tmp")
            .expect("temp dir");
        for sub in ["run", "state", "cfg", "home"] {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir.path().join(sub))
                .expect("sandbox dir");
        }
        Self {
            dir,
            base_url: base_url.to_owned(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The default socket in this sandbox.
    pub fn default_socket(&self) -> PathBuf {
        self.path("run/tapis-agent/agent.sock")
    }

    /// The agent's default state directory in this sandbox.
    pub fn state_dir(&self) -> PathBuf {
        self.path("state/tapis-agent")
    }

    /// `bin/NAME` of the workspace with this sandbox's environment.
    pub fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(bin_path(name));
        self.apply(&mut cmd);
        cmd
    }

    /// Puts the sandbox's environment on `cmd`; the workspace binaries come
    /// first on PATH, so `tapis-cred` inside `sh -c` is ours.
    pub fn apply(&self, cmd: &mut Command) {
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        let bins = bin_path("tapis-agent")
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(std::iter::once(bins).chain(std::env::split_paths(&path)))
            .expect("PATH");
        cmd.env("PATH", path)
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_CONFIG_HOME", self.path("cfg"))
            .env("TAPIS_BASE_URL", &self.base_url);
    }
}

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

/// `systemd-analyze`, when installed.
pub fn systemd_analyze() -> Option<PathBuf> {
    which("systemd-analyze")
}

/// The first executable `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
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
