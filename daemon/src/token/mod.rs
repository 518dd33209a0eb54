//! The token manager: holds the login, hands out valid access tokens, and
//! refreshes them — one refresh at a time, however many callers wait, and
//! however many agents share the state directory.
//!
//! `tokens.json` is the login every agent on the state directory shares
//! (on HPC systems: the login node's agent and the agents of every job).
//! A refresh happens under the directory's `refresh` lock, after re-reading
//! the file: when a peer has refreshed meanwhile, its tokens are adopted
//! instead. A write replaces the file only with a login at least as fresh
//! (checked just before writing), and a refresh refused by Tapis first looks
//! whether a peer rotated the refresh token. Peers' logins and logouts are
//! noticed by re-reading the file on every refresh and every
//! [`poll_interval`](TokenManager::poll_interval).

mod export;
mod login;
mod refresher;
mod stored;

pub use export::write_token_file;
pub use login::LoggedIn;
pub use stored::Tokens;

use crate::config::Config;
use crate::errors::login_required;
use crate::store::lock::Locks;
use crate::tapis::{ClientCreds, TapisClient, TapisError};
use crate::{clock, store};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use stored::{RetryState, Shared, Version};
use tapis_agent_proto::{ErrorKind, ErrorReply, LoginState, TokenGrant};
use tokio::sync::{Notify, watch};

/// A token used for an upstream call stays valid at least this long (seconds).
const CALL_MIN_VALID: i64 = 60;
/// While refreshes fail, a token still valid this long (seconds) serves an
/// upstream call.
const CALL_LAST_RESORT: i64 = 5;
/// Failed refresh rounds before Tapis's refusals may end a login.
const REFUSALS_BEFORE_GIVING_UP: u32 = 3;
/// Longest pause between two refresh rounds while they fail.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// Name of the state-directory lock held around refreshes and logins.
const REFRESH_LOCK: &str = "refresh";
/// Longest pause between two looks at `tokens.json`.
const MAX_POLL: Duration = Duration::from_secs(30);
/// Shortest pause between two looks at `tokens.json` (very short tokens).
const MIN_POLL: Duration = Duration::from_millis(200);

/// Why the current login cannot be refreshed, and the last refresh failure.
#[derive(Debug, Default)]
struct Health {
    /// Set when a new login is needed (refresh token rejected, ...).
    login_required: Option<String>,
    /// The last refresh failure, cleared by a success.
    last_error: Option<String>,
    /// Why the last login could not be made refreshable (see `login.rs`).
    refresh_problem: Option<String>,
    /// Why the login stored in the state directory is not used: it belongs
    /// to another Tapis.
    foreign: Option<String>,
}

/// What a look at `tokens.json` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// Nothing new.
    Unchanged,
    /// A peer's login, refresh or logout was adopted.
    Adopted,
}

