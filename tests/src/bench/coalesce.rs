//! Figure 4: many concurrent cold establishes → how many upstream calls.

use super::client::{SyncClient, answer_kind, establish};
use crate::fake::FakeControl;
use anyhow::Context as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Barrier;
use std::time::Instant;

/// Stack size of a client thread.
const CLIENT_STACK: usize = 128 * 1024;

/// One burst.
#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    /// Distinct systems.
    pub systems: usize,
    /// Concurrent clients per system.
    pub clients_per_system: usize,
    /// Upstream `checkUserCredential` calls.
    pub check: u64,
    /// Upstream `getSystem` calls.
    pub get_system: u64,
    /// Upstream `createUserCredential` calls.
    pub create: u64,
    /// Answers by kind (`created`, `present`, `cached`, or the error kind).
    pub answers: BTreeMap<String, u64>,
    /// From the start line until the last answer, milliseconds.
    pub wall_ms: f64,
}

impl Burst {
    /// Upstream calls per system as `check/getSystem/create`.
    pub fn per_system(&self) -> String {
        let n = self.systems.max(1) as f64;
        let f = |v: u64| {
            let x = v as f64 / n;
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.2}")
            }
        };
        format!(
            "{}/{}/{}",
            f(self.check),
            f(self.get_system),
            f(self.create)
        )
    }

    /// Whether every system saw exactly one check, lookup and create, and
    /// every client got a success.
    pub fn exact(&self) -> bool {
        let n = self.systems as u64;
        let failed: u64 = self
            .answers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "created" | "present" | "cached"))
            .map(|(_, v)| v)
            .sum();
        self.check == n && self.get_system == n && self.create == n && failed == 0
    }
}

/// `clients_per_system` clients for each of `systems` (all without
/// credentials at the fake) connect, wait at a common start line, then each
/// sends one establish.
pub fn burst(
    socket: &Path,
    fake: &FakeControl,
    systems: &[String],
    clients_per_system: usize,
) -> anyhow::Result<Burst> {
    let total = systems.len() * clients_per_system;
    let conns = (0..total)
        .map(|_| SyncClient::connect(socket))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("opening the client connections")?;
    fake.reset_stats();
    let start_line = Barrier::new(total + 1);
    let (answers, wall) = std::thread::scope(|scope| {
        let workers: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let req = establish(&[systems[i % systems.len()].clone()], false);
                let start_line = &start_line;
                std::thread::Builder::new()
                    .stack_size(CLIENT_STACK)
                    .spawn_scoped(scope, move || {
                        start_line.wait();
                        c.call(&req)
                    })
            })
            .collect::<Result<_, _>>()?;
        start_line.wait();
        let start = Instant::now();
        let mut answers = BTreeMap::new();
        for w in workers {
            let resp = w
                .join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
            *answers.entry(answer_kind(&resp)).or_insert(0) += 1;
        }
        anyhow::Ok((answers, start.elapsed()))
    })?;
    Ok(Burst {
        systems: systems.len(),
        clients_per_system,
        check: fake.calls("checkUserCredential"),
        get_system: fake.calls("getSystem"),
        create: fake.calls("createUserCredential"),
        answers,
        wall_ms: wall.as_secs_f64() * 1e3,
    })
}
