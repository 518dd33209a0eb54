//! Authenticator OAuth clients: `create_client`, `list_clients`, `get_client`,
//! `delete_client`, as tapis-project/authenticator, service/controllers.py
//! (`ClientsResource`, `ClientResource`) and service/models.py (`Client`) do them.

use axum::{
    extract::{Path, Query, Request, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    FakeControl,
    caller::AuthnCaller,
    envelope::{ApiError, ApiResult, authn_body, success},
    jwt::{http_date, random_code},
    state::OauthClient,
};

/// Column widths of the `clients` table (models.py, `Client`), in the order
/// of its columns, which is the order Postgres checks them in an INSERT.
const COLUMNS: [(&str, usize); 5] = [
    ("client_id", 80),
    ("client_key", 80),
    ("callback_url", 200),
    ("display_name", 50),
    ("description", 70),
];

/// Body of `POST /v3/oauth2/clients` (NewClient in the spec, which sets no
/// length limits: only the database refuses long values).
#[derive(Deserialize)]
struct NewClient {
    client_id: Option<String>,
    client_key: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    callback_url: Option<String>,
}

/// `Client.generate_client_id`: a Hashids string, used for generated keys too.
fn generated_id() -> String {
    random_code(11)
}

/// `POST /v3/oauth2/clients` (`create_client`): 200, with the defaults of
/// `Client.get_derived_values`.
pub(crate) async fn create_client(
    State(fake): State<FakeControl>,
    AuthnCaller(caller): AuthnCaller,
    req: Request,
) -> ApiResult {
    let body: NewClient = authn_body(req, |b| b).await?;
    let client_id = body.client_id.unwrap_or_else(generated_id);
    let client = OauthClient {
        client_key: body.client_key.unwrap_or_else(generated_id),
        owner: caller.username,
        display_name: body
            .display_name
            .unwrap_or_else(|| client_id.chars().take(50).collect()),
        description: body.description.unwrap_or_default(),
        callback_url: body.callback_url.unwrap_or_default(),
        create_time: fake.shared.now(),
        active: true,
        client_id,
    };
    if let Some(width) = too_long(&client) {
        return Err(ApiError::bad_request(truncation_error(
            &client,
            &caller.tenant,
            width,
        )));
    }
    let mut inner = fake.shared.lock();
    // Ids are unique across every tenant, and a deleted client keeps its id.
    if inner.clients.contains_key(&client.client_id) {
        return Err(ApiError::bad_request(format!(
            "Invalid POST data; This change would violate uniqueness constraints. \
             Details: Key (client_id)=({}) already exists.",
            client.client_id
        )));
    }
    let result = client_json(&client, &caller.tenant);
    inner.clients.insert(client.client_id.clone(), client);
    Ok(success(
        StatusCode::OK,
        "Client created successfully.",
        result,
    ))
}

/// The width of the first column `client` does not fit in (characters, as
/// Postgres counts `character varying(n)`).
fn too_long(client: &OauthClient) -> Option<usize> {
    let values = [
        &client.client_id,
        &client.client_key,
        &client.callback_url,
        &client.display_name,
        &client.description,
    ];
    COLUMNS
        .iter()
        .zip(values)
        .find(|((_, width), value)| value.chars().count() > *width)
        .map(|((_, width), _)| *width)
}

/// What the Authenticator answers when the database refuses a long value:
/// `ClientsResource.post` catches the SQLAlchemy error and
/// tapisservice `get_message_from_sql_exc` finds no `DETAIL:` in it, so the
/// whole SQLAlchemy message comes back, statement parameters (the client key
/// among them) included. The text follows SQLAlchemy 1.4 and psycopg2 2.8, the
/// versions tapipy-tapisservice's requirements-flask.txt pins.
fn truncation_error(client: &OauthClient, tenant: &str, width: usize) -> String {
    let names = [
        "client_id",
        "client_key",
        "tenant_id",
        "username",
        "callback_url",
        "create_time",
        "last_update_time",
        "display_name",
        "description",
        "active",
    ];
    let placeholders: Vec<String> = names.iter().map(|n| format!("%({n})s")).collect();
    format!(
        "Invalid POST data; (psycopg2.errors.StringDataRightTruncation) value too long for type \
         character varying({width})\n\n[SQL: INSERT INTO clients ({}) VALUES ({}) RETURNING clients.id]\n\
         [parameters: {{'client_id': '{}', 'client_key': '{}', 'tenant_id': '{tenant}', 'username': '{}', \
         'callback_url': '{}', 'create_time': datetime.datetime(2024, 1, 24, 15, 27, 53), \
         'last_update_time': datetime.datetime(2024, 1, 24, 15, 27, 53), 'display_name': '{}', \
         'description': '{}', 'active': True}}]\n(Background on this error at: https://sqlalche.me/e/14/9h9h)",
        names.join(", "),
        placeholders.join(", "),
        client.client_id,
        client.client_key,
        client.owner,
        client.callback_url,
        client.display_name,
        client.description,
    )
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    show_inactive: Option<String>,
}

/// `GET /v3/oauth2/clients` (`list_clients`): the caller's active clients, or
/// all of them with `show_inactive`.
pub(crate) async fn list_clients(
    State(fake): State<FakeControl>,
    AuthnCaller(caller): AuthnCaller,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let all = query.show_inactive.is_some_and(|v| !v.is_empty());
    let inner = fake.shared.lock();
    let mut owned: Vec<&OauthClient> = inner
        .clients
        .values()
        .filter(|c| c.owner == caller.username && (all || c.active))
        .collect();
    owned.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let result: Vec<Value> = owned
        .into_iter()
        .map(|c| client_json(c, &caller.tenant))
        .collect();
    Ok(success(
        StatusCode::OK,
        "Clients retrieved successfully.",
        Value::Array(result),
    ))
}

/// `GET /v3/oauth2/clients/{client_id}` (`get_client`); deleted clients too.
pub(crate) async fn get_client(
    State(fake): State<FakeControl>,
    AuthnCaller(caller): AuthnCaller,
    Path(client_id): Path<String>,
) -> ApiResult {
    let inner = fake.shared.lock();
    let client = owned_client(inner.clients.get(&client_id), &caller.username, &client_id)?;
    Ok(success(
        StatusCode::OK,
        "Client object retrieved successfully.",
        client_json(client, &caller.tenant),
    ))
}

/// `DELETE /v3/oauth2/clients/{client_id}` (`delete_client`): a soft delete,
/// `client.active = False`. The client's id and key keep working for token
/// requests, whose client lookup ignores `active`.
pub(crate) async fn delete_client(
    State(fake): State<FakeControl>,
    AuthnCaller(caller): AuthnCaller,
    Path(client_id): Path<String>,
) -> ApiResult {
    let mut inner = fake.shared.lock();
    owned_client(inner.clients.get(&client_id), &caller.username, &client_id)?;
    let client = inner.clients.get_mut(&client_id).expect("looked up above");
    client.active = false;
    Ok(success(
        StatusCode::OK,
        "Client status updated to inactive successfully",
        client_json(client, &caller.tenant),
    ))
}

/// The client if `caller` owns it. Both refusals are tapisservice errors, so
/// 400 (a `PermissionsError` too: `BaseTapisError` defaults to 400).
fn owned_client<'a>(
    client: Option<&'a OauthClient>,
    caller: &str,
    client_id: &str,
) -> Result<&'a OauthClient, ApiError> {
    let client = client
        .ok_or_else(|| ApiError::bad_request(format!("No client found with id {client_id}.")))?;
    if client.owner != caller {
        return Err(ApiError::bad_request("Not authorized for this client."));
    }
    Ok(client)
}

/// `Client.serialize`; the times are `datetime`s, which Flask renders as
/// HTTP-dates.
fn client_json(client: &OauthClient, tenant: &str) -> Value {
    json!({
        "client_id": client.client_id,
        "client_key": client.client_key,
        "owner": client.owner,
        "callback_url": client.callback_url,
        "create_time": http_date(client.create_time),
        "last_update_time": http_date(client.create_time),
        "display_name": client.display_name,
        "description": client.description,
        "tenant_id": tenant,
        "active": client.active,
    })
}
