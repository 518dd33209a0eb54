//! Helpers shared by the fake Tapis tests: an HTTP client and envelope checks.

#![allow(dead_code)] // not every helper is used

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};

pub const USER: &str = "testuser";
pub const PASSWORD: &str = "testpass";

/// A running fake, a client, its base URL and a logged-in token for `testuser`.
pub struct Session {
    pub fake: FakeTapis,
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// A [`Session`] on the default fixture.
pub async fn session() -> Session {
    session_with(FakeConfig::default()).await
}

/// A [`Session`] on `config`.
pub async fn session_with(config: FakeConfig) -> Session {
    let fake = FakeTapis::start(config).await.expect("fake starts");
    let http = http();
    let token = login(&http, &fake).await;
    Session {
        base: fake.base_url(),
        fake,
        http,
        token,
    }
}

/// GET a JSON document (the control API).
pub async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> T {
    let response = http.get(url).send().await.expect("request succeeds");
    response.json().await.expect("JSON answer")
}

/// POST `body` to the control API; answers the status code.
pub async fn control(http: &reqwest::Client, url: &str, body: Value) -> u16 {
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("request succeeds");
    response.status().as_u16()
}

/// A fake with the default fixture.
pub async fn start() -> FakeTapis {
    FakeTapis::start(FakeConfig::default())
        .await
        .expect("fake starts")
}

/// An HTTP client with a generous overall timeout so a broken fake fails the test
/// instead of hanging it.
pub fn http() -> reqwest::Client {
    http_with_timeout(Duration::from_secs(20))
}

pub fn http_with_timeout(timeout: Duration) -> reqwest::Client {
    // reqwest is built without a default TLS provider; plain http needs none, but
    // building the client wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// A whole answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn result(&self) -> Value {
        self.json()["result"].clone()
    }

    /// Checks the status code, the Tapis envelope and that the message starts
    /// with `start`. The Python services (tapisservice `ok`/`error`) answer
    /// `status` "success"/"error" and `metadata: {}`; the Java ones add
    /// `commit` and `build`, write `metadata: null`, and when an exception
    /// mapper answered, put the HTTP reason phrase in `status`.
    pub fn expect_envelope(&self, status: u16, start: &str) -> &Self {
        assert_eq!(self.status, status, "status of {}", self.body);
        assert!(
            self.content_type.starts_with("application/json"),
            "content type {:?} of {}",
            self.content_type,
            self.body
        );
        let v = self.json();
        let outcome = if status < 400 { "success" } else { "error" };
        let java = v.get("commit").is_some();
        if java {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or_default();
            assert!(
                v["status"] == outcome || v["status"] == reason,
                "status field of {v}"
            );
            assert!(v["build"].is_string() && v["metadata"].is_null(), "{v}");
        } else {
            assert_eq!(v["status"], outcome, "{v}");
            assert!(v["metadata"].is_object(), "metadata in {v}");
        }
        let message = v["message"].as_str().expect("message is a string");
        assert!(
            message.starts_with(start),
            "message {message:?} should start with {start:?}"
        );
        assert!(v["version"].is_string(), "version in {v}");
        assert!(
            v.as_object().is_some_and(|o| o.contains_key("result")),
            "result in {v}"
        );
        self
    }

    /// Like [`Reply::expect_envelope`], and the whole message is `message`.
    pub fn expect_message(&self, status: u16, message: &str) -> &Self {
        self.expect_envelope(status, message);
        assert_eq!(self.message(), message);
        self
    }

    /// Checks the proxy's answer for a revoked token: 500 with the body of
    /// tapis-deployer's `token-revoked.json` (no `metadata`).
    pub fn expect_proxy_revoked(&self) {
        assert_eq!(self.status, 500, "{}", self.body);
        let v = self.json();
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["message"], "Token is revoked.", "{v}");
        assert!(v["result"].is_null() && v["version"].is_string(), "{v}");
    }

    /// Checks a plain-text 401 from the token filter starting with `key`.
    pub fn expect_token_error(&self, key: &str) {
        assert_eq!(self.status, 401, "{}", self.body);
        assert!(
            self.content_type.starts_with("text/plain"),
            "content type {:?}",
            self.content_type
        );
        assert!(
            self.body.starts_with(key),
            "body {:?} should start with {key}",
            self.body
        );
    }
}

/// Sends and reads the whole answer.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request succeeds");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.expect("body reads");
    Reply {
        status,
        content_type,
        body,
    }
}

/// Password grant, optionally with client credentials.
pub async fn password_login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
    client: Option<(&str, &str)>,
) -> Reply {
    let mut request = http.post(format!("{base}/v3/oauth2/tokens")).json(&json!({
        "grant_type": "password",
        "username": username,
        "password": password,
    }));
    if let Some((id, key)) = client {
        request = request.basic_auth(id, Some(key));
    }
    send(request).await
}

/// An access token for `testuser`, obtained by a real password login.
pub async fn login(http: &reqwest::Client, fake: &FakeTapis) -> String {
    let reply = password_login(http, &fake.base_url(), USER, PASSWORD, None).await;
    reply.expect_message(200, "Token created successfully.");
    reply.result()["access_token"]["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// The claims of a JWT, read without checking the signature (as clients do).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("three JWT parts");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// `POST .../credential/{system}/user/{user}/check`.
pub async fn check(http: &reqwest::Client, base: &str, token: &str, system: &str) -> Reply {
    send(
        http.post(format!(
            "{base}/v3/systems/credential/{system}/user/{USER}/check"
        ))
        .header("X-Tapis-Token", token),
    )
    .await
}

/// `POST .../credential/{system}/user/{user}?createTmsKeys=True` with body `{}`, as
/// the Python SDK sends it.
pub async fn create_tms(http: &reqwest::Client, base: &str, token: &str, system: &str) -> Reply {
    send(
        http.post(format!(
            "{base}/v3/systems/credential/{system}/user/{USER}?createTmsKeys=True"
        ))
        .header("X-Tapis-Token", token)
        .header("content-type", "application/json")
        .body("{}"),
    )
    .await
}
