//! Figure 3: cached establishes per second with N concurrent clients, each a
//! thread with its own connection running request after request.

use super::client::{SyncClient, answer_kind, establish, is_cached_present};
use super::stats::{Summary, micros};
use anyhow::Context as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Stack size of a client thread: they only hold a socket and a sample list.
const CLIENT_STACK: usize = 256 * 1024;

/// One concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered from the cache (errors not counted).
    pub requests: u64,
    /// Measured time, seconds.
    pub seconds: f64,
    /// requests / seconds.
    pub req_per_sec: f64,
    /// Answers that were not a cached `present` (e.g. "busy"), by kind.
    pub errors: BTreeMap<String, u64>,
    /// Per-request latency, microseconds.
    pub latency: Summary,
}

/// Runs `clients` connections for `duration`, all started together.
pub fn level(
    socket: &Path,
    system: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Level> {
    let req = establish(&[system.to_owned()], false);
    let conns = (0..clients)
        .map(|_| SyncClient::connect(socket))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("opening the client connections")?;
    let start_line = Barrier::new(clients + 1);
    let (samples, errors, elapsed) = std::thread::scope(|scope| {
        let workers: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let (req, start_line) = (&req, &start_line);
                std::thread::Builder::new()
                    .stack_size(CLIENT_STACK)
                    .spawn_scoped(scope, move || -> anyhow::Result<(Vec<f64>, Vec<String>)> {
                        let mut lat = Vec::with_capacity(4096);
                        let mut errors = Vec::new();
                        start_line.wait();
                        let end = Instant::now() + duration;
                        loop {
                            let t = Instant::now();
                            if t >= end {
                                break;
                            }
                            let resp = c.call(req)?;
                            lat.push(micros(t.elapsed()));
                            if !is_cached_present(&resp) {
                                errors.push(answer_kind(&resp));
                            }
                        }
                        Ok((lat, errors))
                    })
            })
            .collect::<Result<_, _>>()?;
        start_line.wait();
        let start = Instant::now();
        let mut all = Vec::new();
        let mut errors = BTreeMap::new();
        for w in workers {
            let (lat, errs) = w
                .join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
            all.extend(lat);
            for e in errs {
                *errors.entry(e).or_insert(0) += 1;
            }
        }
        anyhow::Ok((all, errors, start.elapsed()))
    })?;
    let requests = samples.len() as u64 - errors.values().sum::<u64>();
    let seconds = elapsed.as_secs_f64();
    Ok(Level {
        clients,
        requests,
        seconds,
        req_per_sec: requests as f64 / seconds,
        errors,
        latency: Summary::of(&samples).context("no request completed")?,
    })
}