/// Shared token state. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct TokenManager {
    config: Arc<Config>,
    tapis: TapisClient,
    locks: Arc<Locks>,
    current: watch::Sender<Option<Arc<Tokens>>>,
    /// The write of `tokens.json` that `current` came from (or made).
    held: Mutex<Version>,
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
    pub fn load(config: Arc<Config>, tapis: TapisClient, locks: Arc<Locks>) -> Self {
        let (shared, foreign) = match stored::load_login(&config.state_dir) {
            Some(shared) => {
                let (shared, foreign) = admit(&config, shared);
                (Some(shared), foreign)
            }
            None => (None, None),
        };
        if let Some(why) = &foreign {
            tracing::warn!("{why}");
        }
        let held = shared.as_ref().map(|s| s.version).unwrap_or_default();
        let tokens = shared.and_then(|s| s.login).map(Arc::new);
        let client = load_client(&config);
        if let Some(t) = &tokens {
            tracing::info!(user = %t.username, expires_in = t.remaining(config.clock.now()), refresh = t.refresh.is_some(), "loaded stored login");
        }
        Self {
            config,
            tapis,
            locks,
            current: watch::Sender::new(tokens),
            held: Mutex::new(held),
            refresh_lock: tokio::sync::Mutex::new(()),
            health: Mutex::new(Health {
                foreign,
                ..Health::default()
            }),
            client: Mutex::new(client),
            device: tokio::sync::Mutex::new(None),
            changed: Notify::new(),
        }
    }

    /// Now, Unix seconds, on the config's clock.
    fn now(&self) -> i64 {
        self.config.clock.now()
    }

    /// Now, Unix milliseconds, on the config's clock.
    fn now_ms(&self) -> i64 {
        self.config.clock.now_ms()
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
        // Someone else (here, or a peer agent) may have refreshed meanwhile.
        self.sync();
        if let Some(grant) = self.valid_for(need) {
            return Ok(grant);
        }
        let Some(tokens) = self.current() else {
            return Err(self.not_logged_in());
        };
        // Tapis already refused the refresh token: don't ask again per caller.
        if let Some(reason) = self.health().login_required.clone() {
            return Err(login_required(reason));
        }
        let now = self.now();
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
        self.refresh_locked(|m| m.valid_for(need).is_some()).await?;
        self.valid_for(need).ok_or_else(|| {
            let lifetime = self.current().map(|t| t.lifetime()).unwrap_or(0);
            too_long(need, lifetime)
        })
    }

    /// A token for one upstream call: valid for at least a minute, or half
    /// the token lifetime when Tapis issues shorter tokens than that. While
    /// refreshes fail, the current token serves as long as it is valid.
    pub async fn token_for_call(&self) -> Result<TokenGrant, ErrorReply> {
        let lifetime = self.current().map(|t| t.lifetime()).unwrap_or(0);
        let need = (lifetime / 2).clamp(1, CALL_MIN_VALID);
        match self.token(Duration::from_secs(need as u64)).await {
            Err(e) if e.kind == ErrorKind::TapisUnavailable => {
                self.valid_for(CALL_LAST_RESORT).ok_or(e)
            }
            other => other,
        }
    }

    /// "Not logged in", or why the stored login is not used here.
    pub fn not_logged_in(&self) -> ErrorReply {
        match self.health().foreign.clone() {
            Some(why) => login_required(why),
            None => login_required("not logged in"),
        }
    }

    /// The token, if it stays valid `need` seconds (at least one) from now,
    /// counted in milliseconds: "1 s left" in whole seconds may be 1 ms.
    /// Asking for the whole lifetime is asking for a token issued this
    /// second: its expiry, in whole seconds, is less than a lifetime away.
    fn valid_for(&self, need: i64) -> Option<TokenGrant> {
        let cur = self.current.borrow();
        let t = cur.as_ref()?;
        let need = need.max(1);
        let valid = if need >= t.lifetime() {
            t.remaining(self.now()) >= need
        } else {
            t.access_expires_at.saturating_mul(1000) - self.now_ms() >= need.saturating_mul(1000)
        };
        valid.then(|| TokenGrant {
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
        self.sync();
        let replaced = |m: &Self| {
            m.current().is_some_and(|cur| {
                cur.access != rejected.access_token && cur.remaining(self.now()) > 0
            })
        };
        if replaced(self) {
            return self
                .valid_for(1)
                .ok_or_else(|| login_required("token expired"));
        }
        match self.current() {
            Some(t) if t.can_refresh(self.now()) => {
                self.refresh_locked(replaced).await?;
                self.valid_for(1)
                    .ok_or_else(|| login_required("Tapis refused the refreshed token"))
            }
            _ => Err(login_required(
                "Tapis refused the access token and it cannot be refreshed",
            )),
        }
    }

    /// Takes the state directory's refresh lock, waiting for a peer's
    /// refresh at most half the request deadline; past that (or when the
    /// lock cannot be had at all) carries on without it: the file checks
    /// keep that safe, at the cost of a second refresh.
    async fn file_lock(&self) -> Option<store::lock::Guard> {
        match self
            .locks
            .acquire(REFRESH_LOCK, self.config.request_deadline / 2)
            .await
        {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!(error = %e, "going on without the state directory's refresh lock");
                None
            }
        }
    }

    /// One refresh (caller holds `refresh_lock`) unless `done` already
    /// holds once a peer's tokens are adopted, with retries of transient
    /// failures inside the request deadline. A round that fails is recorded
    /// for every agent on the state directory (see [`RetryState`]); until
    /// its pause is over, no agent asks Tapis again.
    async fn refresh_locked(&self, done: impl Fn(&Self) -> bool) -> Result<(), ErrorReply> {
        let _file_lock = self.file_lock().await;
        // The peer that held the lock may have refreshed for us.
        if self.sync() == Synced::Adopted && done(self) {
            tracing::debug!("adopted a peer's refreshed tokens");
            return Ok(());
        }
        if let Some(retry) = self.pending_retry() {
            return Err(self.failing(&retry));
        }
        let deadline = tokio::time::Instant::now() + self.config.request_deadline;
        let backoff = crate::tapis::Backoff {
            retries: self.config.retries,
            base: self.config.retry_base,
        };
        let mut attempt = 0;
        let mut looked_again = false;
        loop {
            let (e, refused) = match self.refresh_once().await {
                Ok(()) => return Ok(()),
                Err(RefreshError::Fatal(e)) => return Err(e),
                // An issuer that rotates refresh tokens refuses the old one
                // once a peer has used it: that peer's tokens are on disk.
                Err(RefreshError::Refused(_) | RefreshError::Doubtful(_))
                    if !looked_again && self.sync() == Synced::Adopted =>
                {
                    looked_again = true;
                    if done(self) {
                        return Ok(());
                    }
                    continue;
                }
                Err(RefreshError::Refused(e)) => return Err(self.refused(e)),
                Err(RefreshError::Transient(e)) => (e, false),
                Err(RefreshError::Doubtful(e)) => (e, true),
            };
            let delay = backoff.delay(attempt);
            if attempt >= self.config.retries || tokio::time::Instant::now() + delay >= deadline {
                let retry = self.record_failure(&e, refused);
                if self.gave_up(&retry) {
                    let since = retry.refused_since.unwrap_or_default();
                    return Err(self.refused_since(e, self.now() - since));
                }
                return Err(self.failing(&retry));
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// The shared record of failed refreshes of the current login, while
    /// its pause is not over.
    fn pending_retry(&self) -> Option<RetryState> {
        let retry = stored::read_retry(&self.config.state_dir)?;
        (retry.login_id == self.held().login_id && retry.not_before_ms > self.now_ms())
            .then_some(retry)
    }

    /// Records a failed round for every agent on the state directory: one
    /// more failure, the pause before the next round (doubling from a
    /// second, jittered, at most five minutes) and, for a refusal, since when
    /// Tapis refuses.
    fn record_failure(&self, e: &TapisError, refused: bool) -> RetryState {
        let dir = &self.config.state_dir;
        let login_id = self.held().login_id;
        let previous = stored::read_retry(dir).filter(|r| r.login_id == login_id);
        let failures = previous.as_ref().map_or(0, |r| r.failures) + 1;
        let now = self.now();
        let refused_since = previous
            .and_then(|r| r.refused_since)
            .or(refused.then_some(now));
        // From a second by default (five times the first retry's delay).
        let pause = crate::tapis::Backoff {
            retries: u32::MAX,
            base: self.config.retry_base * 5,
        }
        .delay(failures.min(12))
        .min(MAX_RETRY_DELAY);
        let retry = RetryState {
            login_id,
            failures,
            not_before_ms: self.now_ms() + pause.as_millis() as i64,
            refused_since: if refused { refused_since } else { None },
            error: e.to_string(),
        };
        if let Err(err) = stored::write_retry(dir, &retry) {
            tracing::warn!(error = %err, "cannot record the failed refresh for the other agents");
        }
        tracing::warn!(error = %e, failures, pause_ms = pause.as_millis() as u64, "refresh failed; keeping the login and trying again later");
        let mut h = self.health();
        h.last_error = Some(e.to_string());
        retry
    }

    /// Whether Tapis has refused the refresh token for long enough that a
    /// person must act: `refresh_give_up` since the first refusal, the
    /// last round a refusal too, and a few rounds in all.
    fn gave_up(&self, retry: &RetryState) -> bool {
        let Some(since) = retry.refused_since else {
            return false;
        };
        retry.failures >= REFUSALS_BEFORE_GIVING_UP
            && self.now() - since >= self.config.refresh_give_up.as_secs() as i64
    }

    /// "Tapis is failing, retrying": the login is kept.
    fn failing(&self, retry: &RetryState) -> ErrorReply {
        let next = ((retry.not_before_ms - self.now_ms()).max(0) + 999) / 1000;
        let (message, hint) = match retry.refused_since {
            Some(since) => {
                let give_up = since + self.config.refresh_give_up.as_secs() as i64;
                (
                    format!(
                        "refresh the access token: {} ({} failed tries; Tapis gives this answer \
                         while it is failing too, so the login is kept; next try in {next} s)",
                        retry.error, retry.failures
                    ),
                    format!(
                        "the agent keeps trying by itself; if Tapis still refuses {}, \
                         log in again: tapis-cred login",
                        clock::in_words(give_up - self.now())
                    ),
                )
            }
            None => (
                format!(
                    "refresh the access token: {} ({} failed tries; the login is kept; next try in {next} s)",
                    retry.error, retry.failures
                ),
                "Tapis is failing; the agent keeps trying by itself".to_owned(),
            ),
        };
        ErrorReply::new(ErrorKind::TapisUnavailable, message).with_hint(hint)
    }

    async fn refresh_once(&self) -> Result<(), RefreshError> {
        let Some(tokens) = self.current() else {
            return Err(RefreshError::Fatal(login_required("not logged in")));
        };
        if self.client_creds().is_none() {
            // A peer may have registered the client since we started.
            *self.client.lock().unwrap_or_else(PoisonError::into_inner) = load_client(&self.config);
        }
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
                // With rotation the old refresh token is dead now, so the
                // new one goes to disk before anything uses the new access
                // token.
                self.install(fresh, false);
                Ok(())
            }
            Err(e) if e.is_transient() => Err(RefreshError::Transient(e)),
            Err(e) if refusal_is_final(&e) => Err(RefreshError::Refused(e)),
            Err(e) => Err(RefreshError::Doubtful(e)),
        }
    }

    /// Records that Tapis refused the refresh token: a new login is needed.
    fn refused(&self, e: TapisError) -> ErrorReply {
        self.give_up(format!("Tapis refused the refresh token ({e})"), e)
    }

    /// Records that Tapis has refused the refresh token for `secs` seconds
    /// (an answer that may also mean it was failing): a new login is needed.
    fn refused_since(&self, e: TapisError, secs: i64) -> ErrorReply {
        self.give_up(
            format!(
                "Tapis has refused the refresh token for {} ({e})",
                clock::duration_words(secs)
            ),
            e,
        )
    }

    fn give_up(&self, reason: String, e: TapisError) -> ErrorReply {
        tracing::warn!("{reason}; a new login is needed");
        let mut h = self.health();
        h.login_required = Some(reason.clone());
        h.last_error = Some(e.to_string());
        login_required(reason)
    }

    /// Re-reads `tokens.json` and adopts what a peer wrote there since the
    /// version held: a refresh, a new login, or a logout. A file that no
    /// longer exists counts as a logout.
    pub fn sync(&self) -> Synced {
        let shared = match stored::read_login(&self.config.state_dir) {
            Ok(Some(shared)) => {
                let (shared, foreign) = admit(&self.config, shared);
                self.health().foreign = foreign;
                shared
            }
            Ok(None) => Shared {
                version: Version::default(),
                login: None,
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored login; keeping the one held");
                return Synced::Unchanged;
            }
        };
        let held = *self.held();
        if shared.version == held && (shared.login.is_some() == self.current().is_some()) {
            return Synced::Unchanged;
        }
        // Our own newer write of this login failed to reach the disk:
        // going back to the older tokens would only cost a refresh, but
        // with rotation their refresh token may be dead.
        if let (Some(file), Some(mine)) = (&shared.login, self.current())
            && shared.version.login_id == held.login_id
            && file.access_expires_at < mine.access_expires_at
        {
            return Synced::Unchanged;
        }
        self.adopt(shared);
        Synced::Adopted
    }

    /// Makes what the file holds the current login.
    fn adopt(&self, shared: Shared) {
        let new_login = shared.version.login_id != self.held().login_id;
        *self.held() = shared.version;
        match &shared.login {
            Some(t) => {
                tracing::info!(user = %t.username, expires_in = t.remaining(self.now()), "adopted the login a peer agent stored")
            }
            None => tracing::info!("a peer agent logged out; logged out here too"),
        }
        if new_login {
            let mut h = self.health();
            *h = Health::default();
            drop(h);
            *self.client.lock().unwrap_or_else(PoisonError::into_inner) = load_client(&self.config);
        }
        let tokens = shared.login.map(Arc::new);
        if let Some(t) = &tokens {
            self.export_fresh(t);
        }
        self.current.send_replace(tokens);
        self.changed.notify_one();
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Version> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores and publishes a new login (`new_login`) or refreshed tokens.
    /// The caller holds the refresh locks. Refreshed tokens do not replace
    /// what a peer stored meanwhile when that is another login, or the same
    /// login valid at least as long: then the peer's tokens are adopted.
    fn install(&self, mut tokens: Tokens, new_login: bool) {
        let dir = &self.config.state_dir;
        tokens.base_url = Some(self.config.base_url.clone());
        let on_disk = match stored::read_login(dir) {
            Ok(shared) => shared,
            Err(e) => {
                tracing::warn!(error = %e, "replacing an unreadable stored login");
                None
            }
        };
        let held = *self.held();
        if !new_login
            && let Some(file) = &on_disk
            && file.version != held
        {
            let keep_theirs = file.version.login_id != held.login_id
                || file
                    .login
                    .as_ref()
                    .is_none_or(|t| t.access_expires_at >= tokens.access_expires_at);
            if keep_theirs {
                tracing::info!("a peer stored a login meanwhile; adopting it");
                self.adopt(file.clone());
                return;
            }
        }
        let previous = on_disk.map(|s| s.version).unwrap_or_default();
        let login_id = if new_login {
            rand::random()
        } else {
            held.login_id
        };
        let written = stored::write_login(dir, previous, login_id, Some(&tokens));
        *self.held() = match written {
            Ok(version) => version,
            Err(e) => {
                tracing::error!(error = %e, "cannot store tokens; other agents and a restart will not have them");
                Version {
                    generation: previous.generation + 1,
                    write_id: rand::random(),
                    login_id,
                }
            }
        };
        self.export_fresh(&tokens);
        // A success (login or refresh) makes every failure before it stale.
        if let Err(e) = stored::clear_retry(dir) {
            tracing::warn!(error = %e, "cannot clear the record of failed refreshes");
        }
        {
            let mut h = self.health();
            h.login_required = None;
            h.last_error = None;
            h.foreign = None;
        }
        self.current.send_replace(Some(Arc::new(tokens)));
        self.changed.notify_one();
    }

    fn export_fresh(&self, tokens: &Tokens) {
        if let Some(path) = &self.config.export_token_file
            && let Err(e) = write_token_file(path, tokens)
        {
            tracing::warn!(file = %path.display(), error = %e, "cannot export the token file");
        }
    }

    /// How long the refresher sleeps before looking at `tokens.json` for a
    /// peer's logout or login: half the refresh margin, so that a logout
    /// anywhere is noticed within one margin, between 200 ms and 30 s.
    pub fn poll_interval(&self) -> Duration {
        let Some(t) = self.current() else {
            return MAX_POLL;
        };
        let lifetime = Duration::from_secs(t.lifetime().max(1) as u64);
        let margin = self.config.margin_for(lifetime).max(Duration::from_secs(1));
        (margin / 2).clamp(MIN_POLL, MAX_POLL)
    }

    /// Login and token state for `status`.
    pub fn login_state(&self) -> LoginState {
        let Some(t) = self.current() else {
            return match self.health().foreign.clone() {
                Some(reason) => LoginState::LoginRequired {
                    username: None,
                    reason,
                },
                None => LoginState::LoggedOut,
            };
        };
        let now = self.now();
        // Failed refreshes, this agent's or a peer's: when the next try is,
        // and what went wrong.
        let retry = self.pending_retry();
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
            next_refresh_at: self
                .next_refresh_at(&t, now)
                .map(|due| retry.as_ref().map_or(due, |r| r.not_before_ms / 1000)),
            last_refresh_error: health.last_error.clone().or_else(|| retry.map(|r| r.error)),
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

    /// Forgets the login here and, through `tokens.json`, in every peer
    /// agent (used by logout; the caller holds the refresh locks).
    fn clear(&self) {
        let dir = &self.config.state_dir;
        let previous = stored::read_login(dir)
            .ok()
            .flatten()
            .map(|s| s.version)
            .unwrap_or_default();
        match stored::write_login(dir, previous, rand::random(), None) {
            Ok(version) => *self.held() = version,
            Err(e) => {
                tracing::error!(error = %e, "cannot store the logout; other agents keep the login")
            }
        }
        *self.health() = Health::default();
        self.current.send_replace(None);
        self.changed.notify_one();
    }

    /// Writes the current token to an OpsUtils token file.
    pub fn export(&self, path: &std::path::Path) -> Result<i64, ErrorReply> {
        let t = self
            .current()
            .filter(|t| t.remaining(self.now()) > 0)
            .ok_or_else(|| login_required("no valid token to export"))?;
        write_token_file(path, &t).map_err(|e| {
            ErrorReply::new(ErrorKind::Other, format!("write {}: {e}", path.display()))
        })?;
        Ok(t.access_expires_at)
    }
}

enum RefreshError {
    Transient(TapisError),
    /// Tapis refused the refresh token or the client, for good.
    Refused(TapisError),
    /// Tapis refused the refresh in words it also uses while failing.
    Doubtful(TapisError),
    Fatal(ErrorReply),
}

/// Whether Tapis's refusal of a refresh can only mean that the refresh token
/// or the OAuth client is no good. The Authenticator answers 400 for all of
/// them (tapis-project/authenticator, service/controllers.py,
/// `TokensResource.post`), and for failures of its own too: `Failure to
/// generate an access token; please try again later.`, `Failure to parse
/// access token response; ...`, `Invalid POST data; ...` (a database error),
/// and `Invalid refresh_token.`, which wraps any exception of
/// `validate_token` (tapipy-tapisservice, tapisservice/auth.py), a failed
/// tenant or public-key lookup included. Only these say the request itself
/// can never work; anything else (any other status too) may pass.
fn refusal_is_final(e: &TapisError) -> bool {
    const FINAL: [&str; 6] = [
        "Invalid client credentials",
        "Invalid token type",
        "Invalid refresh_token format",
        "client_id from header",
        "Required refresh_token parameter missing",
        "Invalid grant_type",
    ];
    matches!(e, TapisError::BadRequest(m) if FINAL.iter().any(|f| m.starts_with(f)))
}

/// The login in `shared`, unless it was issued by another Tapis than the
/// one `config` names: such a login is never sent here. The second value
/// says why it is not used.
fn admit(config: &Config, shared: Shared) -> (Shared, Option<String>) {
    let Some(other) = shared
        .login
        .as_ref()
        .and_then(|t| t.foreign_to(&config.base_url))
    else {
        return (shared, None);
    };
    let user = shared
        .login
        .as_ref()
        .map(|t| t.username.clone())
        .unwrap_or_default();
    let why = format!(
        "the stored login ({user}) is for {other}, and this agent talks to {}; \
         its tokens are never sent to another Tapis: log in to this one \
         (it replaces that login in {})",
        config.base_url,
        config.state_dir.display()
    );
    (
        Shared {
            version: shared.version,
            login: None,
        },
        Some(why),
    )
}

/// The configured OAuth client, else the one stored at login.
fn load_client(config: &Config) -> Option<ClientCreds> {
    match (&config.client_id, &config.client_key) {
        (Some(id), Some(key)) => Some(ClientCreds {
            client_id: id.clone(),
            client_key: key.clone(),
        }),
        _ => stored::load_client(&config.state_dir).map(|c| c.creds),
    }
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
