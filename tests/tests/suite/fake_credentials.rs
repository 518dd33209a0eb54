//! Fake Tapis: systems, the credential endpoints as the live service answers them,
//! tenants, stats and the control API.

use crate::fake_common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use fake_common::*;
use serde_json::json;
use tapis_agent_tests::fake::{
    CredFixture, CredentialEntry, FakeConfig, FakeSystem, FakeTapis, Stats,
};

async fn delete(http: &reqwest::Client, base: &str, token: &str, system: &str) -> Reply {
    send(
        http.delete(format!("{base}/v3/systems/credential/{system}/user/{USER}"))
            .header("X-Tapis-Token", token),
    )
    .await
}

async fn get_system(http: &reqwest::Client, base: &str, token: &str, system: &str) -> Reply {
    send(
        http.get(format!("{base}/v3/systems/{system}"))
            .header("X-Tapis-Token", token),
    )
    .await
}

#[tokio::test]
async fn establish_and_revoke_like_the_live_service() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;

    check(&http, &base, &token, "stampede3")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    let system = get_system(&http, &base, &token, "stampede3").await;
    system.expect_envelope(200, "TAPIS_FOUND");
    assert_eq!(system.result()["defaultAuthnMethod"], "TMS_KEYS");
    assert_eq!(system.result()["hasCredentials"], false);

    create_tms(&http, &base, &token, "stampede3")
        .await
        .expect_envelope(201, "SYSAPI_CRED_UPDATED");
    assert_eq!(fake.credential(USER, "stampede3"), CredFixture::Present);
    check(&http, &base, &token, "stampede3")
        .await
        .expect_envelope(200, "SYSAPI_CRED_OK");
    let system = get_system(&http, &base, &token, "stampede3").await;
    assert_eq!(system.result()["hasCredentials"], true);

    // Removing answers 201 whether or not something was stored.
    delete(&http, &base, &token, "stampede3")
        .await
        .expect_envelope(201, "SYSAPI_CRED_DELETED");
    delete(&http, &base, &token, "stampede3")
        .await
        .expect_envelope(201, "SYSAPI_CRED_DELETED");
    check(&http, &base, &token, "stampede3")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    assert_eq!(fake.credential(USER, "stampede3"), CredFixture::Absent);

    let stats = fake.stats();
    assert_eq!(stats.calls("create_token"), 1);
    assert_eq!(stats.calls("checkUserCredential"), 3);
    assert_eq!(stats.calls("createUserCredential"), 1);
    assert_eq!(stats.calls("removeUserCredential"), 2);
    assert_eq!(stats.calls("getSystem"), 2);
    assert_eq!(stats.total(), 9);
    fake.shutdown().await;
}

#[tokio::test]
async fn create_needs_a_body_and_validates_what_it_would_store() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    let url = |system: &str, query: &str| {
        format!("{base}/v3/systems/credential/{system}/user/{USER}{query}")
    };

    // The service does not itself refuse TMS keys on a PKI_KEYS system; it
    // validates with the default method, finds no key pair, and stores nothing.
    let system = get_system(&http, &base, &token, "corral.pki").await;
    assert_eq!(system.result()["defaultAuthnMethod"], "PKI_KEYS");
    let refused = create_tms(&http, &base, &token, "corral.pki").await;
    refused.expect_envelope(401, "SYSAPI_CRED_VALID_FAIL");
    assert!(
        refused.message().contains("Message: SYSLIB_CRED_NOT_FOUND"),
        "{}",
        refused.message()
    );
    assert_eq!(fake.credential(USER, "corral.pki"), CredFixture::Absent);

    let post = |u: String| http.post(u).header("X-Tapis-Token", &token);
    // An empty or non-JSON body fails the JSON validator: a
    // WebApplicationException, so 500.
    for bad in ["", "not json", "[]"] {
        send(post(url("ls6", "?createTmsKeys=true")).body(bad))
            .await
            .expect_envelope(500, "SYSAPI_CRED_JSON_INVALID");
    }
    // `{}` without createTmsKeys carries no credential to validate.
    for query in ["", "?createTmsKeys=false"] {
        send(post(url("ls6", query)).body("{}"))
            .await
            .expect_envelope(401, "SYSAPI_CRED_VALID_FAIL");
    }
    assert_eq!(fake.credential(USER, "ls6"), CredFixture::Absent);
    // Any spelling of true works.
    send(post(url("ls6", "?createTmsKeys=TRUE")).body("{}"))
        .await
        .expect_envelope(201, "SYSAPI_CRED_UPDATED");
    // Explicit keys work without TMS.
    send(post(url("corral.pki", "")).json(&json!({"privateKey": "k", "publicKey": "p"})))
        .await
        .expect_envelope(201, "SYSAPI_CRED_UPDATED");
    assert_eq!(fake.credential(USER, "corral.pki"), CredFixture::Present);
    fake.shutdown().await;
}

