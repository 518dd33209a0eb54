//! Tenants API: `list_sites`, `list_tenants`, `get_tenant`, no token needed. The
//! official Python SDK reads these at start-up, so every URL points back at the fake.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use super::{
    FakeControl,
    envelope::{ApiError, ApiResult, success},
    state::Shared,
};

const SITE_ID: &str = "tacc";

/// `GET /v3/sites` (`list_sites`).
pub(crate) async fn list_sites(State(fake): State<FakeControl>) -> ApiResult {
    let base = &fake.shared.base_url;
    Ok(success(
        StatusCode::OK,
        "TENANTS_SITES_LISTED Sites retrieved successfully.",
        json!([{
            "site_id": SITE_ID,
            "primary": true,
            "base_url": base,
            // No `${tenant_id}` placeholder: every tenant lives at the fake's address.
            "tenant_base_url_template": base,
            "site_admin_tenant_id": fake.shared.tenant,
            "services": ["systems", "tenants", "tokens", "authenticator", "security"],
        }]),
    ))
}

/// `GET /v3/tenants` (`list_tenants`).
pub(crate) async fn list_tenants(State(fake): State<FakeControl>) -> ApiResult {
    Ok(success(
        StatusCode::OK,
        "TENANTS_LISTED Tenants retrieved successfully.",
        json!([tenant_json(&fake.shared)]),
    ))
}

/// `GET /v3/tenants/{tenant_id}` (`get_tenant`).
pub(crate) async fn get_tenant(
    State(fake): State<FakeControl>,
    Path(tenant_id): Path<String>,
) -> ApiResult {
    if tenant_id != fake.shared.tenant {
        return Err(ApiError::not_found(format!(
            "TENANTS_NOT_FOUND No tenant with id {tenant_id:?}."
        )));
    }
    Ok(success(
        StatusCode::OK,
        "TENANTS_FOUND Tenant retrieved successfully.",
        tenant_json(&fake.shared),
    ))
}

fn tenant_json(shared: &Shared) -> Value {
    let base = &shared.base_url;
    json!({
        "tenant_id": shared.tenant,
        "base_url": base,
        "site_id": SITE_ID,
        // Tokens are HS256-signed; clients read claims without verifying, so this
        // key only has to be present.
        "public_key": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAZmFrZS10YXBpcy1oYXMtbm8tcHVibGljLWtleQ==\n-----END PUBLIC KEY-----",
        "token_service": format!("{base}/v3/tokens"),
        "security_kernel": format!("{base}/v3/security"),
        "authenticator": format!("{base}/v3/oauth2"),
        "owner": "admin@example.org",
        "admin_user": "admin",
        "token_gen_services": ["authenticator", "abaco", "systems"],
        "service_ldap_connection_id": null,
        "user_ldap_connection_id": null,
        "status": "active",
        "description": "Fake Tapis tenant",
        "created_by": "admin",
        "last_updated_by": "admin",
        "create_time": "2024-01-01T00:00:00+00:00",
        "last_update_time": "2024-01-01T00:00:00+00:00",
    })
}
