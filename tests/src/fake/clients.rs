//! Authenticator OAuth clients: `create_client`, `list_clients`, `get_client`,
//! `delete_client`. Each user sees only the clients they own.

use axum::{
    extract::{Path, Request, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    FakeControl,
    caller::Caller,
    envelope::{ApiError, ApiResult, json_or_form, success},
    jwt::{iso8601, now, random_code},
    state::OauthClient,
};

/// Body of `POST /v3/oauth2/clients` (NewClient in the spec).
#[derive(Deserialize)]
struct NewClient {
    client_id: Option<String>,
    client_key: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    callback_url: Option<String>,
}

/// `POST /v3/oauth2/clients` (`create_client`).
pub(crate) async fn create_client(
    State(fake): State<FakeControl>,
    caller: Caller,
    req: Request,
) -> ApiResult {
    let body: NewClient = json_or_form(req)
        .await
        .map_err(|e| ApiError::bad_request(format!("AUTH_INVALID_REQUEST {e}")))?;
    let client_id = body
        .client_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("client-{}", random_code(12).to_lowercase()));
    let client = OauthClient {
        client_key: body
            .client_key
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| random_code(40)),
        owner: caller.username,
        display_name: body.display_name.unwrap_or_else(|| client_id.clone()),
        description: body.description.unwrap_or_default(),
        callback_url: body.callback_url.unwrap_or_default(),
        create_time: iso8601(now()),
        client_id,
    };
    let mut inner = fake.shared.lock();
    if inner.clients.contains_key(&client.client_id) {
        return Err(ApiError::bad_request(format!(
            "AUTH_CLIENT_EXISTS A client with id {:?} already exists.",
            client.client_id
        )));
    }
    let result = client_json(&client, &caller.tenant);
    inner.clients.insert(client.client_id.clone(), client);
    Ok(success(
        StatusCode::CREATED,
        "AUTH_CLIENT_CREATED Client created successfully.",
        result,
    ))
}

/// `GET /v3/oauth2/clients` (`list_clients`).
pub(crate) async fn list_clients(State(fake): State<FakeControl>, caller: Caller) -> ApiResult {
    let inner = fake.shared.lock();
    let mut owned: Vec<&OauthClient> = inner
        .clients
        .values()
        .filter(|c| c.owner == caller.username)
        .collect();
    owned.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let result: Vec<Value> = owned
        .into_iter()
        .map(|c| client_json(c, &caller.tenant))
        .collect();
    Ok(success(
        StatusCode::OK,
        "AUTH_CLIENTS_LISTED Clients retrieved successfully.",
        Value::Array(result),
    ))
}

/// `GET /v3/oauth2/clients/{client_id}` (`get_client`).
pub(crate) async fn get_client(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> ApiResult {
    let inner = fake.shared.lock();
    let client = owned_client(inner.clients.get(&client_id), &caller, &client_id)?;
    Ok(success(
        StatusCode::OK,
        "AUTH_CLIENT_FOUND Client retrieved successfully.",
        client_json(client, &caller.tenant),
    ))
}

/// `DELETE /v3/oauth2/clients/{client_id}` (`delete_client`).
pub(crate) async fn delete_client(
    State(fake): State<FakeControl>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> ApiResult {
    let mut inner = fake.shared.lock();
    owned_client(inner.clients.get(&client_id), &caller, &client_id)?;
    inner.clients.remove(&client_id);
    Ok(success(
        StatusCode::OK,
        "AUTH_CLIENT_DELETED Client deleted successfully.",
        Value::Null,
    ))
}

/// The client if `caller` owns it; someone else's client is as good as missing.
fn owned_client<'a>(
    client: Option<&'a OauthClient>,
    caller: &Caller,
    client_id: &str,
) -> Result<&'a OauthClient, ApiError> {
    client
        .filter(|c| c.owner == caller.username)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "AUTH_CLIENT_NOT_FOUND No client with id {client_id:?} for this user."
            ))
        })
}

fn client_json(client: &OauthClient, tenant: &str) -> Value {
    json!({
        "client_id": client.client_id,
        "client_key": client.client_key,
        "owner": client.owner,
        "tenant_id": tenant,
        "display_name": client.display_name,
        "description": client.description,
        "callback_url": client.callback_url,
        "create_time": client.create_time,
        "last_update_time": client.create_time,
        "active": true,
    })
}