#[tokio::test]
async fn refused_tms_creation_is_a_wrapped_500() {
    let config = FakeConfig {
        systems: vec![
            FakeSystem::tms("ls6", "ls6.tacc.utexas.edu"),
            FakeSystem::tms("bucket", "s3.example.org").system_type("S3"),
            FakeSystem::tms("shared", "shared.example.org").static_user("wma_prtl"),
        ],
        ..FakeConfig::default()
    };
    let Session {
        fake,
        http,
        base,
        token,
    } = session_with(config).await;
    for (system, key) in [
        (
            "bucket",
            "SYSLIB_CRED_TMS_KEYS_INVALID_SYS_TYPE Creation of TMS keys not supported for system type.",
        ),
        (
            "shared",
            "SYSLIB_CRED_TMS_KEYS_NOT_ALLOWED Creation of TMS keys with loginUser mapping or static effectiveUserId not supported.",
        ),
    ] {
        let reply = create_tms(&http, &base, &token, system).await;
        reply.expect_envelope(
            500,
            "SYSAPI_CRED_ERROR Unable to operate on credential for system. jwtTenant: designsafe",
        );
        assert_eq!(reply.json()["status"], "Internal Server Error");
        assert!(
            reply
                .message()
                .contains(&format!("Operation: createUserCredential Error: {key}")),
            "{}",
            reply.message()
        );
        assert_eq!(fake.credential(USER, system), CredFixture::Absent);
    }
    // A loginUser mapping is refused the same way.
    let reply = send(
        http.post(format!(
            "{base}/v3/systems/credential/ls6/user/{USER}?createTmsKeys=true"
        ))
        .header("X-Tapis-Token", &token)
        .json(&json!({"loginUser": "someone"})),
    )
    .await;
    reply.expect_envelope(500, "SYSAPI_CRED_ERROR");
    assert!(
        reply.message().contains("SYSLIB_CRED_TMS_KEYS_NOT_ALLOWED")
            && reply
                .message()
                .contains("LoginUser: someone IsStaticEffectiveUser: false"),
        "{}",
        reply.message()
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn unknown_systems_are_404() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    check(&http, &base, &token, "nope")
        .await
        .expect_envelope(404, "SYSAPI_NOSYSTEM");
    create_tms(&http, &base, &token, "nope")
        .await
        .expect_envelope(404, "SYSAPI_NOSYSTEM");
    delete(&http, &base, &token, "nope")
        .await
        .expect_envelope(404, "SYSAPI_NOSYSTEM");
    let missing = check(&http, &base, &token, "nope").await;
    assert!(
        missing
            .message()
            .ends_with("System: nope Operation: checkUserCredential"),
        "{}",
        missing.message()
    );
    // getSystem says it differently, through the exception mapper.
    let reply = get_system(&http, &base, &token, "nope").await;
    reply.expect_envelope(404, "SYSAPI_NOT_FOUND Record not found.");
    assert_eq!(reply.json()["status"], "Not Found");
    fake.shutdown().await;
}

#[tokio::test]
async fn stored_credentials_can_fail_validation() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;

    // Through the control API ...
    assert_eq!(
        control(
            &http,
            &format!("{base}/_fake/credentials"),
            json!({"user": USER, "system": "ls6", "state": "rejected"})
        )
        .await,
        204
    );
    let rejected = check(&http, &base, &token, "ls6").await;
    rejected.expect_envelope(401, "SYSAPI_CRED_VALID_FAIL");
    assert!(
        rejected
            .message()
            .contains("Message: SYSLIB_CRED_VALID_FAIL"),
        "{}",
        rejected.message()
    );

    // ... and the library.
    fake.set_credential(USER, "frontera", CredFixture::ConnFail);
    let unreachable = check(&http, &base, &token, "frontera").await;
    unreachable.expect_envelope(401, "SYSAPI_CRED_VALID_FAIL");
    assert!(
        unreachable
            .message()
            .contains("Message: SYSLIB_CRED_CONN_FAIL"),
        "{}",
        unreachable.message()
    );

    let listed: Vec<CredentialEntry> = get_json(&http, &format!("{base}/_fake/credentials")).await;
    assert_eq!(
        listed,
        vec![
            CredentialEntry {
                user: USER.into(),
                system: "frontera".into(),
                state: CredFixture::ConnFail
            },
            CredentialEntry {
                user: USER.into(),
                system: "ls6".into(),
                state: CredFixture::Rejected
            },
        ]
    );

    // Incomplete credentials and kinds Tapis cannot validate have their own
    // inner keys.
    fake.set_credential(USER, "stampede3", CredFixture::Incomplete);
    fake.set_credential(
        USER,
        "designsafe.storage.default",
        CredFixture::NotSupported,
    );
    for (system, inner) in [
        (
            "stampede3",
            "SYSLIB_CRED_NOT_FOUND Credential not found for operation.",
        ),
        (
            "designsafe.storage.default",
            "SYSLIB_CRED_NOT_SUPPORTED Credential validation failed. Not supported for system type.",
        ),
    ] {
        let reply = check(&http, &base, &token, system).await;
        reply.expect_envelope(401, "SYSAPI_CRED_VALID_FAIL Credential validation failed.");
        assert!(
            reply.message().contains(&format!("Message: {inner}")),
            "{}",
            reply.message()
        );
    }
    fake.set_credential(USER, "stampede3", CredFixture::Absent);
    fake.set_credential(USER, "designsafe.storage.default", CredFixture::Absent);

    // Creating overwrites rejected keys.
    create_tms(&http, &base, &token, "ls6")
        .await
        .expect_envelope(201, "SYSAPI_CRED_UPDATED");
    check(&http, &base, &token, "ls6")
        .await
        .expect_envelope(200, "SYSAPI_CRED_OK");

    // Typos in the control API are caught.
    assert_eq!(
        control(
            &http,
            &format!("{base}/_fake/credentials"),
            json!({"user": USER, "system": "lsix", "state": "present"})
        )
        .await,
        404
    );
    assert_eq!(
        control(
            &http,
            &format!("{base}/_fake/credentials"),
            json!({"user": USER, "system": "ls6", "state": "great"})
        )
        .await,
        400
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn other_users_are_403_and_unreadable_systems_500() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;

    let someone_else = format!("{base}/v3/systems/credential/ls6/user/someone/check");
    let reply = send(http.post(&someone_else).header("X-Tapis-Token", &token)).await;
    reply.expect_envelope(403, "SYSLIB_UNAUTH Permission denied.");
    assert!(
        reply
            .message()
            .ends_with("System: ls6 Operation: checkCred")
    );

    assert_eq!(
        control(
            &http,
            &format!("{base}/_fake/forbid"),
            json!({"user": USER, "system": "frontera"})
        )
        .await,
        204
    );
    // The existence check swallows the ForbiddenException into a 500 for every
    // credential endpoint; getSystem lets it through as 403.
    let unreadable = check(&http, &base, &token, "frontera").await;
    unreadable.expect_envelope(500, "SYSAPI_CHECK_ERROR Unable to check for system.");
    assert_eq!(unreadable.json()["status"], "error");
    assert!(
        unreadable
            .message()
            .contains("Operation: checkUserCredential Error: SYSLIB_UNAUTH Permission denied."),
        "{}",
        unreadable.message()
    );
    create_tms(&http, &base, &token, "frontera")
        .await
        .expect_envelope(500, "SYSAPI_CHECK_ERROR");
    delete(&http, &base, &token, "frontera")
        .await
        .expect_envelope(500, "SYSAPI_CHECK_ERROR");
    get_system(&http, &base, &token, "frontera")
        .await
        .expect_envelope(403, "SYSLIB_UNAUTH");
    fake.set_forbidden(USER, "frontera", false);
    check(&http, &base, &token, "frontera")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    fake.shutdown().await;

    // A tenant-admin style configuration may act for others.
    let config = FakeConfig {
        allow_cross_user: true,
        ..FakeConfig::default()
    };
    let fake = FakeTapis::start(config).await.expect("starts");
    let token = login(&http, &fake).await;
    let someone_else = format!(
        "{}/v3/systems/credential/ls6/user/someone/check",
        fake.base_url()
    );
    send(http.post(&someone_else).header("X-Tapis-Token", &token))
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    fake.shutdown().await;
}

#[tokio::test]
async fn systems_carry_what_clients_read() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    for (id, method, can_exec) in [
        ("stampede3", "TMS_KEYS", true),
        ("ls6", "TMS_KEYS", true),
        ("frontera", "TMS_KEYS", true),
        ("designsafe.storage.default", "TMS_KEYS", false),
        ("corral.pki", "PKI_KEYS", false),
    ] {
        let reply = get_system(&http, &base, &token, id).await;
        reply.expect_envelope(200, "TAPIS_FOUND");
        let s = reply.result();
        assert_eq!(s["id"], id);
        assert_eq!(s["defaultAuthnMethod"], method);
        assert_eq!(s["canExec"], can_exec);
        assert_eq!(s["enabled"], true);
        assert_eq!(s["tenant"], "designsafe");
        assert_eq!(s["effectiveUserId"], "${apiUserId}");
        assert_eq!(s["systemType"], "LINUX");
        assert!(s["host"].is_string() && s["owner"].is_string(), "{s}");
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn extra_systems_for_load_tests() {
    let config = FakeConfig {
        extra_tms_systems: 10_000,
        ..FakeConfig::default()
    };
    assert_eq!(config.all_systems().len(), 10_005);
    let Session {
        fake,
        http,
        base,
        token,
    } = session_with(config).await;
    for id in ["sys0000", "sys9999"] {
        create_tms(&http, &base, &token, id)
            .await
            .expect_envelope(201, "SYSAPI_CRED_UPDATED");
        check(&http, &base, &token, id)
            .await
            .expect_envelope(200, "SYSAPI_CRED_OK");
    }
    check(&http, &base, &token, "sys10000")
        .await
        .expect_envelope(404, "SYSAPI_NOSYSTEM");
    fake.shutdown().await;

    let small = FakeConfig {
        extra_tms_systems: 50,
        ..FakeConfig::default()
    };
    let ids: Vec<String> = small.all_systems().into_iter().map(|s| s.id).collect();
    assert_eq!(ids[5], "sys0000");
    assert_eq!(ids.last().map(String::as_str), Some("sys0049"));
}

#[tokio::test]
async fn tenants_and_sites_point_at_the_fake() {
    let fake = start().await;
    let http = http();
    let base = fake.base_url();

    let sites = send(http.get(format!("{base}/v3/sites"))).await;
    sites.expect_envelope(200, "TENANTS_");
    let site = &sites.result()[0];
    assert_eq!(site["base_url"], base.as_str());
    assert_eq!(site["primary"], true);
    for field in [
        "site_id",
        "tenant_base_url_template",
        "site_admin_tenant_id",
        "services",
    ] {
        assert!(!site[field].is_null(), "{field} in {site}");
    }

    let tenants = send(http.get(format!("{base}/v3/tenants"))).await;
    tenants.expect_envelope(200, "TENANTS_");
    let tenant = &tenants.result()[0];
    assert_eq!(tenant["tenant_id"], "designsafe");
    assert_eq!(tenant["base_url"], base.as_str());
    for field in [
        "site_id",
        "public_key",
        "token_service",
        "security_kernel",
        "authenticator",
        "status",
    ] {
        assert!(tenant[field].is_string(), "{field} in {tenant}");
    }
    send(http.get(format!("{base}/v3/tenants/designsafe")))
        .await
        .expect_envelope(200, "TENANTS_");
    send(http.get(format!("{base}/v3/tenants/other")))
        .await
        .expect_envelope(404, "TENANTS_NOT_FOUND");
    send(http.get(format!("{base}/v3/systems/healthcheck")))
        .await
        .expect_envelope(200, "TAPIS_HEALTHY");
    send(http.get(format!("{base}/v3/no/such/thing")))
        .await
        .expect_envelope(404, "TAPIS_NOT_FOUND");

    let stats = fake.stats();
    for op in ["list_sites", "list_tenants", "healthCheck", "unmatched"] {
        assert_eq!(stats.calls(op), 1, "{op}: {stats:?}");
    }
    assert_eq!(stats.calls("get_tenant"), 2);
    fake.shutdown().await;
}

#[tokio::test]
async fn stats_and_reset_through_the_control_api() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    check(&http, &base, &token, "ls6").await;
    check(&http, &base, "bad", "ls6").await;
    let expired = fake.mint_access_token(USER, Duration::ZERO);
    check(&http, &base, &expired, "ls6").await;

    let stats: Stats = get_json(&http, &format!("{base}/_fake/stats")).await;
    assert_eq!(stats, fake.stats());
    assert_eq!(stats.calls("checkUserCredential"), 3);
    assert_eq!(stats.calls("create_token"), 1);
    assert_eq!(stats.rejected_token, 2);
    assert_eq!(stats.expired_token, 1);
    let raw: serde_json::Value = get_json(&http, &format!("{base}/_fake/stats")).await;
    assert_eq!(raw["calls"]["checkUserCredential"], 3);
    assert_eq!(raw["rejected_token"], 2);
    assert_eq!(raw["expired_token"], 1);

    let status = http
        .delete(format!("{base}/_fake/stats"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(fake.stats(), Stats::default());

    fake.set_credential(USER, "ls6", CredFixture::Present);
    fake.set_forbidden(USER, "frontera", true);
    check(&http, &base, &token, "ls6").await;
    assert_eq!(
        control(&http, &format!("{base}/_fake/reset"), json!({})).await,
        204
    );
    assert_eq!(fake.stats(), Stats::default());
    assert!(fake.credentials().is_empty());
    // Issued access tokens outlive a reset.
    check(&http, &base, &token, "frontera")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");

    // A minted token from the control API.
    let minted: serde_json::Value = http
        .post(format!("{base}/_fake/tokens"))
        .json(&json!({"username": USER, "ttl_secs": 60}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let minted = minted["access_token"].as_str().expect("token");
    check(&http, &base, minted, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    fake.shutdown().await;
}

#[test]
fn serves_from_a_thread_for_blocking_tests() {
    let fake = FakeTapis::spawn_blocking_thread(FakeConfig::default()).expect("starts");
    let mut stream = TcpStream::connect(fake.addr()).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(
            b"GET /v3/systems/healthcheck HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n",
        )
        .expect("writes");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("reads");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("TAPIS_HEALTHY"), "{answer}");
    assert_eq!(fake.calls("healthCheck"), 1);
    let token = fake.mint_access_token(USER, Duration::from_secs(60));
    assert_eq!(claims(&token)["tapis/username"], USER);
    fake.shutdown();
}
