//! Serving the `[profiles.NAME]` of the config beside the default profile:
//! each is a complete agent (its own token manager, cache and state
//! directory) on its own socket, in the same process and runtime.

use crate::config::effective::Effective;
use crate::{RunError, listener};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The agents of the profiles, running.
#[derive(Debug)]
pub struct Profiles {
    stop: watch::Sender<bool>,
    tasks: Vec<(String, JoinHandle<Result<(), RunError>>)>,
}

impl Profiles {
    /// Binds every profile's socket and starts its agent. A socket that
    /// cannot be bound stops the start-up, like the default socket does.
    pub fn start(profiles: Vec<Effective>) -> std::io::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for p in profiles {
            let name = p.name().unwrap_or_default().to_owned();
            let listener = listener::bind(&p.socket).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "profile {name}: cannot listen on {}: {e}",
                        p.socket.display()
                    ),
                )
            })?;
            tracing::info!(profile = %name, socket = %p.socket.display(), "listening");
            let mut stopped = stopped.clone();
            let task = tokio::spawn(crate::run(listener, p.config, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }));
            tasks.push((name, task));
        }
        Ok(Self { stop, tasks })
    }

    /// Stops every profile's agent and waits for them; the first failure wins.
    pub async fn stop(self) -> Result<(), RunError> {
        let _ = self.stop.send(true);
        let mut result = Ok(());
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(profile = %name, error = %e, "profile agent failed");
                    result = result.and(Err(e));
                }
                Err(e) => tracing::error!(profile = %name, error = %e, "profile agent panicked"),
            }
        }
        result
    }
}
