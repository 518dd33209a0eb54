//! A private agent for one command: its own socket in a fresh private
//! directory, the user's stored login, stopped and cleaned up afterwards.

use crate::config::Config;
use crate::server::{self, RunError};
use crate::{listener, paths, store, uid};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Longest wait for the agent to lock and load its state.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Why a private agent did not start.
#[derive(Debug)]
pub struct StartError {
    /// What went wrong.
    pub message: String,
    /// Another agent holds the state directory.
    pub state_locked: bool,
}

impl StartError {
    fn new(message: String) -> Self {
        Self {
            message,
            state_locked: false,
        }
    }
}

/// A running in-process agent.
#[derive(Debug)]
pub struct PrivateAgent {
    socket: PathBuf,
    token_file: PathBuf,
    grace: Duration,
    snapshot_of: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RunError>>,
    // Last: removed after the agent has let go of the socket.
    _dir: PrivateDir,
}

impl PrivateAgent {
    /// Starts an agent with `config` on a fresh socket and waits until it
    /// serves. The token file is the configured one, else one in the
    /// private directory.
    ///
    /// When another agent holds the state directory and `snapshot_if_locked`
    /// is set, the agent runs on a copy of that state instead: the other
    /// agent's files are never written twice, and the command still gets
    /// the stored access token (never the refresh token, which only the
    /// owner may rotate). What the copy learns is dropped with it.
    pub async fn start(mut config: Config, snapshot_if_locked: bool) -> Result<Self, StartError> {
        let dir = PrivateDir::create()
            .map_err(|e| StartError::new(format!("cannot create its directory: {e}")))?;
        let socket = dir.0.join("agent.sock");
        let token_file = config
            .export_token_file
            .get_or_insert_with(|| dir.0.join("tapis_tokens.json"))
            .clone();
        let grace = config.shutdown_grace;
        let ((stop, task), snapshot_of) = match launch(&socket, config.clone()).await {
            Err(e) if e.state_locked && snapshot_if_locked => {
                let copy = dir.0.join("state");
                copy_state(&config.state_dir, &copy).map_err(|c| {
                    StartError::new(format!("{}; copying its state failed: {c}", e.message))
                })?;
                tracing::info!(state = %copy.display(), "running on a copy of the state: {}", e.message);
                config.state_dir = copy;
                (launch(&socket, config).await?, Some(e.message))
            }
            other => (other?, None),
        };
        tracing::debug!(socket = %socket.display(), "private agent ready");
        Ok(Self {
            socket,
            token_file,
            grace,
            snapshot_of,
            stop: Some(stop),
            task,
            _dir: dir,
        })
    }

    /// Why the agent runs on a copy of the state, if it does.
    pub fn snapshot_of(&self) -> Option<&str> {
        self.snapshot_of.as_deref()
    }

    /// The agent's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The token file the agent keeps fresh.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// Stops the agent (bounded by its shutdown grace), then removes its
    /// directory.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let limit = self.grace + Duration::from_secs(2);
        match tokio::time::timeout(limit, &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "private agent failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "private agent panicked"),
            Err(_) => {
                tracing::warn!("private agent did not stop in time");
                self.task.abort();
            }
        }
    }
}

type Running = (oneshot::Sender<()>, JoinHandle<Result<(), RunError>>);

/// Binds `socket`, runs the agent on it and waits until it serves.
async fn launch(socket: &Path, config: Config) -> Result<Running, StartError> {
    let listener = listener::bind(socket)
        .map_err(|e| StartError::new(format!("cannot listen on {}: {e}", socket.display())))?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut task = tokio::spawn(server::run_with_ready(
        listener,
        config,
        async {
            let _ = stop_rx.await;
        },
        move || {
            let _ = ready_tx.send(());
        },
    ));
    let started = tokio::time::timeout(START_LIMIT, async {
        if ready_rx.await.is_ok() {
            return Ok(());
        }
        // `ready` was dropped unused: run returned before serving.
        Err(match (&mut task).await {
            Ok(Err(e)) => StartError {
                state_locked: matches!(&e, RunError::State { source, .. }
                    if source.kind() == io::ErrorKind::AddrInUse),
                message: e.to_string(),
            },
            Ok(Ok(())) => StartError::new("it stopped at once".into()),
            Err(e) => StartError::new(format!("it failed: {e}")),
        })
    })
    .await
    .unwrap_or_else(|_| {
        Err(StartError::new(format!(
            "it did not start within {} s",
            START_LIMIT.as_secs()
        )))
    });
    match started {
        Ok(()) => Ok((stop_tx, task)),
        Err(e) => {
            task.abort();
            Err(e)
        }
    }
}

/// Copies the state files (tokens, OAuth client, cache) of `from` into a
/// new private directory `to`. The lock belongs to the running agent, logs
/// are not state, and dot files are another agent's half-written temp files.
fn copy_state(from: &Path, to: &Path) -> io::Result<()> {
    store::ensure_private_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text == "agent.lock" || text.ends_with(".log") || text.starts_with('.') {
            continue;
        }
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(mut bytes) = store::read_private(&entry.path())? {
            if text == "tokens.json" {
                bytes = without_refresh_token(&bytes)?;
            }
            store::write_atomic(&to.join(&name), &bytes)?;
        }
    }
    Ok(())
}

/// The copy must never refresh: Tapis rotates refresh tokens, so a refresh
/// by the copy would invalidate the running agent's login. The copy keeps
/// the access token only and stops being useful when it expires.
fn without_refresh_token(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut tokens: crate::token::Tokens =
        serde_json::from_slice(bytes).map_err(io::Error::other)?;
    tokens.refresh = None;
    tokens.refresh_expires_at = None;
    serde_json::to_vec(&tokens).map_err(io::Error::other)
}

/// A directory only we can enter, removed with everything in it on drop.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// `exec-<pid>-<random>` under the default socket's directory, else
    /// under `/tmp/tapis-agent-$UID`. A batch job can inherit an
    /// `XDG_RUNTIME_DIR` from the login node that does not exist on the
    /// compute node, hence the fallback.
    fn create() -> io::Result<Self> {
        let fallback = PathBuf::from(format!("/tmp/tapis-agent-{}", uid::euid()));
        let preferred = paths::default_socket()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| fallback.clone());
        match Self::create_in(&preferred) {
            Ok(dir) => Ok(dir),
            Err(e) if preferred != fallback => {
                tracing::debug!(dir = %preferred.display(), error = %e, "trying /tmp");
                Self::create_in(&fallback)
            }
            Err(e) => Err(e),
        }
    }

    fn create_in(base: &Path) -> io::Result<Self> {
        store::ensure_private_dir(base)?;
        loop {
            let dir = base.join(format!(
                "exec-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot remove the private agent's directory");
        }
    }
}
