//! Fake Tapis: token grants, OAuth clients, device flow, revocation and the token
//! filter.

mod fake_common;

use std::time::Duration;

use fake_common::*;
use serde_json::{Value, json};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};

/// Registers an OAuth client for testuser and answers (client_id, client_key).
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
    reply.expect_envelope(201, "AUTH_");
    let result = reply.result();
    assert_eq!(result["client_id"], id);
    assert_eq!(result["owner"], USER);
    let key = result["client_key"].as_str().expect("generated key");
    assert!(key.len() >= 16, "key {key:?}");
    (id.to_owned(), key.to_owned())
}

fn refresh_token_of(reply: &Reply) -> String {
    reply.result()["refresh_token"]["refresh_token"]
        .as_str()
        .expect("refresh token")
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

/// Checks one `{<field>, expires_at, expires_in, jti}` token object against its JWT.
fn check_token_object(object: &Value, field: &str, ttl: i64, token_type: &str) -> Value {
    let jwt = object[field].as_str().expect("jwt string");
    let c = claims(jwt);
    assert_eq!(c["tapis/token_type"], token_type);
    assert_eq!(c["tapis/username"], USER);
    assert_eq!(c["tapis/tenant_id"], "designsafe");
    assert_eq!(c["tapis/account_type"], "user");
    assert_eq!(c["sub"], "testuser@designsafe");
    assert_eq!(object["jti"], c["jti"]);
    assert_eq!(object["expires_in"], ttl);
    let exp = c["exp"].as_i64().expect("exp");
    assert_eq!(exp - c["iat"].as_i64().expect("iat"), ttl);
    let expires_at: jiff::Timestamp = object["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("ISO-8601");
    assert_eq!(expires_at.as_second(), exp);
    c
}

#[tokio::test]
async fn password_login_without_client_has_no_refresh_token() {
    let fake = start().await;
    let http = http();
    let reply = password_login(&http, &fake.base_url(), USER, PASSWORD, None).await;
    reply.expect_envelope(201, "AUTH_TOKEN_CREATED");
    let result = reply.result();
    let c = check_token_object(&result["access_token"], "access_token", 4 * 3600, "access");
    assert!(c.get("tapis/client_id").is_none(), "{c}");
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
    form.expect_envelope(201, "AUTH_TOKEN_CREATED");
    fake.shutdown().await;
}

#[tokio::test]
async fn login_errors_are_json_envelopes() {
    let fake = start().await;
    let http = http();
    let base = fake.base_url();
    password_login(&http, &base, USER, "wrong", None)
        .await
        .expect_envelope(401, "AUTH_INVALID_CREDENTIALS");
    password_login(&http, &base, "nobody", PASSWORD, None)
        .await
        .expect_envelope(401, "AUTH_INVALID_CREDENTIALS");
    password_login(&http, &base, USER, PASSWORD, Some(("no-such-client", "k")))
        .await
        .expect_envelope(401, "AUTH_INVALID_CLIENT");
    let tokens = format!("{base}/v3/oauth2/tokens");
    send(
        http.post(&tokens)
            .json(&json!({"grant_type": "client_credentials"})),
    )
    .await
    .expect_envelope(400, "AUTH_UNSUPPORTED_GRANT_TYPE");
    send(http.post(&tokens).json(&json!({"username": USER})))
        .await
        .expect_envelope(400, "AUTH_INVALID_REQUEST");
    send(
        http.post(&tokens)
            .json(&json!({"grant_type": "password", "username": USER})),
    )
    .await
    .expect_envelope(400, "AUTH_INVALID_REQUEST");
    send(
        http.post(&tokens)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await
    .expect_envelope(400, "AUTH_INVALID_REQUEST");
    assert_eq!(fake.calls("create_token"), 7);
    fake.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_are_not_rotated_by_default() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    let (id, key) = make_client(&http, &fake, &token, "agent-1").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    let first = refresh_token_of(&reply);
    let refreshed = refresh(&http, &fake, Some((&id, &key)), &first).await;
    refreshed.expect_envelope(201, "AUTH_TOKEN_CREATED");
    assert_ne!(refresh_token_of(&refreshed), first);
    // Like the live Authenticator: the used refresh token still works.
    refresh(&http, &fake, Some((&id, &key)), &first)
        .await
        .expect_envelope(201, "AUTH_TOKEN_CREATED");
    fake.shutdown().await;
}

#[tokio::test]
async fn client_login_gets_a_refresh_token_that_rotates() {
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
    reply.expect_envelope(201, "AUTH_TOKEN_CREATED");
    let result = reply.result();
    let access = check_token_object(&result["access_token"], "access_token", 4 * 3600, "access");
    assert_eq!(access["tapis/client_id"], "agent-1");
    let r = check_token_object(
        &result["refresh_token"],
        "refresh_token",
        365 * 24 * 3600,
        "refresh",
    );
    assert_eq!(r["tapis/client_id"], "agent-1");
    let first = refresh_token_of(&reply);

    // Rotation: the new pair works, the old refresh token is spent.
    let rotated = refresh(&http, &fake, Some((&id, &key)), &first).await;
    rotated.expect_envelope(201, "AUTH_TOKEN_CREATED");
    let second = refresh_token_of(&rotated);
    assert_ne!(first, second);
    let new_access = rotated.result()["access_token"]["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    check(&http, &base, &new_access, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    refresh(&http, &fake, Some((&id, &key)), &first)
        .await
        .expect_envelope(401, "AUTH_INVALID_REFRESH_TOKEN");

    // Client credentials are required, must be right, and must be the token's client.
    refresh(&http, &fake, None, &second)
        .await
        .expect_envelope(400, "AUTH_INVALID_REQUEST");
    refresh(&http, &fake, Some((&id, "wrong-key")), &second)
        .await
        .expect_envelope(401, "AUTH_INVALID_CLIENT");
    let (other, other_key) = make_client(&http, &fake, &token, "agent-2").await;
    refresh(&http, &fake, Some((&other, &other_key)), &second)
        .await
        .expect_envelope(401, "AUTH_INVALID_REFRESH_TOKEN");
    // An access token is no refresh token.
    refresh(&http, &fake, Some((&id, &key)), &new_access)
        .await
        .expect_envelope(401, "AUTH_INVALID_REFRESH_TOKEN");
    // None of the failures above spent the second token.
    refresh(&http, &fake, Some((&id, &key)), &second)
        .await
        .expect_envelope(201, "AUTH_TOKEN_CREATED");
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
    let c = claims(&token);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3);
    let (id, key) = make_client(&http, &fake, &token, "c").await;
    let reply = password_login(&http, &base, USER, PASSWORD, Some((&id, &key))).await;
    assert_eq!(reply.result()["access_token"]["expires_in"], 3);
    assert_eq!(reply.result()["refresh_token"]["expires_in"], 60);
    let alice = password_login(&http, &base, "alice", "secret", None).await;
    alice.expect_envelope(201, "AUTH_TOKEN_CREATED");
    let alice_token = alice.result()["access_token"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims(&alice_token)["tapis/username"], "alice");
    fake.shutdown().await;
}

#[tokio::test]
async fn clients_are_owned_by_their_creator() {
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

    // Duplicate ids are refused; a missing key or id is generated.
    send(
        http.post(&clients)
            .header("X-Tapis-Token", &token)
            .json(&json!({"client_id": "mine"})),
    )
    .await
    .expect_envelope(400, "AUTH_CLIENT_EXISTS");
    let generated = send(
        http.post(&clients)
            .header("X-Tapis-Token", &token)
            .json(&json!({})),
    )
    .await;
    generated.expect_envelope(201, "AUTH_CLIENT_CREATED");
    assert!(
        generated.result()["client_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    // Creating a client needs a token.
    send(http.post(&clients).json(&json!({"client_id": "x"})))
        .await
        .expect_token_error("TAPIS_SECURITY_MISSING_JWT_INFO");

    let one = format!("{clients}/mine");
    let got = send(http.get(&one).header("X-Tapis-Token", &token)).await;
    got.expect_envelope(200, "AUTH_");
    assert_eq!(got.result()["client_key"], key.as_str());
    let listed = send(http.get(&clients).header("X-Tapis-Token", &token)).await;
    listed.expect_envelope(200, "AUTH_");
    assert_eq!(listed.result().as_array().map(Vec::len), Some(2));

    let bob = password_login(&http, &base, "bob", "pw", None).await;
    let bob_token = bob.result()["access_token"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    send(http.get(&one).header("X-Tapis-Token", &bob_token))
        .await
        .expect_envelope(404, "AUTH_CLIENT_NOT_FOUND");
    send(http.delete(&one).header("X-Tapis-Token", &bob_token))
        .await
        .expect_envelope(404, "AUTH_CLIENT_NOT_FOUND");

    send(http.delete(&one).header("X-Tapis-Token", &token))
        .await
        .expect_envelope(200, "AUTH_CLIENT_DELETED");
    send(http.get(&one).header("X-Tapis-Token", &token))
        .await
        .expect_envelope(404, "AUTH_CLIENT_NOT_FOUND");
    // A deleted client can no longer log in.
    password_login(&http, &base, USER, PASSWORD, Some((&id, &key)))
        .await
        .expect_envelope(401, "AUTH_INVALID_CLIENT");
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
async fn device_flow_waits_for_approval() {
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
        .expect_envelope(400, "AUTH_INVALID_CLIENT");
    let code = send(http.post(&code_url).json(&json!({"client_id": id}))).await;
    code.expect_envelope(200, "AUTH_");
    let result = code.result();
    for field in [
        "client_id",
        "user_code",
        "device_code",
        "verification_uri",
        "expires_in",
    ] {
        assert!(!result[field].is_null(), "{field} in {result}");
    }
    let device_code = result["device_code"].as_str().unwrap().to_owned();
    let user_code = result["user_code"].as_str().unwrap().to_owned();

    let poll = || {
        send(http.post(format!("{base}/v3/oauth2/tokens")).json(
            &json!({"grant_type": "device_code", "device_code": device_code, "client_id": id}),
        ))
    };
    let pending = poll().await;
    pending.expect_envelope(400, "AUTH_DEVICE_CODE_PENDING");
    assert!(
        pending.message().contains("not ready"),
        "{}",
        pending.message()
    );

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

    let done = poll().await;
    done.expect_envelope(201, "AUTH_TOKEN_CREATED");
    let access = done.result()["access_token"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims(&access)["tapis/username"], USER);
    assert_eq!(claims(&access)["tapis/client_id"], "device-client");
    assert!(done.result()["refresh_token"]["refresh_token"].is_string());
    // A device code is redeemed once.
    poll()
        .await
        .expect_envelope(400, "AUTH_INVALID_DEVICE_CODE");

    // The library call approves as well.
    let code = send(http.post(&code_url).json(&json!({"client_id": id}))).await;
    assert!(fake.approve_device(code.result()["user_code"].as_str().unwrap(), USER));
    assert!(!fake.approve_device("NOPE", USER));
    fake.shutdown().await;
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
    let revoke = format!("{base}/v3/oauth2/tokens/revoke");
    for t in [&token, &refresh_token] {
        send(http.post(&revoke).json(&json!({"token": t})))
            .await
            .expect_envelope(200, "AUTH_TOKEN_REVOKED");
    }
    check(&http, &base, &token, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    refresh(&http, &fake, Some((&id, &key)), &refresh_token)
        .await
        .expect_envelope(201, "AUTH_TOKEN_CREATED");
    assert_eq!(fake.stats().rejected_token, 0);
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
    let revoke = format!("{base}/v3/oauth2/tokens/revoke");

    send(http.post(&revoke).json(&json!({"token": token})))
        .await
        .expect_envelope(200, "AUTH_TOKEN_REVOKED");
    check(&http, &base, &token, "ls6")
        .await
        .expect_token_error("TAPIS_SECURITY_JWT_REVOKED");

    send(http.post(&revoke).json(&json!({"token": refresh_token})))
        .await
        .expect_envelope(200, "AUTH_TOKEN_REVOKED");
    refresh(&http, &fake, Some((&id, &key)), &refresh_token)
        .await
        .expect_envelope(401, "AUTH_INVALID_REFRESH_TOKEN");

    send(http.post(&revoke).json(&json!({"token": "garbage"})))
        .await
        .expect_envelope(400, "AUTH_INVALID_TOKEN");
    assert_eq!(fake.calls("revoke_token"), 3);

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
        .expect_envelope(401, "AUTH_INVALID_REFRESH_TOKEN");
    fake.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_get_plain_text_401_and_are_counted() {
    let fake = start().await;
    let other = start().await;
    let http = http();
    let base = fake.base_url();
    let good = login(&http, &fake).await;

    // Missing.
    send(http.post(format!(
        "{base}/v3/systems/credential/ls6/user/{USER}/check"
    )))
    .await
    .expect_token_error("TAPIS_SECURITY_MISSING_JWT_INFO");
    // Not a JWT.
    check(&http, &base, "not-a-jwt", "ls6")
        .await
        .expect_token_error("TAPIS_SECURITY_JWT_PARSE_ERROR");
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
    check(&http, &base, &expired, "ls6")
        .await
        .expect_token_error("TAPIS_SECURITY_JWT_EXPIRED");
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
        .expect_token_error("TAPIS_SECURITY_");

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
