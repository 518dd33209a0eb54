//! A user's environment in one temp dir (runtime, state, config and home
//! directories), for running the real binaries as a new user would.

use crate::harness::bin_path;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::Command;
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
#[derive(Debug)]
pub struct Sandbox {
    /// The temp dir holding everything.
    pub dir: TempDir,
    /// The Tapis the sandbox's agents talk to.
    pub base_url: String,
}

/// The agents started in the sandbox (autostarted by `tapis-cred`, or
/// left by a failed test) stop with it.
impl Drop for Sandbox {
    fn drop(&mut self) {
        crate::procs::stop_under(self.dir.path());
    }
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

    /// `rel` inside the sandbox.
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
