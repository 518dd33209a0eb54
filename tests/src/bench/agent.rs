//! The agent under test: the real `tapis-agent` binary in its own process, on
//! a socket and state directory in a temp dir, against the bench's fake.

use super::client::SyncClient;
use crate::harness::{PASSWORD, USER};
use anyhow::{Context as _, bail, ensure};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tapis_agent_proto::{LoginMethod, Request, Response, Secret};
use tempfile::TempDir;

/// Longest wait for the agent to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running agent process. Killed when dropped.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    dir: TempDir,
    bin: PathBuf,
    base_url: String,
    /// Its socket.
    pub socket: PathBuf,
}

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    /// `VmRSS`, bytes.
    pub rss: u64,
    /// `VmHWM` (peak RSS since start or the last reset), bytes.
    pub hwm: u64,
    /// `RssAnon`: the anonymous part of `rss` (heap, stacks), bytes; the
    /// rest is mapped files (the binary, libc), clean and shareable.
    pub anon: u64,
}

impl AgentProcess {
    /// Starts `bin` against `base_url` with `config_toml` as its config file and
    /// waits until it answers.
    pub fn start(bin: &Path, base_url: &str, config_toml: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tab")
            .tempdir_in("/tmp")
            .context("creating a temp dir")?;
        std::fs::write(dir.path().join("config.toml"), config_toml)
            .context("writing the agent config")?;
        let socket = dir.path().join("run/agent.sock");
        let child = spawn(bin, dir.path(), &socket, base_url)?;
        let mut agent = AgentProcess {
            child,
            dir,
            bin: bin.to_owned(),
            base_url: base_url.to_owned(),
            socket,
        };
        agent.wait_ready()?;
        Ok(agent)
    }

    /// Stops the agent with SIGTERM (it saves its state) and starts it again
    /// on the same socket, state and config.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("running kill")?;
        ensure!(status.success(), "kill -TERM {} failed", self.pid());
        let deadline = Instant::now() + START_TIMEOUT;
        while self.child.try_wait()?.is_none() {
            ensure!(
                Instant::now() < deadline,
                "the agent did not stop within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child = spawn(&self.bin, self.dir.path(), &self.socket, &self.base_url)?;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if SyncClient::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the agent exited with {status}: {}", self.log_tail());
            }
            ensure!(
                Instant::now() < deadline,
                "the agent did not answer within {START_TIMEOUT:?}: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The last lines of the agent's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection that has said hello.
    pub fn client(&self) -> anyhow::Result<SyncClient> {
        SyncClient::connect(&self.socket)
    }

    /// Logs in as the fixture user with the password grant.
    pub fn login(&self) -> anyhow::Result<()> {
        let resp = self.client()?.call(&Request::Login(LoginMethod::Password {
            username: USER.into(),
            password: Secret::new(PASSWORD),
        }))?;
        ensure!(
            matches!(resp, Response::LoggedIn { .. }),
            "login failed: {resp:?}"
        );
        Ok(())
    }

    /// Current and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{path} has no {name}"))?;
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .context("malformed status line")?
                .parse()?;
            Ok(kib * 1024)
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            hwm: field("VmHWM:")?,
            anon: field("RssAnon:")?,
        })
    }

    /// Resets the peak-RSS mark (`VmHWM`) to the current RSS; false when the
    /// kernel refuses.
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }
}

/// Starts `bin` with its files in `dir`; its log goes (appended) to
/// `dir/agent.log`.
fn spawn(bin: &Path, dir: &Path, socket: &Path, base_url: &str) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))?;
    Command::new(bin)
        .arg("--socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--base-url")
        .arg(base_url)
        .env_remove("RUST_LOG")
        .env_remove("TAPIS_AGENT_SOCK")
        .env_remove("TAPIS_BASE_URL")
        .env_remove("TAPIS_AGENT_STATE_DIR")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
