//! A small typed client for the Tapis calls the agent makes.

mod error;
mod http;

pub use error::{TapisError, snippet};
pub use http::Backoff;

use crate::config::Config;
use crate::jwt;
use http::{Retry, send};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use tapis_agent_proto::Secret;

/// An OAuth client's id and key (HTTP Basic auth on the token endpoint).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ClientCreds {
    /// Client id.
    pub client_id: String,
    /// Client key (redacted in `Debug`).
    pub client_key: Secret,
}

/// Tokens from a login or refresh.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token.
    pub access: Secret,
    /// Its expiry, Unix seconds (from the JWT's `exp`).
    pub access_expires_at: i64,
    /// Its issue time, Unix seconds.
    pub access_issued_at: i64,
    /// A refresh token, when Tapis issued one.
    pub refresh: Option<Secret>,
    /// The refresh token's expiry, Unix seconds, when known.
    pub refresh_expires_at: Option<i64>,
}

/// A device-code login in progress.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    /// Code the agent polls with (kept secret).
    pub device_code: Secret,
    /// Code the user types.
    pub user_code: String,
    /// Page where the user types it.
    pub verification_uri: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// What a device-code poll found.
#[derive(Debug)]
pub enum DevicePoll {
    /// Not approved yet.
    Pending,
    /// Approved: here are the tokens.
    Done(TokenSet),
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TapisClient {
    http: reqwest::Client,
    base: String,
    backoff: Backoff,
    timeout: Duration,
}

impl TapisClient {
    /// Builds a client from the config's base URL and timeouts.
    pub fn new(config: &Config) -> Result<Self, TapisError> {
        // reqwest is built without a bundled crypto provider; use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.http_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("tapis-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TapisError::Protocol(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: config.base_url.clone(),
            backoff: Backoff {
                retries: config.retries,
                base: config.retry_base,
            },
            timeout: config.http_timeout,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn cred_url(&self, system: &str, user: &str) -> String {
        self.url(&format!(
            "/v3/systems/credential/{}/user/{}",
            encode(system),
            encode(user)
        ))
    }

    async fn call(
        &self,
        retry: Retry,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<http::Answer, TapisError> {
        send(|| make(&self.http), retry, self.backoff, self.timeout).await
    }

    /// URL of the systems service's health check.
    pub fn healthcheck_url(&self) -> String {
        self.url("/v3/systems/healthcheck")
    }

    /// `GET /v3/systems/healthcheck`, once (a retry would hide the latency
    /// being measured): how long Tapis took to answer.
    pub async fn healthcheck(&self) -> Result<Duration, TapisError> {
        let url = self.healthcheck_url();
        let start = std::time::Instant::now();
        self.call(Retry::Never, |c| c.get(&url)).await?;
        Ok(start.elapsed())
    }

    /// `POST .../check`: `Ok` means credentials are present and accepted.
    pub async fn check(&self, token: &Secret, system: &str, user: &str) -> Result<(), TapisError> {
        let url = format!("{}/check", self.cred_url(system, user));
        self.call(Retry::Safe, |c| {
            c.post(&url).header("X-Tapis-Token", token_header(token))
        })
        .await
        .map(drop)
    }

    /// `GET /v3/systems/{id}`: the system's default authentication method.
    pub async fn default_authn_method(
        &self,
        token: &Secret,
        system: &str,
    ) -> Result<String, TapisError> {
        #[derive(Deserialize)]
        struct System {
            #[serde(rename = "defaultAuthnMethod", default)]
            default_authn_method: Option<String>,
        }
        let url = self.url(&format!("/v3/systems/{}", encode(system)));
        let sys: System = self
            .call(Retry::Safe, |c| {
                c.get(&url).header("X-Tapis-Token", token_header(token))
            })
            .await?
            .result()?;
        Ok(sys.default_authn_method.unwrap_or_default())
    }

    /// `POST .../user/{user}?createTmsKeys=true` with body `{}`. Never retried:
    /// on an unknown outcome the caller checks again.
    pub async fn create_tms(
        &self,
        token: &Secret,
        system: &str,
        user: &str,
    ) -> Result<(), TapisError> {
        let url = self.cred_url(system, user);
        self.call(Retry::Never, |c| {
            c.post(&url)
                .query(&[("createTmsKeys", "true")])
                .header("X-Tapis-Token", token_header(token))
                .json(&json!({}))
        })
        .await
        .map(drop)
    }

    /// `DELETE .../user/{user}`. Idempotent, so retried.
    pub async fn remove(&self, token: &Secret, system: &str, user: &str) -> Result<(), TapisError> {
        let url = self.cred_url(system, user);
        self.call(Retry::Safe, |c| {
            c.delete(&url).header("X-Tapis-Token", token_header(token))
        })
        .await
        .map(drop)
    }

    /// Password grant, through `client` when given (only then does Tapis
    /// issue a refresh token).
    pub async fn password_login(
        &self,
        username: &str,
        password: &Secret,
        client: Option<&ClientCreds>,
    ) -> Result<TokenSet, TapisError> {
        let url = self.url("/v3/oauth2/tokens");
        self.call(Retry::Safe, |c| {
            let req = c.post(&url).json(&json!({
                "grant_type": "password",
                "username": username,
                "password": password.expose(),
            }));
            with_client(req, client)
        })
        .await?
        .result::<TokenResult>()?
        .into_set()
    }

    /// Refresh grant (client Basic auth required). Only connection failures
    /// before anything was sent are worth repeating, since a refresh rotates
    /// the refresh token; the token manager handles retries itself.
    pub async fn refresh(
        &self,
        refresh: &Secret,
        client: &ClientCreds,
    ) -> Result<TokenSet, TapisError> {
        let url = self.url("/v3/oauth2/tokens");
        self.call(Retry::Never, |c| {
            let req = c.post(&url).json(&json!({
                "grant_type": "refresh_token",
                "refresh_token": refresh.expose(),
            }));
            with_client(req, Some(client))
        })
        .await?
        .result::<TokenResult>()?
        .into_set()
    }

    /// `POST /v3/oauth2/clients`: registers an OAuth client owned by the user.
    pub async fn create_client(
        &self,
        token: &Secret,
        client: &ClientCreds,
        display_name: &str,
    ) -> Result<(), TapisError> {
        let url = self.url("/v3/oauth2/clients");
        self.call(Retry::Never, |c| {
            c.post(&url)
                .header("X-Tapis-Token", token_header(token))
                .json(&json!({
                    "client_id": client.client_id,
                    "client_key": client.client_key.expose(),
                    "display_name": display_name,
                    "description": "OAuth client of tapis-agent, used to refresh tokens",
                }))
        })
        .await
        .map(drop)
    }

    /// `POST /v3/oauth2/tokens/revoke`.
    pub async fn revoke_token(&self, token: &Secret) -> Result<(), TapisError> {
        let url = self.url("/v3/oauth2/tokens/revoke");
        self.call(Retry::Safe, |c| {
            c.post(&url).json(&json!({ "token": token.expose() }))
        })
        .await
        .map(drop)
    }

    /// `POST /v3/oauth2/device/code`.
    pub async fn device_code(&self, client_id: &str) -> Result<DeviceGrant, TapisError> {
        #[derive(Deserialize)]
        struct Code {
            device_code: String,
            user_code: String,
            verification_uri: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let url = self.url("/v3/oauth2/device/code");
        let code: Code = self
            .call(Retry::Safe, |c| {
                c.post(&url).json(&json!({ "client_id": client_id }))
            })
            .await?
            .result()?;
        Ok(DeviceGrant {
            device_code: Secret::new(code.device_code),
            user_code: code.user_code,
            verification_uri: code.verification_uri,
            expires_in: code.expires_in.unwrap_or(600),
        })
    }

    /// Device-code grant poll: a 400 means "not approved yet".
    pub async fn device_token(
        &self,
        device_code: &Secret,
        client: &ClientCreds,
    ) -> Result<DevicePoll, TapisError> {
        let url = self.url("/v3/oauth2/tokens");
        let answer = self
            .call(Retry::Safe, |c| {
                let req = c.post(&url).json(&json!({
                    "grant_type": "device_code",
                    "device_code": device_code.expose(),
                    "client_id": client.client_id,
                }));
                with_client(req, Some(client))
            })
            .await;
        match answer {
            Ok(a) => Ok(DevicePoll::Done(a.result::<TokenResult>()?.into_set()?)),
            Err(TapisError::BadRequest(m)) if is_pending(&m) => Ok(DevicePoll::Pending),
            Err(e) => Err(e),
        }
    }
}

/// The token as a header value marked sensitive, so that no `Debug` of a
/// request (reqwest, hyper) ever prints it. A token that is not a valid
/// header value is sent empty: Tapis refuses it, and nothing echoes it.
fn token_header(token: &Secret) -> reqwest::header::HeaderValue {
    let mut value = reqwest::header::HeaderValue::from_str(token.expose())
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

fn is_pending(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not ready") || m.contains("pending")
}

fn with_client(
    req: reqwest::RequestBuilder,
    client: Option<&ClientCreds>,
) -> reqwest::RequestBuilder {
    match client {
        Some(c) => req.basic_auth(&c.client_id, Some(c.client_key.expose())),
        None => req,
    }
}

/// Percent-encodes a path segment (system ids and usernames are plain, but a
/// stray `/` or `?` must not change the URL's meaning).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct TokenResult {
    access_token: AccessPart,
    #[serde(default)]
    refresh_token: Option<RefreshPart>,
}

#[derive(Deserialize)]
struct AccessPart {
    access_token: String,
}

#[derive(Deserialize)]
struct RefreshPart {
    refresh_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

impl TokenResult {
    fn into_set(self) -> Result<TokenSet, TapisError> {
        let claims = jwt::claims(&self.access_token.access_token)
            .map_err(|e| TapisError::Protocol(format!("access token: {e}")))?;
        let now = crate::clock::now();
        let (refresh, refresh_expires_at) = match self.refresh_token {
            Some(r) => {
                let exp = jwt::claims(&r.refresh_token)
                    .map(|c| c.exp)
                    .ok()
                    .or(r.expires_in.map(|s| now + s));
                (Some(Secret::new(r.refresh_token)), exp)
            }
            None => (None, None),
        };
        Ok(TokenSet {
            access: Secret::new(self.access_token.access_token),
            access_expires_at: claims.exp,
            access_issued_at: claims.iat.unwrap_or(now),
            refresh,
            refresh_expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            encode("designsafe.storage.default"),
            "designsafe.storage.default"
        );
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn token_header_is_sensitive() {
        let v = token_header(&Secret::new("eyJ.abc.def"));
        assert!(v.is_sensitive());
        assert_eq!(v, "eyJ.abc.def");
        assert!(!format!("{v:?}").contains("abc"));
    }

    #[test]
    fn client_creds_debug_hides_key() {
        let c = ClientCreds {
            client_id: "id".into(),
            client_key: Secret::new("topsecret"),
        };
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
