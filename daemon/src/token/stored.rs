//! The persisted login: `tokens.json` and `client.json` in the state dir.

use crate::tapis::{ClientCreds, TokenSet};
use crate::{jwt, store};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tapis_agent_proto::Secret;

const TOKENS_FILE: &str = "tokens.json";
const CLIENT_FILE: &str = "client.json";
const RETRY_FILE: &str = "refresh-retry.json";

/// A login: the tokens and who they belong to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// Tapis username.
    pub username: String,
    /// Tenant id.
    pub tenant: String,
    /// Access token.
    pub access: Secret,
    /// Its expiry, Unix seconds.
    pub access_expires_at: i64,
    /// Its issue time, Unix seconds.
    pub access_issued_at: i64,
    /// Refresh token, if any.
    pub refresh: Option<Secret>,
    /// Refresh-token expiry, Unix seconds, when known.
    pub refresh_expires_at: Option<i64>,
    /// The Tapis (base URL) that issued the login. Logins stored before
    /// this was recorded have none and are taken as the agent's own.
    #[serde(default)]
    pub base_url: Option<String>,
}

impl Tokens {
    /// Builds a login from fresh tokens; user and tenant come from the JWT.
    pub fn from_set(set: TokenSet) -> Result<Self, jwt::JwtError> {
        let claims = jwt::claims(set.access.expose())?;
        Ok(Self {
            username: claims.username.unwrap_or_default(),
            tenant: claims.tenant.unwrap_or_default(),
            access: set.access,
            access_expires_at: set.access_expires_at,
            access_issued_at: set.access_issued_at,
            refresh: set.refresh,
            refresh_expires_at: set.refresh_expires_at,
            base_url: None,
        })
    }

    /// The Tapis this login belongs to, when it is not `base_url`.
    pub fn foreign_to(&self, base_url: &str) -> Option<&str> {
        self.base_url
            .as_deref()
            .filter(|own| !same_tapis(own, base_url))
    }

    /// Seconds the access token stays valid from `now`.
    pub fn remaining(&self, now: i64) -> i64 {
        self.access_expires_at - now
    }

    /// The access token's full lifetime, seconds.
    pub fn lifetime(&self) -> i64 {
        (self.access_expires_at - self.access_issued_at).max(0)
    }

    /// Whether a refresh token exists and has not expired.
    pub fn can_refresh(&self, now: i64) -> bool {
        self.refresh.is_some() && self.refresh_expires_at.is_none_or(|e| e > now)
    }
}

/// Whether two base URLs name the same Tapis (scheme and host ignore case,
/// a trailing `/` does not count).
fn same_tapis(a: &str, b: &str) -> bool {
    let norm = |u: &str| u.trim().trim_end_matches('/').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// Refreshes that failed, shared by every agent on the state directory so
/// that together they wait between tries (no retry storm) and agree on how
/// long Tapis has refused the login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryState {
    /// The login the failures are about (see [`Version::login_id`]).
    pub login_id: u64,
    /// Failed rounds in a row.
    pub failures: u32,
    /// No agent asks Tapis again before this, Unix milliseconds.
    pub not_before_ms: i64,
    /// When Tapis first refused the refresh token (an answer that may also
    /// mean it is failing), Unix seconds; `None` while it only failed.
    pub refused_since: Option<i64>,
    /// The last failure, as shown to users (already redacted).
    pub error: String,
}

/// Reads the shared retry state; none when absent or unreadable.
pub fn read_retry(dir: &Path) -> Option<RetryState> {
    load_json(&dir.join(RETRY_FILE))
}

/// Writes the shared retry state (atomically, 0600).
pub fn write_retry(dir: &Path, state: &RetryState) -> std::io::Result<()> {
    save_json(&dir.join(RETRY_FILE), state)
}

/// Forgets the shared retry state (after a success or a new login).
pub fn clear_retry(dir: &Path) -> std::io::Result<()> {
    store::remove_if_exists(&dir.join(RETRY_FILE))
}

/// The agent's OAuth client, stored with the user it was made for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredClient {
    /// User who owns the client.
    pub username: String,
    /// Id and key.
    #[serde(flatten)]
    pub creds: ClientCreds,
}

fn load_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    match store::read_private(path) {
        Ok(None) => None,
        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable state file; starting without it");
                None
            }
        },
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring state file");
            None
        }
    }
}

fn save_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    store::write_atomic(path, &bytes)
}

/// Which write of `tokens.json` a login came from. Every agent on the
/// state directory compares these to notice what its peers wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Bumped by every write.
    pub generation: u64,
    /// Random, new for every write: tells two writes apart for sure.
    pub write_id: u64,
    /// Random, new for every login (and logout); kept by refreshes, so a
    /// refresh of an older login never replaces a newer login.
    pub login_id: u64,
}

/// What `tokens.json` holds.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Which write it is.
    pub version: Version,
    /// The login; `None` after a logout.
    pub login: Option<Tokens>,
}

/// Format of `tokens.json` since several agents share it. The first
/// format was a bare [`Tokens`], read as generation 0.
#[derive(Serialize, Deserialize)]
struct LoginFile {
    #[serde(flatten)]
    version: Version,
    /// `host pid`, for people reading the file.
    #[serde(default)]
    written_by: String,
    /// Unix seconds.
    #[serde(default)]
    written_at: i64,
    login: Option<Tokens>,
}

/// Reads `tokens.json`: `Ok(None)` when there is none.
pub fn read_login(dir: &Path) -> std::io::Result<Option<Shared>> {
    let Some(bytes) = store::read_private(&dir.join(TOKENS_FILE))? else {
        return Ok(None);
    };
    if let Ok(file) = serde_json::from_slice::<LoginFile>(&bytes) {
        return Ok(Some(Shared {
            version: file.version,
            login: file.login,
        }));
    }
    let legacy: Tokens = serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            // Not serde's text: it may quote a token.
            format!("not a login file (line {} column {})", e.line(), e.column()),
        )
    })?;
    Ok(Some(Shared {
        version: Version::default(),
        login: Some(legacy),
    }))
}

/// The login at startup; an unreadable file counts as none (with a warning).
pub fn load_login(dir: &Path) -> Option<Shared> {
    read_login(dir).unwrap_or_else(|e| {
        tracing::warn!(file = %dir.join(TOKENS_FILE).display(), error = %e, "ignoring the stored login");
        None
    })
}

/// Writes `tokens.json` as the write after `previous` (atomically, 0600).
/// `login_id` is the login it belongs to.
pub fn write_login(
    dir: &Path,
    previous: Version,
    login_id: u64,
    login: Option<&Tokens>,
) -> std::io::Result<Version> {
    let version = Version {
        generation: previous.generation + 1,
        write_id: rand::random(),
        login_id,
    };
    let file = LoginFile {
        version,
        written_by: format!("{} {}", crate::host::hostname(), std::process::id()),
        written_at: crate::clock::Clock::system().now(),
        login: login.cloned(),
    };
    save_json(&dir.join(TOKENS_FILE), &file)?;
    Ok(version)
}

/// Loads the stored OAuth client.
pub fn load_client(dir: &Path) -> Option<StoredClient> {
    load_json(&dir.join(CLIENT_FILE))
}

/// Stores the OAuth client atomically (0600).
pub fn save_client(dir: &Path, client: &StoredClient) -> std::io::Result<()> {
    save_json(&dir.join(CLIENT_FILE), client)
}

/// Deletes the stored OAuth client.
pub fn delete_client(dir: &Path) -> std::io::Result<()> {
    store::remove_if_exists(&dir.join(CLIENT_FILE))
}
