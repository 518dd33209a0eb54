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
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

/// A running in-process agent.
#[derive(Debug)]
pub struct PrivateAgent {
    socket: PathBuf,
    token_file: PathBuf,
    grace: Duration,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RunError>>,
    // Last: removed after the agent has let go of the socket.
    _dir: PrivateDir,
}

impl PrivateAgent {
    /// Starts an agent with `config` on a fresh socket and waits until it
    /// serves. The token file is the configured one, else one in the
    /// private directory. Other agents may use the same state directory:
    /// the private agent shares the login and the cache with them.
    pub async fn start(mut config: Config) -> Result<Self, StartError> {
        let dir = PrivateDir::create()
            .map_err(|e| StartError(format!("cannot create its directory: {e}")))?;
        let socket = dir.0.join("agent.sock");
        let token_file = config
            .export_token_file
            .get_or_insert_with(|| dir.0.join("tapis_tokens.json"))
            .clone();
        let grace = config.shutdown_grace;
        let (stop, task) = launch(&socket, config).await?;
        tracing::debug!(socket = %socket.display(), "private agent ready");
        Ok(Self {
            socket,
            token_file,
            grace,
            stop: Some(stop),
            task,
            _dir: dir,
        })
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
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", socket.display())))?;
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
            Ok(Err(e)) => StartError(e.to_string()),
            Ok(Ok(())) => StartError("it stopped at once".into()),
            Err(e) => StartError(format!("it failed: {e}")),
        })
    })
    .await
    .unwrap_or_else(|_| {
        Err(StartError(format!(
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

/// A directory only we can enter, removed with everything in it on drop.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// `exec-<pid>-<random>` under the default socket's directory, else
    /// under the fallback runtime directory (`/tmp/tapis-agent-$UID`, or a
    /// private one when another user has made that unusable: see
    /// [`paths::fallback_runtime_dir`]). A batch job can inherit an
    /// `XDG_RUNTIME_DIR` from the login node that does not exist on the
    /// compute node, hence the fallback. Directories left by `exec`s that
    /// were killed go first.
    fn create() -> io::Result<Self> {
        let fallback = paths::fallback_runtime_dir(true)?;
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
        remove_stale(base);
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

/// Removes the `exec-<pid>-<random>` directories in `base` whose `exec`
/// has died (killed with SIGKILL, it could not clean up): they may hold a
/// token file that still works. `base` is a private directory of this host
/// (the runtime directory), so a dead pid is a dead `exec`. Returns how many
/// went.
pub fn remove_stale(base: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("exec-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        // Not followed: only real directories of ours go.
        let ours = entry.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.is_dir() && m.uid() == uid::euid()
        });
        if !ours || pid == std::process::id() || crate::host::process_alive(pid) {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => {
                tracing::info!(dir = %entry.path().display(), "removed the directory of an exec that is gone");
                removed += 1;
            }
            Err(e) => {
                tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove a stale exec directory")
            }
        }
    }
    removed
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot remove the private agent's directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_execs_directories_go() {
        let base = tempfile::tempdir().unwrap();
        let dead = base.path().join(format!("exec-{}-0000abcd", u32::MAX - 1));
        let alive = base
            .path()
            .join(format!("exec-{}-0000abcd", std::process::id()));
        let parent = base.path().join("exec-1-0000abcd");
        let other = base.path().join("agent.sock.d");
        for d in [&dead, &alive, &parent, &other] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(dead.join("tapis_tokens.json"), b"{}").unwrap();
        assert_eq!(remove_stale(base.path()), 1);
        assert!(!dead.exists());
        assert!(alive.exists() && parent.exists() && other.exists());
    }
}
