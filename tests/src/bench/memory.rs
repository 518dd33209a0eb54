//! Figure 5's fill step: establish many systems so the agent caches them.

use super::client::SyncClient;
use anyhow::ensure;
use std::path::Path;
use std::time::{Duration, Instant};
use tapis_agent_proto::Outcome;

/// Systems per request (the agent's limit).
const CHUNK: usize = 256;
/// Parallel connections doing the filling.
const FILLERS: usize = 4;

/// Establishes every system in `systems`; returns how long it took.
pub fn fill(socket: &Path, systems: &[String]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let chunks: Vec<&[String]> = systems.chunks(CHUNK).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..FILLERS)
            .map(|w| {
                let mine: Vec<&[String]> =
                    chunks.iter().skip(w).step_by(FILLERS).copied().collect();
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut c = SyncClient::connect(socket)?;
                    for chunk in mine {
                        let outcomes = c.establish(chunk, false)?;
                        ensure!(outcomes.len() == chunk.len(), "short answer");
                        ensure!(outcomes.iter().all(|o| matches!(o, Outcome::Ok(_))));
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a filler thread panicked"))??;
        }
        anyhow::Ok(())
    })?;
    Ok(start.elapsed())
}
