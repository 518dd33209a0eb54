//! The `/_fake` control API, for tests and scripts that are not written in Rust.
//! Errors here are plain text; nothing here is counted in the stats.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::json;

use super::{
    FakeControl,
    envelope::json_body,
    faults::Fault,
    jwt::Expiry,
    state::{CredentialEntry, Stats},
};

/// Routes below `/_fake`.
pub(crate) fn routes() -> Router<FakeControl> {
    Router::new()
        .route("/stats", get(stats).delete(reset_stats))
        .route("/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/reset", post(reset))
        .route("/credentials", get(credentials).post(set_credential))
        .route("/device/approve", post(approve_device))
        .route("/revoke_refresh_tokens", post(revoke_refresh_tokens))
        .route("/forbid", post(forbid))
        .route("/unreachable", post(unreachable))
        .route("/propagating", post(propagating))
        .route("/tokens", post(mint_token))
}

type Plain = (StatusCode, String);

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Plain> {
    json_body(body).map_err(|e| (StatusCode::BAD_REQUEST, e))
}

async fn stats(State(fake): State<FakeControl>) -> Json<Stats> {
    Json(fake.stats())
}

async fn reset_stats(State(fake): State<FakeControl>) -> StatusCode {
    fake.reset_stats();
    StatusCode::NO_CONTENT
}

async fn faults(State(fake): State<FakeControl>) -> Json<Vec<Fault>> {
    Json(fake.pending_faults())
}

async fn add_fault(State(fake): State<FakeControl>, body: Bytes) -> Result<StatusCode, Plain> {
    let fault: Fault = json_body(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!(
                "{e}\nexpected {{\"operation\": OPERATION_ID, \"kind\": KIND, \"times\": N, \"system\": ID}} \
                 with KIND one of {{\"status\": 503}}, {{\"status\": 429, \"retry_after\": 1}}, \
                 {{\"status\": 400, \"message\": TEXT}}, \
                 {{\"delay_ms\": 2000}}, {{\"slow_drip_ms\": 50}}, \"drop\", \"reset_mid_body\", \
                 \"html_502\", \"truncated_json\", \"hang\", \"slow_drip\", \"non_json\", \"jwt_refused\""
            ),
        )
    })?;
    fake.inject(fault);
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(fake): State<FakeControl>) -> StatusCode {
    fake.clear_faults();
    StatusCode::NO_CONTENT
}

async fn reset(State(fake): State<FakeControl>) -> StatusCode {
    fake.reset();
    StatusCode::NO_CONTENT
}

async fn credentials(State(fake): State<FakeControl>) -> Json<Vec<CredentialEntry>> {
    Json(fake.credentials())
}

async fn set_credential(State(fake): State<FakeControl>, body: Bytes) -> Result<StatusCode, Plain> {
    let entry: CredentialEntry = parse(&body)?;
    known_system(&fake, &entry.system)?;
    fake.set_credential(&entry.user, &entry.system, entry.state);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Unreachable {
    system: String,
    /// How long each SSH attempt takes to fail; absent or null: reachable again.
    ssh_ms: Option<u64>,
}

/// `{"system": ID, "ssh_ms": N}`: see [`FakeControl::set_unreachable`].
async fn unreachable(State(fake): State<FakeControl>, body: Bytes) -> Result<StatusCode, Plain> {
    let u: Unreachable = parse(&body)?;
    known_system(&fake, &u.system)?;
    fake.set_unreachable(&u.system, u.ssh_ms.map(Duration::from_millis));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Propagating {
    user: String,
    system: String,
    creates: u32,
}

/// `{"user": U, "system": ID, "creates": N}`: see [`FakeControl::set_propagating`].
async fn propagating(State(fake): State<FakeControl>, body: Bytes) -> Result<StatusCode, Plain> {
    let p: Propagating = parse(&body)?;
    known_system(&fake, &p.system)?;
    fake.set_propagating(&p.user, &p.system, p.creates);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Approval {
    user_code: String,
    username: String,
}

async fn approve_device(State(fake): State<FakeControl>, body: Bytes) -> Result<StatusCode, Plain> {
    let approval: Approval = parse(&body)?;
    if fake.approve_device(&approval.user_code, &approval.username) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err((
            StatusCode::NOT_FOUND,
            format!(
                "no pending device code with user code {:?}",
                approval.user_code
            ),
        ))
    }
}

async fn revoke_refresh_tokens(State(fake): State<FakeControl>) -> StatusCode {
    fake.revoke_all_refresh_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Forbid {
    user: String,
    system: String,
    #[serde(default = "yes")]
    forbidden: bool,
}

fn yes() -> bool {
    true
}

async fn forbid(State(fake): State<FakeControl>, body: Bytes) -> Result<StatusCode, Plain> {
    let forbid: Forbid = parse(&body)?;
    known_system(&fake, &forbid.system)?;
    fake.set_forbidden(&forbid.user, &forbid.system, forbid.forbidden);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct MintRequest {
    username: String,
    /// Zero gives a token that is already expired.
    ttl_secs: u64,
}

async fn mint_token(State(fake): State<FakeControl>, body: Bytes) -> Result<Response, Plain> {
    let request: MintRequest = parse(&body)?;
    let ttl = Duration::from_secs(request.ttl_secs);
    let token = fake
        .try_mint(&request.username, Expiry::After(ttl))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "access_token": token })).into_response())
}

/// Catches typos in system ids early.
fn known_system(fake: &FakeControl, system: &str) -> Result<(), Plain> {
    if fake.shared.systems.contains_key(system) {
        Ok(())
    } else {
        Err((StatusCode::NOT_FOUND, format!("unknown system {system:?}")))
    }
}
