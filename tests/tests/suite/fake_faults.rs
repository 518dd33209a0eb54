//! Fake Tapis: every fault kind reaches a real HTTP client as it should.

use crate::fake_common;

use std::time::{Duration, Instant};

use fake_common::*;
use serde_json::{Value, json};
use tapis_agent_tests::fake::{DEFAULT_DRIP_INTERVAL, FakeTapis, Fault, FaultKind};

/// A session with one fault armed for the next check on ls6.
async fn armed(kind: FaultKind) -> Session {
    let session = session().await;
    session.fake.inject(Fault::new("checkUserCredential", kind));
    session
}

fn check_request(http: &reqwest::Client, base: &str, token: &str) -> reqwest::RequestBuilder {
    http.post(format!(
        "{base}/v3/systems/credential/ls6/user/{USER}/check"
    ))
    .header("X-Tapis-Token", token)
}

/// After the fault is used up the next call is answered normally, and both calls
/// were counted.
async fn recovers(fake: &FakeTapis, http: &reqwest::Client, token: &str) {
    check(http, &fake.base_url(), token, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    assert_eq!(fake.calls("checkUserCredential"), 2);
    assert!(fake.pending_faults().is_empty());
}

#[tokio::test]
async fn status_faults_answer_error_envelopes() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::status(503)).await;
    check(&http, &base, &token, "ls6")
        .await
        .expect_envelope(503, "FAKE_INJECTED_FAULT");
    recovers(&fake, &http, &token).await;

    fake.inject(Fault::new(
        "checkUserCredential",
        FaultKind::Status {
            status: 429,
            retry_after: Some(1),
        },
    ));
    let response = check_request(&http, &base, &token).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    fake.shutdown().await;
}

#[tokio::test]
async fn faults_count_down_and_filter_by_system() {
    let Session {
        fake,
        http,
        base,
        token,
    } = session().await;
    fake.inject(
        Fault::new("checkUserCredential", FaultKind::status(500))
            .times(2)
            .system("frontera"),
    );
    check(&http, &base, &token, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    for _ in 0..2 {
        check(&http, &base, &token, "frontera")
            .await
            .expect_envelope(500, "FAKE_INJECTED_FAULT");
    }
    check(&http, &base, &token, "frontera")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    assert_eq!(fake.calls("checkUserCredential"), 4);

    // Through the control API, with "*" for any operation.
    let faults = format!("{base}/_fake/faults");
    assert_eq!(
        control(
            &http,
            &faults,
            json!({"operation": "*", "kind": {"status": 502}, "times": 3})
        )
        .await,
        204
    );
    let pending: Vec<Value> = get_json(&http, &faults).await;
    assert_eq!(
        pending,
        vec![json!({"operation": "*", "kind": {"status": 502}, "times": 3})]
    );
    password_login(&http, &base, USER, PASSWORD, None)
        .await
        .expect_envelope(502, "FAKE_INJECTED_FAULT");
    send(http.get(format!("{base}/v3/systems/healthcheck")))
        .await
        .expect_envelope(502, "FAKE_INJECTED_FAULT");
    let cleared = http.delete(&faults).send().await.unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(fake.pending_faults().is_empty());
    send(http.get(format!("{base}/v3/systems/healthcheck")))
        .await
        .expect_envelope(200, "TAPIS_HEALTHY");

    // Nonsense is refused with a hint.
    let bad = http
        .post(&faults)
        .json(&json!({"operation": "x", "kind": "explode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("reset_mid_body"));
    fake.shutdown().await;
}

#[tokio::test]
async fn delay_answers_late_or_times_out() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::Delay(Duration::from_millis(300))).await;
    let started = Instant::now();
    check(&http, &base, &token, "ls6")
        .await
        .expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    assert!(started.elapsed() >= Duration::from_millis(300));

    fake.inject(Fault::new(
        "checkUserCredential",
        FaultKind::Delay(Duration::from_secs(5)),
    ));
    let impatient = http_with_timeout(Duration::from_millis(200));
    let err = check_request(&impatient, &base, &token)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    fake.shutdown().await;
}

#[tokio::test]
async fn drop_closes_without_an_answer() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::Drop).await;
    let started = Instant::now();
    let err = check_request(&http, &base, &token)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_request() && !err.is_timeout(), "{err:?}");
    assert!(err.status().is_none(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    recovers(&fake, &http, &token).await;
    fake.shutdown().await;
}

#[tokio::test]
async fn reset_mid_body_breaks_the_body() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::ResetMidBody).await;
    let response = check_request(&http, &base, &token)
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(response.status(), 401);
    let err = response.bytes().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    recovers(&fake, &http, &token).await;
    fake.shutdown().await;
}

#[tokio::test]
async fn html_502_is_a_proxy_page() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::Html502).await;
    let reply = check(&http, &base, &token, "ls6").await;
    assert_eq!(reply.status, 502);
    assert!(reply.content_type.starts_with("text/html"));
    assert!(serde_json::from_str::<Value>(&reply.body).is_err());
    assert!(reply.body.contains("502 Bad Gateway"));
    recovers(&fake, &http, &token).await;
    fake.shutdown().await;
}

#[tokio::test]
async fn truncated_json_does_not_parse() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::TruncatedJson).await;
    let response = check_request(&http, &base, &token).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let err = response.json::<Value>().await.unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    recovers(&fake, &http, &token).await;
    fake.shutdown().await;
}

#[tokio::test]
async fn non_json_is_200_html() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::NonJson).await;
    let reply = check(&http, &base, &token, "ls6").await;
    assert_eq!(reply.status, 200);
    assert!(
        serde_json::from_str::<Value>(&reply.body).is_err(),
        "{}",
        reply.body
    );
    recovers(&fake, &http, &token).await;
    fake.shutdown().await;
}

#[tokio::test]
async fn hang_never_answers() {
    let Session {
        fake, base, token, ..
    } = armed(FaultKind::Hang).await;
    let impatient = http_with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = check_request(&impatient, &base, &token)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    fake.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_hanging_requests() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::Hang).await;
    let request = check_request(&http, &base, &token);
    let pending = tokio::spawn(async move { request.send().await });
    tokio::time::timeout(
        Duration::from_secs(10),
        fake.wait_for_calls("checkUserCredential", 1),
    )
    .await
    .expect("the request arrives");
    let started = Instant::now();
    fake.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let outcome = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("client sees the end")
        .expect("task");
    assert!(outcome.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn slow_drip_sends_a_valid_answer_slowly() {
    let Session {
        fake,
        http,
        base,
        token,
    } = armed(FaultKind::SlowDrip(Duration::from_millis(2))).await;
    let started = Instant::now();
    let reply = check(&http, &base, &token, "ls6").await;
    reply.expect_envelope(401, "SYSLIB_CRED_NOT_FOUND");
    // One pause between every two bytes.
    let gaps = u32::try_from(reply.body.len() - 1).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(2) * gaps);
    recovers(&fake, &http, &token).await;

    // At the default pace a short client timeout fires while the body trickles in.
    fake.inject(Fault::new(
        "checkUserCredential",
        FaultKind::SlowDrip(DEFAULT_DRIP_INTERVAL),
    ));
    let impatient = http_with_timeout(Duration::from_millis(600));
    let response = check_request(&impatient, &base, &token)
        .send()
        .await
        .expect("headers arrive at once");
    assert_eq!(response.status(), 401);
    let err = response.bytes().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    fake.shutdown().await;
}
