//! Fake Tapis against the Authenticator's source: token grants, OAuth clients,
//! device flow, revocation and the token filter, with the live status codes and
//! message texts (tapis-project/authenticator, service/controllers.py and
//! service/models.py; tapis-project/tokens-api, service/models.py).

use crate::fake_common;

use std::time::Duration;

use fake_common::*;
use serde_json::{Value, json};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};

const CREATED: &str = "Token created successfully.";
const SESSION: &str = "session: <SecureCookieSession {}>";

/// Registers an OAuth client for the caller and answers (client_id, client_key).
async fn make_client(
    http: &reqwest::Client,
    fake: &FakeTapis,
    token: &str,
    id: &str,
) -> (String, String) {
    let reply = send(
        http.post(format!("{}/v3/oauth2/clients", fake.base_url()))
            .header("X-Tapis-Token", token)
            .json(&json!({"client_id": id, "display_name": "agent", "description": "test"})),
    )
    .await;
    reply.expect_message(200, "Client created successfully.");
    let result = reply.result();
    assert_eq!(result["client_id"], id);
    assert_eq!(result["owner"], USER);
    assert_eq!(result["active"], true);
    let key = result["client_key"].as_str().expect("generated key");
    assert!(key.len() >= 8, "key {key:?}");
    (id.to_owned(), key.to_owned())
}

