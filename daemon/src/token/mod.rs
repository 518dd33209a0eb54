//! The token manager: holds the login, hands out valid access tokens, and
//! refreshes them — one refresh at a time, however many callers wait.

mod export;
mod login;
mod refresher;
mod stored;

pub use export::write_token_file;
pub use stored::Tokens;

use crate::config::Config;
use crate::errors::{self, login_required};
use crate::tapis::{ClientCreds, TapisClient, TapisError};
use crate::{clock, store};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tapis_agent_proto::{ErrorKind, ErrorReply, LoginState, TokenGrant};
use tokio::sync::{Notify, watch};

/// A token used for an upstream call stays valid at least this long (seconds).
const CALL_MIN_VALID: i64 = 60;

/// Why the current login cannot be refreshed, and the last refresh failure.
#[derive(Debug, Default)]
struct Health {
    /// Set when a new login is needed (refresh token rejected, ...).
    login_required: Option<String>,
    /// The last refresh failure, cleared by a success.
    last_error: Option<String>,
    /// Failures in a row, for the refresher's backoff.
    failures: u32,
    /// Why the last login could not be made refreshable (see `login.rs`).
    refresh_problem: Option<String>,
}

/// Shared token state. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct TokenManager {
    config: Arc<Config>,
    tapis: TapisClient,
    current: watch::Sender<Option<Arc<Tokens>>>,
    /// Held for the whole of a refresh or login: the single flight.
    refresh_lock: tokio::sync::Mutex<()>,
    health: Mutex<Health>,
    /// OAuth client used for refreshes (configured, or registered at login).
    client: Mutex<Option<ClientCreds>>,
    device: tokio::sync::Mutex<Option<login::PendingDevice>>,
    /// Wakes the refresher when the login changes.
    changed: Notify,
}

