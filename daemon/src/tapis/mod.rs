//! A small typed client for the Tapis calls the agent makes.

mod error;
mod fields;
mod http;
mod message;

pub use error::{TapisError, snippet};
pub use http::Backoff;
pub use message::redact;

use crate::config::Config;
use crate::jwt;
use http::{Retry, send};
use serde::Deserialize;
use serde_json::{Value, json};
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

/// How long a device code lives when the answer does not say in a readable
/// way (tapis-project/authenticator, service/models.py, `DeviceCode.CODE_TTL`).
const DEVICE_CODE_TTL: u64 = 600;

/// The shortest device-code lifetime assumed, so that clock skew between
/// Tapis and this host cannot end a login before it starts; Tapis itself says
/// when a code has really expired.
const DEVICE_CODE_MIN: u64 = 60;

/// How the agent's OAuth client is described at Tapis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// `display_name` (at most 50 characters at Tapis).
    pub display_name: String,
    /// `description` (at most 70 characters at Tapis).
    pub description: String,
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
    /// Timeout of the calls that make Tapis SSH (check, create).
    ssh_timeout: Duration,
    /// The config's clock: when a token was issued, a device code expires.
    clock: crate::clock::Clock,
}

impl TapisClient {
    /// Builds a client from the config's base URL and timeouts.
    pub fn new(config: &Config) -> Result<Self, TapisError> {
        // However the config was built: no secret goes out in clear.
        config.check_transport().map_err(TapisError::Protocol)?;
        // reqwest is built without a bundled crypto provider; use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.http_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("tapis-agent/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the password (a 307 re-sends the body)
            // and `X-Tapis-Token` (a header reqwest does not strip) to
            // another host: a 3xx is an error instead (see `http::once`).
            .redirect(reqwest::redirect::Policy::none())
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
            ssh_timeout: config.ssh_call_timeout.max(config.http_timeout),
            clock: config.clock.clone(),
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The retry settings, for callers that retry on their own terms.
    pub fn backoff(&self) -> Backoff {
        self.backoff
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

    /// A call that makes Tapis SSH to the system's host: it waits
    /// `ssh_timeout`, and a timed-out one is not repeated.
    async fn ssh_call(
        &self,
        retry: Retry,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<http::Answer, TapisError> {
        send(|| make(&self.http), retry, self.backoff, self.ssh_timeout).await
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
        self.ssh_call(Retry::NotAfterTimeout, |c| {
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
            #[serde(
                rename = "defaultAuthnMethod",
                default,
                deserialize_with = "http::text_or_none"
            )]
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
        self.ssh_call(Retry::Never, |c| {
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
        .into_set(self.clock.now())
    }

    /// Refresh grant (client Basic auth required). Never repeated here: Tapis
    /// does not rotate refresh tokens, but the agent must stay correct if it
    /// did, so the token manager decides about retries itself.
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
        .into_set(self.clock.now())
    }

    /// `POST /v3/oauth2/clients`: registers an OAuth client owned by the user.
    pub async fn create_client(
        &self,
        token: &Secret,
        client: &ClientCreds,
        info: &ClientInfo,
    ) -> Result<(), TapisError> {
        let url = self.url("/v3/oauth2/clients");
        self.call(Retry::Never, |c| {
            c.post(&url)
                .header("X-Tapis-Token", token_header(token))
                .json(&json!({
                    "client_id": client.client_id,
                    "client_key": client.client_key.expose(),
                    "display_name": info.display_name,
                    "description": info.description,
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

    /// `POST /v3/oauth2/device/code`. Its `expires_in` is an HTTP-date at
    /// Tapis (controllers.py, `DeviceCodeResource.post`, puts the code's
    /// expiry `datetime` there), seconds elsewhere: both are read.
    pub async fn device_code(&self, client_id: &str) -> Result<DeviceGrant, TapisError> {
        #[derive(Deserialize)]
        struct Code {
            device_code: String,
            #[serde(default)]
            user_code: Value,
            #[serde(default, deserialize_with = "http::text_or_none")]
            verification_uri: Option<String>,
            #[serde(default)]
            expires_in: Value,
        }
        let url = self.url("/v3/oauth2/device/code");
        let code: Code = self
            .call(Retry::Safe, |c| {
                c.post(&url).json(&json!({ "client_id": client_id }))
            })
            .await?
            .result()?;
        let user_code = match code.user_code {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(TapisError::Protocol(
                    "device code answer has no user_code".into(),
                ));
            }
        };
        let expires_in = fields::seconds_until(&code.expires_in, self.clock.now())
            .unwrap_or_else(|| {
                tracing::debug!("device code expiry unreadable; assuming the usual 600 s");
                DEVICE_CODE_TTL
            })
            .max(DEVICE_CODE_MIN);
        // Without the page the user can still find it: it is the tenant's.
        let verification_uri = code
            .verification_uri
            .unwrap_or_else(|| format!("{}/v3/oauth2/device?client_id={client_id}", self.base));
        Ok(DeviceGrant {
            device_code: Secret::new(code.device_code),
            user_code,
            verification_uri,
            expires_in,
        })
    }

    /// Device-code grant poll: 400 `device code not ready.` means the user
    /// has not entered the code yet (models.py, `DeviceCode.validate_code`).
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
            Ok(a) => Ok(DevicePoll::Done(
                a.result::<TokenResult>()?.into_set(self.clock.now())?,
            )),
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

/// "Not approved yet": Tapis's `device code not ready.`, or RFC 8628's
/// `authorization_pending` from servers that follow it.
fn is_pending(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("device code not ready") || m.contains("authorization_pending")
}

/// True when Tapis refused the OAuth client itself (unknown id or wrong key:
/// controllers.py `TokensResource.post`, 400 `Invalid client credentials: ...`),
/// as opposed to the user's password.
pub fn is_client_refused(e: &TapisError) -> bool {
    matches!(e, TapisError::BadRequest(m) | TapisError::Unauthorized(m)
        if m.starts_with("Invalid client credentials"))
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

/// `TokensResource.post`'s answer. Only the access token itself is required:
/// `expires_in`/`expires_at` of either part may be of any type or missing, and
/// a refresh part that cannot be read leaves the login unrefreshable rather
/// than failing it.
#[derive(Deserialize)]
struct TokenResult {
    access_token: AccessPart,
    #[serde(default)]
    refresh_token: Value,
}

#[derive(Deserialize)]
struct AccessPart {
    access_token: String,
    #[serde(default)]
    expires_in: Value,
}

impl TokenResult {
    /// The tokens of the answer, as of `now` (Unix seconds).
    fn into_set(self, now: i64) -> Result<TokenSet, TapisError> {
        let claims = jwt::claims(&self.access_token.access_token)
            .map_err(|e| TapisError::Protocol(format!("access token: {e}")))?;
        let refresh = self
            .refresh_token
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let refresh_expires_at = refresh.as_deref().and_then(|r| {
            jwt::claims(r).map(|c| c.exp).ok().or_else(|| {
                let secs = jwt::seconds(self.refresh_token.get("expires_in")?)?;
                Some(now + secs)
            })
        });
        Ok(TokenSet {
            access: Secret::new(self.access_token.access_token),
            access_expires_at: claims.exp,
            access_issued_at: issued_at(claims.iat, claims.exp, &self.access_token.expires_in, now),
            refresh: refresh.map(Secret::new),
            refresh_expires_at,
        })
    }
}

/// When the token was issued. Tapis JWTs carry no `iat`, so it is `exp` less
/// the answer's `expires_in` (the lifetime asked of the Tokens API), and `now`
/// when neither makes sense.
fn issued_at(iat: Option<i64>, exp: i64, expires_in: &Value, now: i64) -> i64 {
    iat.or_else(|| {
        let lifetime = jwt::seconds(expires_in).filter(|s| *s > 0)?;
        let issued = exp.checked_sub(lifetime)?;
        (issued <= now + 60).then_some(issued)
    })
    .unwrap_or(now)
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
    fn token_answers_are_read_leniently() {
        let jwt = |payload: &str| {
            use base64::Engine as _;
            let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
            format!("e30.{p}.sig")
        };
        let now = crate::clock::Clock::system().now();
        let access = jwt(&format!(r#"{{"exp":{}}}"#, now + 14_400));
        // As Tapis answers: no iat, expires_at with microseconds.
        let answer: TokenResult = serde_json::from_value(json!({
            "access_token": {"access_token": access, "expires_in": 14400,
                             "expires_at": "2026-01-02T03:04:05.123456+00:00", "jti": "j"},
            "refresh_token": {"refresh_token": jwt(&format!(r#"{{"exp":{}}}"#, now + 99)),
                              "expires_in": "soon"},
        }))
        .unwrap();
        let set = answer.into_set(now).unwrap();
        assert_eq!(set.access_expires_at - set.access_issued_at, 14_400);
        assert_eq!(set.refresh_expires_at, Some(now + 99));
        // Odd types everywhere but the token itself: still a login.
        let answer: TokenResult = serde_json::from_value(json!({
            "access_token": {"access_token": access, "expires_in": "4 hours", "expires_at": 7},
            "refresh_token": ["unexpected"],
        }))
        .unwrap();
        let set = answer.into_set(now).unwrap();
        assert!(set.refresh.is_none());
        assert!((set.access_issued_at - now).abs() <= 1);
    }

    #[test]
    fn only_tapis_client_refusals_count_as_such() {
        let refused = TapisError::BadRequest("Invalid client credentials: c, [redacted]".into());
        assert!(is_client_refused(&refused));
        let password = TapisError::BadRequest("Invalid username/password combination.".into());
        assert!(!is_client_refused(&password));
        assert!(is_pending("device code not ready."));
        assert!(!is_pending("device code not valid."));
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
