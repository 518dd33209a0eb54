//! The route table: every Tapis route with its operationId from the OpenAPI specs.

use axum::{
    Router,
    extract::State,
    http::{StatusCode, Uri},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get, post},
};

use super::{
    FakeControl, clients, control, credentials,
    envelope::ApiError,
    files,
    instrument::{Operation, instrument},
    oauth2, systems, tenants,
};

/// The whole fake: Tapis routes, `/_fake` control routes, and a JSON 404 for the rest.
pub(crate) fn router(fake: FakeControl) -> Router {
    // Each route carries its own middleware so calls are counted and faulted by
    // operationId. Path parameters named `system` are what faults filter on.
    let op = |name: &'static str, route: MethodRouter<FakeControl>| {
        let operation = Operation {
            fake: fake.clone(),
            name,
        };
        route.layer(from_fn_with_state(operation, instrument))
    };
    let credential = "/v3/systems/credential/{system}/user/{user}";
    Router::new()
        .route(
            "/v3/oauth2/tokens",
            op("create_token", post(oauth2::create_token)),
        )
        .route(
            "/v3/oauth2/tokens/revoke",
            op("revoke_token", post(oauth2::revoke_token)),
        )
        .route(
            "/v3/oauth2/device/code",
            op("generate_device_code", post(oauth2::generate_device_code)),
        )
        .route(
            "/v3/oauth2/clients",
            op("create_client", post(clients::create_client))
                .merge(op("list_clients", get(clients::list_clients))),
        )
        .route(
            "/v3/oauth2/clients/{client_id}",
            op("get_client", get(clients::get_client))
                .merge(op("delete_client", delete(clients::delete_client))),
        )
        .route(
            "/v3/systems/healthcheck",
            op("healthCheck", get(systems::health_check)),
        )
        .route(
            "/v3/systems/readycheck",
            op("readyCheck", get(systems::ready_check)),
        )
        .route(
            "/v3/systems/{system}",
            op("getSystem", get(systems::get_system)),
        )
        .route(
            credential,
            op(
                "createUserCredential",
                post(credentials::create_user_credential),
            )
            .merge(op(
                "removeUserCredential",
                delete(credentials::remove_user_credential),
            )),
        )
        .route(
            &format!("{credential}/check"),
            op(
                "checkUserCredential",
                post(credentials::check_user_credential),
            ),
        )
        .route(
            "/v3/files/ops/{system}/{*path}",
            op("insert", post(files::upload)),
        )
        .route("/v3/sites", op("list_sites", get(tenants::list_sites)))
        .route(
            "/v3/tenants",
            op("list_tenants", get(tenants::list_tenants)),
        )
        .route(
            "/v3/tenants/{tenant_id}",
            op("get_tenant", get(tenants::get_tenant)),
        )
        .nest("/_fake", control::routes())
        .fallback(unmatched)
        .with_state(fake)
}

/// Unknown paths: counted as `unmatched`, so tests notice calls the fake lacks.
async fn unmatched(State(fake): State<FakeControl>, uri: Uri) -> Response {
    fake.shared.count("unmatched");
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("TAPIS_NOT_FOUND No such endpoint: {}", uri.path()),
    )
    .into_response()
}
