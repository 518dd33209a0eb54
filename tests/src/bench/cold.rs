//! Figure 6: establish of a missing credential through the agent, against the
//! same three upstream calls made directly with an HTTP client — the
//! difference is what the agent adds.

use super::client::SyncClient;
use super::stats::{Summary, micros};
use crate::fake::{CredFixture, FakeControl};
use anyhow::{Context as _, ensure};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use tapis_agent_proto::{CredState, Outcome};

/// Figure 6 results (microseconds).
#[derive(Debug, Clone, Serialize)]
pub struct ColdResults {
    /// `establish --fresh` of a missing credential through the agent.
    pub agent: Summary,
    /// check (401) + getSystem + create, straight to the fake with reqwest.
    pub direct: Summary,
    /// Per run, agent time minus the direct time of the same iteration.
    pub added: Summary,
    /// Upstream calls per agent run (should be 3).
    pub agent_calls_per_run: f64,
}

/// `runs` interleaved pairs (after a warm-up) on `system`. The direct calls
/// run on their own single-threaded runtime on this thread, the shortest
/// path an HTTP client in another process than the fake can take.
pub fn measure(
    socket: &Path,
    fake: &FakeControl,
    user: &str,
    system: &str,
    runs: usize,
) -> anyhow::Result<ColdResults> {
    // reqwest is built without a bundled crypto provider; plain HTTP needs none,
    // but the builder wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let token = fake.mint_access_token(user, Duration::from_secs(3600));
    let base = fake.base_url();
    let mut client = SyncClient::connect(socket)?;
    let systems = [system.to_owned()];
    let warmup = runs.clamp(1, 20);
    let (mut agent, mut direct, mut added) = (Vec::new(), Vec::new(), Vec::new());
    let mut agent_calls = 0;
    for i in 0..warmup + runs {
        fake.set_credential(user, system, CredFixture::Absent);
        let before = fake.stats().total();
        let start = Instant::now();
        let outcome = client.establish(&systems, true)?;
        let a = start.elapsed();
        let calls = fake.stats().total() - before;
        ensure!(
            matches!(outcome[..], [Outcome::Ok(CredState::Created)]),
            "cold establish: {outcome:?}"
        );

        fake.set_credential(user, system, CredFixture::Absent);
        let start = Instant::now();
        rt.block_on(three_calls(&http, &base, &token, user, system))?;
        let d = start.elapsed();
        if i >= warmup {
            agent_calls += calls;
            agent.push(a);
            direct.push(d);
            added.push(micros(a) - micros(d));
        }
    }
    Ok(ColdResults {
        agent: Summary::of_durations(&agent).context("no runs")?,
        direct: Summary::of_durations(&direct).context("no runs")?,
        added: Summary::of(&added).context("no runs")?,
        agent_calls_per_run: agent_calls as f64 / runs as f64,
    })
}

/// What a client of Tapis must do for a missing credential.
async fn three_calls(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    user: &str,
    system: &str,
) -> anyhow::Result<()> {
    let cred = format!("{base}/v3/systems/credential/{system}/user/{user}");
    let check = http
        .post(format!("{cred}/check"))
        .header("X-Tapis-Token", token)
        .send()
        .await?;
    ensure!(check.status() == 401, "check: {}", check.status());
    check.bytes().await?;
    let sys = http
        .get(format!("{base}/v3/systems/{system}"))
        .header("X-Tapis-Token", token)
        .send()
        .await?;
    ensure!(sys.status().is_success(), "getSystem: {}", sys.status());
    let body: serde_json::Value = sys.json().await?;
    ensure!(body["result"]["defaultAuthnMethod"] == "TMS_KEYS");
    let created = http
        .post(&cred)
        .query(&[("createTmsKeys", "true")])
        .header("X-Tapis-Token", token)
        .json(&serde_json::json!({}))
        .send()
        .await?;
    ensure!(
        created.status().is_success(),
        "create: {}",
        created.status()
    );
    created.bytes().await?;
    Ok(())
}