impl TokenManager {
    /// Loads the stored login, if any.
    pub fn load(config: Arc<Config>, tapis: TapisClient) -> Self {
        let tokens = stored::load_tokens(&config.state_dir).map(Arc::new);
        let client = match (&config.client_id, &config.client_key) {
            (Some(id), Some(key)) => Some(ClientCreds {
                client_id: id.clone(),
                client_key: key.clone(),
            }),
            _ => stored::load_client(&config.state_dir).map(|c| c.creds),
        };
        if let Some(t) = &tokens {
            tracing::info!(user = %t.username, expires_in = t.remaining(clock::now()), refresh = t.refresh.is_some(), "loaded stored login");
        }
        Self {
            config,
            tapis,
            current: watch::Sender::new(tokens),
            refresh_lock: tokio::sync::Mutex::new(()),
            health: Mutex::new(Health::default()),
            client: Mutex::new(client),
            device: tokio::sync::Mutex::new(None),
            changed: Notify::new(),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn client_creds(&self) -> Option<ClientCreds> {
        self.client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current login, if any (may be expired).
    pub fn current(&self) -> Option<Arc<Tokens>> {
        self.current.borrow().clone()
    }

    /// Username of the current login.
    pub fn username(&self) -> Option<String> {
        self.current.borrow().as_ref().map(|t| t.username.clone())
    }

    /// A token valid for at least `min_valid`, refreshing when needed.
    pub async fn token(&self, min_valid: Duration) -> Result<TokenGrant, ErrorReply> {
        let need = i64::try_from(min_valid.as_secs()).unwrap_or(i64::MAX);
        if let Some(grant) = self.valid_for(need) {
            return Ok(grant);
        }
        let _flight = self.refresh_lock.lock().await;
        // Someone else may have refreshed while we waited.
        if let Some(grant) = self.valid_for(need) {
            return Ok(grant);
        }
        let Some(tokens) = self.current() else {
            return Err(login_required("not logged in"));
        };
        // Tapis already refused the refresh token: don't ask again per caller.
        if let Some(reason) = self.health().login_required.clone() {
            return Err(login_required(reason));
        }
        let now = clock::now();
        if !tokens.can_refresh(now) {
            let why = if tokens.remaining(now) <= 0 {
                "the access token has expired and cannot be refreshed".to_owned()
            } else {
                format!(
                    "the access token is valid for {} s only, less than the {need} s asked, and cannot be refreshed",
                    tokens.remaining(now)
                )
            };
            return Err(login_required(why));
        }
        if tokens.lifetime() < need && now - tokens.access_issued_at < 60 {
            return Err(too_long(need, tokens.lifetime()));
        }
        self.refresh_locked().await?;
        self.valid_for(need).ok_or_else(|| {
            let lifetime = self.current().map(|t| t.lifetime()).unwrap_or(0);
            too_long(need, lifetime)
        })
    }

    /// A token for one upstream call: valid for at least a minute, or half
    /// the token lifetime when Tapis issues shorter tokens than that — but
    /// at least 2 s, since expiry is counted in whole seconds and "1 s
    /// left" may mean a few milliseconds.
    pub async fn token_for_call(&self) -> Result<TokenGrant, ErrorReply> {
        let lifetime = self.current().map(|t| t.lifetime()).unwrap_or(0);
        let need = (lifetime / 2).clamp(2, CALL_MIN_VALID);
        self.token(Duration::from_secs(need as u64)).await
    }

    fn valid_for(&self, need: i64) -> Option<TokenGrant> {
        let cur = self.current.borrow();
        let t = cur.as_ref()?;
        (t.remaining(clock::now()) >= need.max(1)).then(|| TokenGrant {
            access_token: t.access.clone(),
            expires_at: t.access_expires_at,
            username: t.username.clone(),
        })
    }

    /// Called when Tapis refused `rejected` as a token: refreshes unless
    /// someone already replaced it. Returns the token to retry with.
    pub async fn token_after_rejection(
        &self,
        rejected: &TokenGrant,
    ) -> Result<TokenGrant, ErrorReply> {
        let _flight = self.refresh_lock.lock().await;
        if let Some(cur) = self.current()
            && cur.access != rejected.access_token
            && cur.remaining(clock::now()) > 0
        {
            return self
                .valid_for(1)
                .ok_or_else(|| login_required("token expired"));
        }
        match self.current() {
            Some(t) if t.can_refresh(clock::now()) => {
                self.refresh_locked().await?;
                self.valid_for(1)
                    .ok_or_else(|| login_required("Tapis refused the refreshed token"))
            }
            _ => Err(login_required(
                "Tapis refused the access token and it cannot be refreshed",
            )),
        }
    }

    /// One refresh (caller holds `refresh_lock`), with retries of transient
    /// failures inside the request deadline.
    async fn refresh_locked(&self) -> Result<(), ErrorReply> {
        let deadline = tokio::time::Instant::now() + self.config.request_deadline;
        let backoff = crate::tapis::Backoff {
            retries: self.config.retries,
            base: self.config.retry_base,
        };
        let mut attempt = 0;
        loop {
            match self.refresh_once().await {
                Ok(()) => return Ok(()),
                Err(RefreshError::Fatal(e)) => return Err(e),
                Err(RefreshError::Transient(e)) => {
                    let delay = backoff.delay(attempt);
                    if attempt >= self.config.retries
                        || tokio::time::Instant::now() + delay >= deadline
                    {
                        return Err(errors::from_tapis("refresh the access token", &e));
                    }
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn refresh_once(&self) -> Result<(), RefreshError> {
        let Some(tokens) = self.current() else {
            return Err(RefreshError::Fatal(login_required("not logged in")));
        };
        let (Some(refresh), Some(client)) = (&tokens.refresh, self.client_creds()) else {
            return Err(RefreshError::Fatal(login_required(
                "no refresh token: log in again",
            )));
        };
        tracing::debug!(user = %tokens.username, "refreshing access token");
        match self.tapis.refresh(refresh, &client).await {
            Ok(set) => {
                let mut fresh = Tokens::from_set(set).map_err(|e| {
                    RefreshError::Fatal(ErrorReply::new(
                        ErrorKind::TapisUnavailable,
                        format!("refresh the access token: {e}"),
                    ))
                })?;
                if fresh.username.is_empty() {
                    fresh.username = tokens.username.clone();
                }
                // Tapis does not rotate: an answer without a new refresh
                // token leaves the old one valid.
                if fresh.refresh.is_none() {
                    fresh.refresh.clone_from(&tokens.refresh);
                    fresh.refresh_expires_at = tokens.refresh_expires_at;
                }
                // Rotation: the old refresh token is dead now, so the new one
                // goes to disk before anything uses the new access token.
                self.install(fresh);
                let mut h = self.health();
                h.last_error = None;
                h.failures = 0;
                Ok(())
            }
            Err(e) if e.is_transient() => {
                let mut h = self.health();
                h.last_error = Some(e.to_string());
                h.failures += 1;
                Err(RefreshError::Transient(e))
            }
            Err(e) => {
                let reason = format!("Tapis refused the refresh token ({e})");
                tracing::warn!(user = %tokens.username, "{reason}; a new login is needed");
                let mut h = self.health();
                h.login_required = Some(reason.clone());
                h.last_error = Some(e.to_string());
                Err(RefreshError::Fatal(login_required(reason)))
            }
        }
    }

    /// Stores and publishes a new login or refreshed tokens.
    fn install(&self, tokens: Tokens) {
        if let Err(e) = stored::save_tokens(&self.config.state_dir, &tokens) {
            tracing::error!(error = %e, "cannot store tokens; they will be lost on restart");
        }
        if let Some(path) = &self.config.export_token_file
            && let Err(e) = write_token_file(path, &tokens)
        {
            tracing::warn!(file = %path.display(), error = %e, "cannot export the token file");
        }
        self.health().login_required = None;
        self.current.send_replace(Some(Arc::new(tokens)));
        self.changed.notify_one();
    }

    /// Login and token state for `status`.
    pub fn login_state(&self) -> LoginState {
        let Some(t) = self.current() else {
            return LoginState::LoggedOut;
        };
        let now = clock::now();
        let health = self.health();
        if let Some(reason) = &health.login_required {
            return LoginState::LoginRequired {
                username: Some(t.username.clone()),
                reason: reason.clone(),
            };
        }
        if t.remaining(now) <= 0 && !t.can_refresh(now) {
            return LoginState::LoginRequired {
                username: Some(t.username.clone()),
                reason: "the access token has expired and cannot be refreshed".into(),
            };
        }
        LoginState::LoggedIn {
            username: t.username.clone(),
            tenant: t.tenant.clone(),
            expires_at: t.access_expires_at,
            has_refresh_token: t.refresh.is_some(),
            refresh_expires_at: t.refresh_expires_at,
            next_refresh_at: self.next_refresh_at(&t, now),
            last_refresh_error: health.last_error.clone(),
            refresh_problem: self.refresh_problem(&t, &health),
        }
    }

    /// When the refresher plans to refresh `t`, Unix seconds.
    fn next_refresh_at(&self, t: &Tokens, now: i64) -> Option<i64> {
        if !t.can_refresh(now) || self.client_creds().is_none() {
            return None;
        }
        let lifetime = Duration::from_secs(t.lifetime().max(1) as u64);
        // Expiry has one-second resolution: refresh at least a second early.
        let margin = (self.config.margin_for(lifetime).as_secs() as i64).max(1);
        Some(t.access_expires_at - margin)
    }

    /// Forgets the login without contacting Tapis (used by logout).
    fn clear(&self) {
        if let Err(e) = stored::delete_tokens(&self.config.state_dir) {
            tracing::error!(error = %e, "cannot delete stored tokens");
        }
        self.health().login_required = None;
        self.health().last_error = None;
        self.health().refresh_problem = None;
        self.current.send_replace(None);
        self.changed.notify_one();
    }

    /// Writes the current token to an OpsUtils token file.
    pub fn export(&self, path: &std::path::Path) -> Result<i64, ErrorReply> {
        let t = self
            .current()
            .filter(|t| t.remaining(clock::now()) > 0)
            .ok_or_else(|| login_required("no valid token to export"))?;
        write_token_file(path, &t).map_err(|e| {
            ErrorReply::new(ErrorKind::Other, format!("write {}: {e}", path.display()))
        })?;
        Ok(t.access_expires_at)
    }
}

enum RefreshError {
    Transient(TapisError),
    Fatal(ErrorReply),
}

fn too_long(need: i64, lifetime: i64) -> ErrorReply {
    ErrorReply::new(
        ErrorKind::Usage,
        format!(
            "Tapis issues tokens valid for {lifetime} s; a token valid for {need} s cannot be had"
        ),
    )
    .with_hint("ask for less with --min-valid")
}

/// Ensures the state directory exists with safe permissions.
pub fn prepare_state_dir(config: &Config) -> std::io::Result<()> {
    store::ensure_private_dir(&config.state_dir)
}
