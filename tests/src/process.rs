//! The `tapis-agent` binary as a child process, and a protocol client that
//! reports failures instead of panicking: for tests and figures where agents
//! crash, restart, or are many.

use crate::harness::{bin_path, wait_for_socket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tapis_agent_proto::{AsyncConnection, CodecError, HelloError, Request, Response};
use tokio::net::UnixStream;

/// The `tapis-agent` binary running as a child process, logging to a file.
#[derive(Debug)]
pub struct AgentProcess {
    pub child: Child,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
}

/// Where one agent process keeps its things inside a test directory.
#[derive(Debug, Clone)]
pub struct AgentPaths {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl AgentPaths {
    /// The usual layout under `dir`: `run/agent.sock`, `state/`,
    /// `config.toml`, `agent.log`.
    pub fn under(dir: &Path) -> Self {
        Self {
            socket: dir.join("run/agent.sock"),
            state_dir: dir.join("state"),
            config: dir.join("config.toml"),
            log: dir.join("agent.log"),
        }
    }
}

impl AgentProcess {
    /// Spawns the agent without waiting for it.
    pub fn spawn(paths: &AgentPaths, base_url: &str, rust_log: &str) -> Self {
        let log = std::fs::File::create(&paths.log).expect("agent log file");
        let child = Command::new(bin_path("tapis-agent"))
            .arg("--socket")
            .arg(&paths.socket)
            .arg("--base-url")
            .arg(base_url)
            .arg("--state-dir")
            .arg(&paths.state_dir)
            .arg("--config")
            .arg(&paths.config)
            .env("RUST_LOG", rust_log)
            .env_remove("TAPIS_AGENT_SOCK")
            .env_remove("TAPIS_AGENT_STATE_DIR")
            .env_remove("TAPIS_BASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tapis-agent");
        Self {
            child,
            socket: paths.socket.clone(),
            state_dir: paths.state_dir.clone(),
            log: paths.log.clone(),
        }
    }

    /// Spawns the agent and waits until its socket answers.
    pub async fn start(paths: &AgentPaths, base_url: &str, rust_log: &str) -> Self {
        let mut agent = Self::spawn(paths, base_url, rust_log);
        agent.wait_ready().await;
        agent
    }

    /// Waits until the socket accepts connections; panics with the log if
    /// the process exits first.
    pub async fn wait_ready(&mut self) {
        let ready = tokio::select! {
            _ = wait_for_socket(&self.socket) => true,
            _ = exited(&mut self.child) => false,
        };
        assert!(ready, "agent exited early:\n{}", self.log_text());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "agent ignores SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident memory of the agent process, KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill9();
        }
    }
}

/// Resolves when the child has exited (polled: std children have no
/// async wait).
async fn exited(child: &mut Child) {
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `VmRSS` of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Why a conversation with the agent failed.
#[derive(Debug)]
pub enum CallError {
    Connect(std::io::Error),
    Codec(CodecError),
    Timeout,
    /// The hello was answered with something else (a "busy" error, say).
    Refused(HelloError),
}

/// A protocol client that returns errors rather than panicking: for
/// clients that race a crash, a shed or a busy agent.
#[derive(Debug)]
pub struct Client {
    pub conn: AsyncConnection<UnixStream>,
}

impl Client {
    /// Connects and exchanges hellos, all within `within`.
    pub async fn connect(socket: &Path, within: Duration) -> Result<Self, CallError> {
        let stream = tokio::time::timeout(within, UnixStream::connect(socket))
            .await
            .map_err(|_| CallError::Timeout)?
            .map_err(CallError::Connect)?;
        let conn =
            tokio::time::timeout(within, AsyncConnection::hello(stream, "reliability", None))
                .await
                .map_err(|_| CallError::Timeout)?
                .map_err(|e| match e {
                    HelloError::Transport(e) => CallError::Codec(e),
                    refused => CallError::Refused(refused),
                })?;
        Ok(Self { conn })
    }

    /// Sends one request and reads its answer within `within`.
    pub async fn call(&mut self, req: &Request, within: Duration) -> Result<Response, CallError> {
        // An agent that sheds this connection answers "busy" and hangs up,
        // perhaps before the request went out: the call reads what it said.
        tokio::time::timeout(within, self.conn.call(req, drop))
            .await
            .map_err(|_| CallError::Timeout)?
            .map_err(CallError::Codec)
    }
}

/// One request on a fresh connection.
pub async fn ask(socket: &Path, req: &Request, within: Duration) -> Result<Response, CallError> {
    Client::connect(socket, within)
        .await?
        .call(req, within)
        .await
}