fn refresh_token_of(reply: &Reply) -> String {
    reply.result()["refresh_token"]["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

fn access_token_of(reply: &Reply) -> String {
    reply.result()["access_token"]["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn refresh(
    http: &reqwest::Client,
    fake: &FakeTapis,
    client: Option<(&str, &str)>,
    refresh_token: &str,
) -> Reply {
    let mut request = http
        .post(format!("{}/v3/oauth2/tokens", fake.base_url()))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": refresh_token}));
    if let Some((id, key)) = client {
        request = request.basic_auth(id, Some(key));
    }
    send(request).await
}

/// Checks one `{<field>, expires_at, expires_in, jti}` token object against its
/// JWT: no `iat`, `expires_at` ISO-8601 (with microseconds) on the `exp` second.
fn check_token_object(object: &Value, field: &str, ttl: i64, token_type: &str) -> Value {
    let jwt = object[field].as_str().expect("jwt string");
    let c = claims(jwt);
    assert_eq!(c["tapis/token_type"], token_type);
    assert_eq!(c["tapis/tenant_id"], "designsafe");
    assert_eq!(c["sub"], "testuser@designsafe");
    assert!(c.get("iat").is_none(), "no iat in Tapis tokens: {c}");
    assert_eq!(object["jti"], c["jti"]);
    assert_eq!(object["expires_in"], ttl);
    let exp = c["exp"].as_i64().expect("exp");
    let text = object["expires_at"].as_str().expect("expires_at");
    assert!(text.ends_with("+00:00"), "{text}");
    let expires_at: jiff::Timestamp = text.parse().expect("ISO-8601");
    assert_eq!(expires_at.as_second(), exp);
    let now = jiff::Timestamp::now().as_second();
    assert!(
        (exp - now - ttl).abs() <= 2,
        "exp {exp}, now {now}, ttl {ttl}"
    );
    c
}

#[tokio::test]
async fn password_login_answers_200_without_a_refresh_token() {
    let fake = start().await;
    let http = http();
    let reply = password_login(&http, &fake.base_url(), USER, PASSWORD, None).await;
    reply.expect_message(200, CREATED);
    let result = reply.result();
    let c = check_token_object(&result["access_token"], "access_token", 4 * 3600, "access");
    assert_eq!(c["tapis/username"], USER);
    assert_eq!(c["tapis/account_type"], "user");
    assert_eq!(c["tapis/client_id"], Value::Null);
    assert_eq!(c["tapis/grant_type"], "password");
    assert!(result.get("refresh_token").is_none(), "{result}");

    // The form encoding works as well.
    let form = send(
        http.post(format!("{}/v3/oauth2/tokens", fake.base_url()))
            .form(&[
                ("grant_type", "password"),
                ("username", USER),
                ("password", PASSWORD),
            ]),
    )
    .await;
    form.expect_message(200, CREATED);
    fake.shutdown().await;
}

#[tokio::test]
async fn login_errors_read_as_the_authenticator_writes_them() {
    let fake = start().await;
    let http = http();
    let base = fake.base_url();
    // ldap.py `check_username_password`: a wrong password and an unknown user
    // fail alike, 400 (tapisservice errors default to 400).
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD)] {
        password_login(&http, &base, user, password, None)
            .await
            .expect_message(400, "Invalid username/password combination.");
    }
    // The client check comes first and echoes the key.
    password_login(
        &http,
        &base,
        USER,
        PASSWORD,
        Some(("no-such-client", "k3y")),
    )
    .await
    .expect_message(
        400,
        &format!("Invalid client credentials: no-such-client, k3y. {SESSION}"),
    );
    let tokens = format!("{base}/v3/oauth2/tokens");
    send(
        http.post(&tokens)
            .json(&json!({"grant_type": "client_credentials"})),
    )
    .await
    .expect_envelope(
        400,
        "Invalid grant_type (client_credentials); this grant type is not allowed for this tenant.",
    );
    send(http.post(&tokens).json(&json!({"username": USER})))
        .await
        .expect_message(400, "Missing the required grant_type parameter.");
    send(
        http.post(&tokens)
            .json(&json!({"grant_type": "password", "username": USER})),
    )
    .await
    .expect_message(
        400,
        "Missing required payload data; username and password are required for the password grant type.",
    );
    send(
        http.post(&tokens)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await
    .expect_envelope(400, "Invalid POST data: ");
    // No content type at all trips `request.content_type.startswith`.
    send(http.post(&tokens).body("grant_type=password"))
        .await
        .expect_envelope(
            500,
            "Unrecognized exception type: <class 'AttributeError'>.",
        );
    assert_eq!(fake.calls("create_token"), 8);
    fake.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_are_not_rotated_and_slide() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    let (id, key) = make_client(&http, &fake, &token, "agent-1").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    reply.expect_message(200, CREATED);
    let result = reply.result();
    let access = check_token_object(&result["access_token"], "access_token", 4 * 3600, "access");
    assert_eq!(access["tapis/client_id"], "agent-1");
    assert_eq!(access["tapis/refresh_count"], 0);
    let year = 365 * 24 * 3600;
    let r = check_token_object(&result["refresh_token"], "refresh_token", year, "refresh");
    // A refresh token names its user only inside the nested access claims.
    assert!(r.get("tapis/username").is_none(), "{r}");
    assert_eq!(r["tapis/access_token"]["tapis/username"], USER);
    assert_eq!(r["tapis/access_token"]["tapis/client_id"], "agent-1");
    assert_eq!(r["tapis/initial_ttl"], year);
    let first = refresh_token_of(&reply);

    let refreshed = refresh(&http, &fake, Some((&id, &key)), &first).await;
    refreshed.expect_message(200, CREATED);
    assert_ne!(refresh_token_of(&refreshed), first);
    let result = refreshed.result();
    let access = check_token_object(&result["access_token"], "access_token", 4 * 3600, "access");
    assert_eq!(access["tapis/grant_type"], "refresh_token");
    assert_eq!(access["tapis/refresh_count"], 1);
    // The new refresh token gets a full lifetime again.
    check_token_object(&result["refresh_token"], "refresh_token", year, "refresh");
    // No rotation: the used refresh token still works.
    refresh(&http, &fake, Some((&id, &key)), &first)
        .await
        .expect_message(200, CREATED);
    fake.shutdown().await;
}

#[tokio::test]
async fn refresh_refusals_and_opt_in_rotation() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session_with(FakeConfig {
        rotate_refresh_tokens: true,
        ..FakeConfig::default()
    })
    .await;
    let (id, key) = make_client(&http, &fake, &token, "agent-1").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    let first = refresh_token_of(&reply);

    // Rotation: the new pair works, the old refresh token is spent.
    let rotated = refresh(&http, &fake, Some((&id, &key)), &first).await;
    rotated.expect_message(200, CREATED);
    let second = refresh_token_of(&rotated);
    let new_access = access_token_of(&rotated);
    check(&http, &base, &new_access, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    refresh(&http, &fake, Some((&id, &key)), &first)
        .await
        .expect_message(400, "Invalid refresh_token.");

    // Client credentials are required, must be right, and must be the token's client.
    refresh(&http, &fake, None, &second).await.expect_message(
        400,
        &format!("Invalid client credentials: None, None. {SESSION}"),
    );
    refresh(&http, &fake, Some((&id, "wrong-key")), &second)
        .await
        .expect_message(
            400,
            &format!("Invalid client credentials: agent-1, wrong-key. {SESSION}"),
        );
    let (other, other_key) = make_client(&http, &fake, &token, "agent-2").await;
    refresh(&http, &fake, Some((&other, &other_key)), &second)
        .await
        .expect_message(
            400,
            "client_id from header (agent-2) does not match the client_id in the token claim (agent-1).",
        );
    // An access token is no refresh token.
    refresh(&http, &fake, Some((&id, &key)), &new_access)
        .await
        .expect_message(
            400,
            "Invalid token type. The refresh_token grant type required a token of type refresh. \
             Instead a token of type access was passed.",
        );
    refresh(&http, &fake, Some((&id, &key)), "garbage")
        .await
        .expect_message(400, "Invalid refresh_token.");
    // None of the failures above spent the second token.
    refresh(&http, &fake, Some((&id, &key)), &second)
        .await
        .expect_message(200, CREATED);
    fake.shutdown().await;
}

#[tokio::test]
async fn configured_lifetimes_and_users_are_used() {
    let config = FakeConfig {
        token_ttl: Duration::from_secs(3),
        refresh_ttl: Duration::from_secs(60),
        users: vec![
            ("alice".into(), "secret".into()),
            (USER.into(), PASSWORD.into()),
        ],
        ..FakeConfig::default()
    };
    let Session {
        fake,
        http,
        base,
        token,
    } = session_with(config).await;
    let now = jiff::Timestamp::now().as_second();
    assert!((claims(&token)["exp"].as_i64().unwrap() - now - 3).abs() <= 1);
    let (id, key) = make_client(&http, &fake, &token, "c").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    assert_eq!(reply.result()["access_token"]["expires_in"], 3);
    assert_eq!(reply.result()["refresh_token"]["expires_in"], 60);
    let alice = password_login(&http, &base, "alice", "secret", None).await;
    alice.expect_message(200, CREATED);
    assert_eq!(claims(&access_token_of(&alice))["tapis/username"], "alice");
    fake.shutdown().await;
}

#[tokio::test]
async fn clients_are_owned_unique_and_only_soft_deleted() {
    let config = FakeConfig {
        users: vec![(USER.into(), PASSWORD.into()), ("bob".into(), "pw".into())],
        ..FakeConfig::default()
    };
    let Session {
        fake,
        http,
        base,
        token,
    } = session_with(config).await;
    let (id, key) = make_client(&http, &fake, &token, "mine").await;
    let clients = format!("{base}/v3/oauth2/clients");
    let unique = "Invalid POST data; This change would violate uniqueness constraints. \
                  Details: Key (client_id)=(mine) already exists.";

    // Duplicate ids are refused; a missing key or id is generated.
    send(
        http.post(&clients)
            .header("X-Tapis-Token", &token)
            .json(&json!({"client_id": "mine"})),
    )
    .await
    .expect_message(400, unique);
    let generated = send(
        http.post(&clients)
            .header("X-Tapis-Token", &token)
            .json(&json!({})),
    )
    .await;
    generated.expect_message(200, "Client created successfully.");
    let g = generated.result();
    assert!(
        g["client_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{g}"
    );
    assert!(
        g["client_key"].as_str().is_some_and(|s| !s.is_empty()),
        "{g}"
    );
    assert_eq!(g["display_name"], g["client_id"]);
    // Times are `datetime`s, which Flask renders as HTTP-dates.
    let created = g["create_time"].as_str().expect("create_time");
    assert!(created.ends_with(" GMT"), "{created}");
    // The Authenticator's own token check answers 400 JSON, not the 401 text
    // of the Java filter.
    send(http.post(&clients).json(&json!({"client_id": "x"})))
        .await
        .expect_message(400, "No Tapis access token found in the request.");
    send(
        http.post(&clients)
            .header("X-Tapis-Token", "a.b.c")
            .json(&json!({})),
    )
    .await
    .expect_message(400, "Invalid Tapis token.");

    let one = format!("{clients}/mine");
    let got = send(http.get(&one).header("X-Tapis-Token", &token)).await;
    got.expect_message(200, "Client object retrieved successfully.");
    assert_eq!(got.result()["client_key"], key.as_str());
    let listed = send(http.get(&clients).header("X-Tapis-Token", &token)).await;
    listed.expect_message(200, "Clients retrieved successfully.");
    assert_eq!(listed.result().as_array().map(Vec::len), Some(2));

    let bob = password_login(&http, &base, "bob", "pw", None).await;
    let bob_token = access_token_of(&bob);
    send(http.get(&one).header("X-Tapis-Token", &bob_token))
        .await
        .expect_message(400, "Not authorized for this client.");
    send(http.delete(&one).header("X-Tapis-Token", &bob_token))
        .await
        .expect_message(400, "Not authorized for this client.");
    send(
        http.get(format!("{clients}/nope"))
            .header("X-Tapis-Token", &token),
    )
    .await
    .expect_message(400, "No client found with id nope.");

    let deleted = send(http.delete(&one).header("X-Tapis-Token", &token)).await;
    deleted.expect_message(200, "Client status updated to inactive successfully");
    assert_eq!(deleted.result()["active"], false);
    // Soft delete: still readable, listed only on request, id still taken ...
    let got = send(http.get(&one).header("X-Tapis-Token", &token)).await;
    got.expect_message(200, "Client object retrieved successfully.");
    assert_eq!(got.result()["active"], false);
    let listed = send(http.get(&clients).header("X-Tapis-Token", &token)).await;
    assert_eq!(listed.result().as_array().map(Vec::len), Some(1));
    let all = send(
        http.get(format!("{clients}?show_inactive=true"))
            .header("X-Tapis-Token", &token),
    )
    .await;
    assert_eq!(all.result().as_array().map(Vec::len), Some(2));
    send(
        http.post(&clients)
            .header("X-Tapis-Token", &token)
            .json(&json!({"client_id": "mine"})),
    )
    .await
    .expect_message(400, unique);
    // ... and the token endpoint's client check ignores `active`.
    let still = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    still.expect_message(200, CREATED);
    assert!(still.result()["refresh_token"]["refresh_token"].is_string());
    for op in [
        "create_client",
        "get_client",
        "list_clients",
        "delete_client",
    ] {
        assert!(fake.calls(op) > 0, "{op} counted");
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn client_columns_are_limited_and_the_refusal_quotes_the_key() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    let clients = format!("{base}/v3/oauth2/clients");
    let post = |body: Value| {
        send(
            http.post(&clients)
                .header("X-Tapis-Token", &token)
                .json(&body),
        )
    };
    let at_limit = json!({"client_id": "i".repeat(80), "client_key": "k".repeat(80),
                          "display_name": "d".repeat(50), "description": "e".repeat(70)});
    post(at_limit)
        .await
        .expect_message(200, "Client created successfully.");
    for (field, width) in [
        ("client_id", 80),
        ("client_key", 80),
        ("display_name", 50),
        ("description", 70),
    ] {
        let mut body = json!({"client_id": format!("c-{field}"), "client_key": "SeCrEtKeY-1"});
        body[field] = json!("x".repeat(width + 1));
        let reply = post(body).await;
        reply.expect_envelope(
            400,
            &format!(
                "Invalid POST data; (psycopg2.errors.StringDataRightTruncation) value too long \
                 for type character varying({width})"
            ),
        );
        if field != "client_key" {
            assert!(
                reply.message().contains("'client_key': 'SeCrEtKeY-1'"),
                "{field}"
            );
        }
    }
    let listed = send(http.get(&clients).header("X-Tapis-Token", &token)).await;
    assert_eq!(listed.result().as_array().map(Vec::len), Some(1));
    fake.shutdown().await;
}

#[tokio::test]
async fn device_flow_waits_until_the_code_is_entered() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    let (id, _key) = make_client(&http, &fake, &token, "device-client").await;
    let code_url = format!("{base}/v3/oauth2/device/code");

    send(http.post(&code_url).json(&json!({"client_id": "unknown"})))
        .await
        .expect_message(400, "Invalid client: unknown");
    let code = send(http.post(&code_url).json(&json!({"client_id": id}))).await;
    code.expect_message(200, CREATED);
    let result = code.result();
    // `expires_in` is the code's expiry time as an HTTP-date, about 600 s away.
    let expires = result["expires_in"]
        .as_str()
        .expect("expires_in is a string");
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(expires)
        .expect("an HTTP-date");
    let left = at.as_second() - jiff::Timestamp::now().as_second();
    assert!((598..=601).contains(&left), "{expires}: {left} s");
    let user_code = result["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 8);
    assert!(
        user_code.bytes().all(|b| b.is_ascii_alphabetic()),
        "{user_code}"
    );
    let device_code = result["device_code"].as_str().unwrap().to_owned();
    assert_eq!(device_code.len(), 40);
    assert_eq!(
        result["verification_uri"],
        format!("{base}/v3/oauth2/device?client_id=device-client")
    );

    let poll =
        |code: &str, client: &str| {
            send(http.post(format!("{base}/v3/oauth2/tokens")).json(
                &json!({"grant_type": "device_code", "device_code": code, "client_id": client}),
            ))
        };
    poll(&device_code, &id)
        .await
        .expect_message(400, "device code not ready.");
    poll("no-such-code", &id)
        .await
        .expect_message(400, "device code not valid.");

    // Approval through the control API; a wrong code is a 404 there.
    let approve = format!("{base}/_fake/device/approve");
    assert_eq!(
        control(
            &http,
            &approve,
            json!({"user_code": "NOPE", "username": USER})
        )
        .await,
        404
    );
    assert_eq!(
        control(
            &http,
            &approve,
            json!({"user_code": user_code, "username": USER})
        )
        .await,
        204
    );
    poll(&device_code, "someone-else").await.expect_message(
        400,
        "Client IDs do not match between device code and passed in client_id",
    );

    let done = poll(&device_code, &id).await;
    done.expect_message(200, CREATED);
    // A device login's access token lives 30 days, and comes with a refresh token.
    let access = check_token_object(
        &done.result()["access_token"],
        "access_token",
        30 * 24 * 3600,
        "access",
    );
    assert_eq!(access["tapis/username"], USER);
    assert_eq!(access["tapis/client_id"], "device-client");
    assert_eq!(access["tapis/grant_type"], "device_code");
    assert!(done.result()["refresh_token"]["refresh_token"].is_string());
    // A device code is redeemed once, then deleted.
    poll(&device_code, &id)
        .await
        .expect_message(400, "device code not valid.");

    // The library call approves as well.
    let code = send(http.post(&code_url).json(&json!({"client_id": id}))).await;
    assert!(fake.approve_device(code.result()["user_code"].as_str().unwrap(), USER));
    assert!(!fake.approve_device("NOPE", USER));
    fake.shutdown().await;
}

/// Revokes `token`, answering the reply.
async fn revoke(http: &reqwest::Client, base: &str, token: &str) -> Reply {
    send(
        http.post(format!("{base}/v3/oauth2/tokens/revoke"))
            .json(&json!({"token": token})),
    )
    .await
}

#[tokio::test]
async fn revocation_is_recorded_but_not_enforced_by_default() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    let (id, key) = make_client(&http, &fake, &token, "c").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    let refresh_token = refresh_token_of(&reply);
    for t in [&token, &refresh_token] {
        let jti = claims(t)["jti"].as_str().unwrap().to_owned();
        let revoked = revoke(&http, &base, t).await;
        revoked.expect_message(200, &format!("Token {jti} has been revoked."));
        assert_eq!(revoked.result(), json!(""));
    }
    check(&http, &base, &token, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    refresh(&http, &fake, Some((&id, &key)), &refresh_token)
        .await
        .expect_message(200, CREATED);
    assert_eq!(fake.stats().rejected_token, 0);

    // Only a token that still validates can be revoked.
    revoke(&http, &base, "garbage").await.expect_message(
        400,
        "Invalid POST data; could not validate the token: debug data: Could not parse the Tapis access token..",
    );
    let expired = fake.mint_access_token(USER, Duration::ZERO);
    revoke(&http, &base, &expired).await.expect_message(
        400,
        "Invalid POST data; could not validate the token: debug data: Invalid Tapis token..",
    );
    send(
        http.post(format!("{base}/v3/oauth2/tokens/revoke"))
            .json(&json!({})),
    )
    .await
    .expect_message(400, "No Tapis access token found in the request.");
    assert_eq!(fake.calls("revoke_token"), 5);
    fake.shutdown().await;
}

#[tokio::test]
async fn revoked_tokens_are_refused_when_enforced() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session_with(FakeConfig {
        enforce_revocation: true,
        ..FakeConfig::default()
    })
    .await;
    let (id, key) = make_client(&http, &fake, &token, "c").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    let refresh_token = refresh_token_of(&reply);

    revoke(&http, &base, &token)
        .await
        .expect_envelope(200, "Token ");
    check(&http, &base, &token, "ls6")
        .await
        .expect_proxy_revoked();
    revoke(&http, &base, &refresh_token)
        .await
        .expect_envelope(200, "Token ");
    refresh(&http, &fake, Some((&id, &key)), &refresh_token)
        .await
        .expect_message(400, "Invalid refresh_token.");

    // The control API spends every refresh token at once.
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    let live = refresh_token_of(&reply);
    assert_eq!(
        control(
            &http,
            &format!("{base}/_fake/revoke_refresh_tokens"),
            json!({})
        )
        .await,
        204
    );
    refresh(&http, &fake, Some((&id, &key)), &live)
        .await
        .expect_message(400, "Invalid refresh_token.");
    fake.shutdown().await;
}

#[tokio::test]
async fn revoked_tokens_get_the_proxys_500_when_asked_for() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session_with(FakeConfig {
        enforce_revocation: true,
        ..FakeConfig::default()
    })
    .await;
    check(&http, &base, &token, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    revoke(&http, &base, &token)
        .await
        .expect_envelope(200, "Token ");
    // tapis-deployer nginx/token-revoked.json, whatever the service behind.
    for reply in [
        check(&http, &base, &token, "ls6").await,
        send(
            http.get(format!("{base}/v3/systems/ls6"))
                .header("X-Tapis-Token", &token),
        )
        .await,
        send(
            http.get(format!("{base}/v3/oauth2/clients"))
                .header("X-Tapis-Token", &token),
        )
        .await,
    ] {
        assert_eq!(reply.status, 500, "{}", reply.body);
        let v = reply.json();
        assert_eq!(v["status"], "error");
        assert_eq!(v["message"], "Token is revoked.");
        assert!(v["result"].is_null() && v["version"].is_string(), "{v}");
    }
    // A token not revoked passes.
    let other = login(&http, &fake).await;
    check(&http, &base, &other, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    fake.shutdown().await;
}

#[tokio::test]
async fn file_uploads_answer_as_the_files_service() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    let upload = |system: &str, token: Option<&str>, multipart: bool| {
        let mut req = http.post(format!("{base}/v3/files/ops/{system}/work/input.tcl"));
        if let Some(token) = token {
            req = req.header("X-Tapis-Token", token);
        }
        if multipart {
            req = req
                .header("Content-Type", "multipart/form-data; boundary=XyZ")
                .body(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.tcl\"\r\n\r\n\
                     puts hi\r\n--XyZ--\r\n",
                );
        }
        send(req)
    };
    let ok = upload("stampede3", Some(&token), true).await;
    ok.expect_envelope(200, "FAPI_OP_COMPLETE Operation completed.");
    assert!(
        ok.message()
            .ends_with("Operation: upload System: stampede3 Path: work/input.tcl"),
        "{}",
        ok.message()
    );
    assert!(ok.result().is_null());
    upload("stampede3", None, true)
        .await
        .expect_token_error("TAPIS_SECURITY_MISSING_JWT_INFO");
    upload("nosuch", Some(&token), true)
        .await
        .expect_envelope(404, "FILES_SYS_NOTFOUND");
    upload("stampede3", Some(&token), false)
        .await
        .expect_envelope(400, "FAPI_UPLOAD_NO_FILE");
    assert_eq!(fake.calls("insert"), 4);
    fake.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_get_the_jwt_filter_texts_and_are_counted() {
    let fake = start().await;
    let other = start().await;
    let http = http();
    let base = fake.base_url();
    let good = login(&http, &fake).await;

    // Missing.
    let missing = send(http.post(format!(
        "{base}/v3/systems/credential/ls6/user/{USER}/check"
    )))
    .await;
    missing.expect_token_error("TAPIS_SECURITY_MISSING_JWT_INFO");
    assert_eq!(
        missing.body,
        "TAPIS_SECURITY_MISSING_JWT_INFO HTTP POST request rejected due to missing JSON Web Token information."
    );
    // Not a JWT.
    check(&http, &base, "not-a-jwt", "ls6")
        .await
        .expect_token_error("TAPIS_SECURITY_JWT_PARSE_ERROR Unable to parse JWT. Error: ");
    // Signed by another instance: the signature does not verify.
    let forged = other.mint_access_token(USER, Duration::from_secs(600));
    check(&http, &base, &forged, "ls6")
        .await
        .expect_token_error("TAPIS_SECURITY_JWT_PARSE_ERROR");
    // Tampered payload.
    let mut parts: Vec<&str> = good.split('.').collect();
    let other_payload = forged.split('.').nth(1).unwrap();
    parts[1] = other_payload;
    check(&http, &base, &parts.join("."), "ls6")
        .await
        .expect_token_error("TAPIS_SECURITY_JWT_PARSE_ERROR");
    // Expired: a zero lifetime is already over.
    let expired = fake.mint_access_token(USER, Duration::ZERO);
    let refused = check(&http, &base, &expired, "ls6").await;
    refused.expect_token_error("TAPIS_SECURITY_JWT_EXPIRED Exception message: JWT expired at ");
    assert!(
        refused.body.contains("tapis/username: testuser"),
        "{}",
        refused.body
    );
    let long_ago = fake.mint_access_token_expiring_at(USER, 1_000_000_000);
    send(
        http.get(format!("{base}/v3/systems/ls6"))
            .header("X-Tapis-Token", &long_ago),
    )
    .await
    .expect_token_error("TAPIS_SECURITY_JWT_EXPIRED");

    // A refresh token is no access token.
    let token = login(&http, &fake).await;
    let (id, key) = make_client(&http, &fake, &token, "c").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    check(&http, &base, &refresh_token_of(&reply), "ls6")
        .await
        .expect_token_error(
            "TAPIS_SECURITY_JWT_INVALID_CLAIM Invalid JWT claim tapis/token_type = refresh",
        );

    // A minted token with time left works like a login's.
    let minted = fake.mint_access_token(USER, Duration::from_secs(60));
    check(&http, &base, &minted, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");

    let stats = fake.stats();
    assert_eq!(stats.rejected_token, 7, "{stats:?}");
    assert_eq!(stats.expired_token, 2, "{stats:?}");
    assert_eq!(stats.calls("checkUserCredential"), 7);
    assert_eq!(stats.calls("getSystem"), 1);
    other.shutdown().await;
    fake.shutdown().await;
}
