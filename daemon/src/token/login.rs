//! Logging in (password, imported token, device code) and out.

use super::{Health, TokenManager, stored};
use crate::errors;
use crate::jwt;
use crate::tapis::{
    ClientCreds, ClientInfo, DeviceGrant, DevicePoll, TapisError, TokenSet, is_client_refused,
};
use std::time::Instant;
use tapis_agent_proto::{DeviceCode, ErrorKind, ErrorReply, Secret};

/// Seconds between device-code polls (Tapis does not say).
const DEVICE_INTERVAL: u64 = 5;

/// Column widths of the Authenticator's `clients` table (tapis-project/
/// authenticator, service/models.py, `Client`): a longer value makes the
/// registration fail.
const CLIENT_ID_MAX: usize = 80;
const DISPLAY_NAME_MAX: usize = 50;
const DESCRIPTION_MAX: usize = 70;

/// Description of the agent's OAuth client.
const CLIENT_DESCRIPTION: &str = "OAuth client of tapis-agent, used to refresh tokens";

/// Why a login without a refresh token cannot be refreshed, when nothing more
/// precise is known.
const NO_REFRESH_TOKEN: &str =
    "Tapis issued no refresh token, so the login ends when the access token expires";

/// A device-code login waiting for the user.
#[derive(Debug)]
pub(super) struct PendingDevice {
    grant: DeviceGrant,
    client: ClientCreds,
    started: Instant,
}

impl TokenManager {
    /// Password login. Registers (once) an OAuth client for the user so that
    /// Tapis issues a refresh token; the password is dropped (zeroed) after.
    pub async fn login_password(
        &self,
        username: &str,
        password: Secret,
    ) -> Result<LoggedIn, ErrorReply> {
        let _flight = self.refresh_lock.lock().await;
        let _file_lock = self.file_lock().await;
        let client = self
            .client_creds()
            .filter(|_| self.client_usable_for(username));
        let (set, problem) = match client {
            Some(client) => match self
                .password_grant(username, &password, Some(&client))
                .await
            {
                Ok(set) => (set, None),
                // Tapis may have forgotten our client: a plain login tells.
                Err(e) if is_client_refused(&e) => {
                    tracing::info!(
                        user = username,
                        "stored OAuth client refused; registering a new one"
                    );
                    self.login_with_new_client(username, &password, Some(&e))
                        .await?
                }
                Err(e) => return Err(self.login_error(&e)),
            },
            None => {
                self.login_with_new_client(username, &password, None)
                    .await?
            }
        };
        drop(password);
        let tokens = stored::Tokens::from_set(set)
            .map_err(|e| ErrorReply::new(ErrorKind::TapisUnavailable, format!("login: {e}")))?;
        tracing::info!(user = %tokens.username, refresh = tokens.refresh.is_some(), "logged in");
        Ok(self.install_login(tokens, problem))
    }

    /// The password grant, repeated (bounded, with backoff) while the
    /// Authenticator says it failed behind the scenes; a wrong password and
    /// every other answer are returned at once.
    async fn password_grant(
        &self,
        username: &str,
        password: &Secret,
        client: Option<&ClientCreds>,
    ) -> Result<TokenSet, TapisError> {
        let backoff = self.tapis.backoff();
        let mut attempt = 0;
        loop {
            match self.tapis.password_login(username, password, client).await {
                Err(e) if tapis_failed_login(&e) && attempt < backoff.retries => {
                    let delay = backoff.delay(attempt);
                    tracing::info!(error = %e, attempt, delay_ms = delay.as_millis() as u64, "Tapis failed a password login; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A failed password login as the user should read it: a wrong password
    /// is its own kind, and says whether the login held before still works.
    fn login_error(&self, e: &TapisError) -> ErrorReply {
        if let Some(why) = wrong_password(e) {
            let now = self.now();
            let still = self
                .current()
                .filter(|t| t.remaining(now) > 0 || t.can_refresh(now))
                .map_or_else(String::new, |t| {
                    format!("; your previous login as {} is still active", t.username)
                });
            return ErrorReply::new(
                ErrorKind::WrongPassword,
                format!("login: Tapis refused the username or password: {why}{still}"),
            )
            .with_hint(
                "check the username and password (those of your Tapis or DesignSafe account) \
                 and try again",
            );
        }
        if tapis_failed_login(e) {
            return ErrorReply::new(ErrorKind::TapisUnavailable, format!("login: {e}"))
                .with_hint("Tapis is failing; try again later");
        }
        match e {
            // No "log in" hint: logging in is what just failed.
            TapisError::Unauthorized(_) => {
                ErrorReply::new(ErrorKind::LoginRequired, format!("login: {e}"))
            }
            other => errors::from_tapis("login", other),
        }
    }

    fn client_usable_for(&self, username: &str) -> bool {
        if self.config.client_id.is_some() {
            return true;
        }
        stored::load_client(&self.config.state_dir).is_some_and(|c| c.username == username)
    }

    /// Logs in without a client, registers one, logs in again through it.
    /// Whatever stops the login from being refreshable is returned with it.
    async fn login_with_new_client(
        &self,
        username: &str,
        password: &Secret,
        refused: Option<&TapisError>,
    ) -> Result<(TokenSet, Option<String>), ErrorReply> {
        let first = self
            .password_grant(username, password, None)
            .await
            .map_err(|e| self.login_error(&e))?;
        if let Some(id) = &self.config.client_id {
            // A configured client is used as is, never replaced.
            let why = refused.map_or_else(String::new, |e| format!(" ({e})"));
            return Ok((
                first,
                Some(format!(
                    "Tapis refused the configured OAuth client {id}{why}"
                )),
            ));
        }
        let host = self
            .config
            .hostname
            .clone()
            .unwrap_or_else(crate::host::hostname);
        let (client, info) = new_client(&host);
        if let Err(e) = self
            .tapis
            .create_client(&first.access, &client, &info)
            .await
        {
            return Ok((
                first,
                Some(format!("registering an OAuth client at Tapis failed: {e}")),
            ));
        }
        let record = stored::StoredClient {
            username: username.to_owned(),
            creds: client.clone(),
        };
        if let Err(e) = stored::save_client(&self.config.state_dir, &record) {
            tracing::error!(error = %e, "cannot store the OAuth client; the next login registers another");
        }
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(client.clone());
        match self.password_grant(username, password, Some(&client)).await {
            Ok(set) => Ok((set, None)),
            Err(e) => Ok((
                first,
                Some(format!(
                    "logging in through the new OAuth client failed: {e}"
                )),
            )),
        }
    }

    /// Installs a login and answers for it. A login that cannot be refreshed
    /// says so, loudly: in the log, in the answer, and in `status` until the
    /// next login.
    /// Stores a new login for every agent on the state directory and answers
    /// it, saying loudly when it cannot be refreshed.
    fn install_login(&self, tokens: stored::Tokens, problem: Option<String>) -> LoggedIn {
        let problem = match (&tokens.refresh, problem) {
            (None, None) => Some(NO_REFRESH_TOKEN.to_owned()),
            (_, problem) => problem,
        };
        if let Some(p) = &problem {
            tracing::warn!(user = %tokens.username, problem = %p, "this login cannot be refreshed");
        }
        let answer = logged_in(&tokens, problem.clone());
        self.install(tokens, true);
        self.health().refresh_problem = problem;
        answer
    }

    /// Why the login `t` cannot be refreshed, if it cannot (for `status`).
    pub(super) fn refresh_problem(&self, t: &stored::Tokens, health: &Health) -> Option<String> {
        if t.refresh.is_none() {
            return Some(
                health
                    .refresh_problem
                    .clone()
                    .unwrap_or_else(|| NO_REFRESH_TOKEN.to_owned()),
            );
        }
        if self.client_creds().is_none() {
            return Some(
                "no OAuth client is stored or configured, so the refresh token cannot be used"
                    .into(),
            );
        }
        health.refresh_problem.clone()
    }

    /// Adopts the access token of the token file at `path` (see
    /// [`super::export::read_token_file`]; no refresh possible).
    pub async fn login_import_file(&self, path: &std::path::Path) -> Result<LoggedIn, ErrorReply> {
        let access_token = super::export::read_token_file(path, self.now())?;
        self.login_import(access_token).await
    }

    /// Adopts an access token obtained elsewhere (no refresh possible).
    async fn login_import(&self, access_token: Secret) -> Result<LoggedIn, ErrorReply> {
        let claims = jwt::claims(access_token.expose())
            .map_err(|e| ErrorReply::new(ErrorKind::Usage, format!("import token: {e}")))?;
        let now = self.now();
        if claims.exp <= now + 30 {
            return Err(ErrorReply::new(
                ErrorKind::LoginRequired,
                "import token: the token has expired",
            )
            .with_hint(
                "log in with your password instead: tapis-cred login without --import-token-file",
            ));
        }
        if claims.token_type.as_deref().is_some_and(|t| t != "access") {
            return Err(ErrorReply::new(
                ErrorKind::Usage,
                "import token: this is not an access token",
            ));
        }
        let _flight = self.refresh_lock.lock().await;
        let _file_lock = self.file_lock().await;
        let tokens = stored::Tokens {
            username: claims.username.unwrap_or_default(),
            tenant: claims.tenant.unwrap_or_default(),
            access: access_token,
            access_expires_at: claims.exp,
            access_issued_at: claims.iat.unwrap_or(now),
            refresh: None,
            refresh_expires_at: None,
            base_url: None,
        };
        if tokens.username.is_empty() {
            return Err(ErrorReply::new(
                ErrorKind::Usage,
                "import token: the token names no tapis/username",
            ));
        }
        tracing::info!(user = %tokens.username, "imported access token");
        Ok(self.install_login(
            tokens,
            Some("an imported token cannot be refreshed; the login ends when it expires".into()),
        ))
    }

    /// Starts a device-code login.
    pub async fn device_start(&self) -> Result<DeviceCode, ErrorReply> {
        let client = self.client_creds().ok_or_else(|| {
            ErrorReply::new(
                ErrorKind::Usage,
                "device login needs an OAuth client, and none is stored or configured",
            )
            .with_hint(
                "log in once with a password, or set client_id and client_key_file in config.toml",
            )
        })?;
        let grant = self
            .tapis
            .device_code(&client.client_id)
            .await
            .map_err(|e| errors::from_tapis("start device login", &e))?;
        let code = DeviceCode {
            verification_uri: grant.verification_uri.clone(),
            user_code: grant.user_code.clone(),
            expires_in: grant.expires_in,
            interval: DEVICE_INTERVAL,
        };
        *self.device.lock().await = Some(PendingDevice {
            grant,
            client,
            started: Instant::now(),
        });
        Ok(code)
    }

    /// Polls the pending device-code login once: `None` while the user has
    /// not finished it.
    pub async fn device_poll(&self) -> Result<Option<LoggedIn>, ErrorReply> {
        let mut pending = self.device.lock().await;
        let Some(p) = pending.as_ref() else {
            return Err(
                ErrorReply::new(ErrorKind::Usage, "no device login in progress")
                    .with_hint("run: tapis-cred login --device"),
            );
        };
        if p.started.elapsed().as_secs() > p.grant.expires_in {
            *pending = None;
            return Err(
                ErrorReply::new(ErrorKind::LoginRequired, "the device code has expired")
                    .with_hint("start again: tapis-cred login --device"),
            );
        }
        match self
            .tapis
            .device_token(&p.grant.device_code, &p.client)
            .await
        {
            Ok(DevicePoll::Pending) => Ok(None),
            Ok(DevicePoll::Done(set)) => {
                *pending = None;
                drop(pending);
                let _flight = self.refresh_lock.lock().await;
                let _file_lock = self.file_lock().await;
                let tokens = stored::Tokens::from_set(set).map_err(|e| {
                    ErrorReply::new(ErrorKind::TapisUnavailable, format!("device login: {e}"))
                })?;
                tracing::info!(user = %tokens.username, "logged in with a device code");
                Ok(Some(self.install_login(tokens, None)))
            }
            Err(e) => {
                // `device code has expired and is now deleted.` (models.py,
                // `DeviceCode.validate_code`): start again.
                if matches!(&e, TapisError::BadRequest(m) if m.contains("expired")) {
                    *pending = None;
                    return Err(ErrorReply::new(
                        ErrorKind::LoginRequired,
                        format!("device login: {e}"),
                    )
                    .with_hint("start again: tapis-cred login --device"));
                }
                Err(errors::from_tapis("device login", &e))
            }
        }
    }

    /// Revokes the tokens at Tapis (best effort), deletes them from disk and,
    /// when asked, forgets the OAuth client.
    pub async fn logout(&self, forget_client: bool) -> Result<(), ErrorReply> {
        let _flight = self.refresh_lock.lock().await;
        let _file_lock = self.file_lock().await;
        // A peer's newer tokens are revoked too.
        self.sync();
        if let Some(t) = self.current() {
            for token in t.refresh.iter().chain(std::iter::once(&t.access)) {
                if let Err(e) = self.tapis.revoke_token(token).await {
                    tracing::warn!(error = %e, "could not revoke a token at Tapis");
                }
            }
        }
        self.clear();
        if let Some(path) = &self.config.export_token_file {
            match super::export::remove_token_file(path) {
                Ok(true) => tracing::info!(file = %path.display(), "removed the token file"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove the token file")
                }
            }
        }
        if forget_client {
            if let Err(e) = stored::delete_client(&self.config.state_dir) {
                tracing::error!(error = %e, "cannot delete the stored OAuth client");
            }
            if self.config.client_id.is_none() {
                *self
                    .client
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
        }
        tracing::info!("logged out");
        Ok(())
    }
}

/// A new login, as the requests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// Tapis username.
    pub username: String,
    /// Tenant id from the token.
    pub tenant: String,
    /// Access-token expiry, Unix seconds.
    pub expires_at: i64,
    /// Whether the agent holds a refresh token.
    pub has_refresh_token: bool,
    /// Why the login cannot be refreshed, when it cannot.
    pub refresh_problem: Option<String>,
}

fn logged_in(t: &stored::Tokens, refresh_problem: Option<String>) -> LoggedIn {
    LoggedIn {
        username: t.username.clone(),
        tenant: t.tenant.clone(),
        expires_at: t.access_expires_at,
        has_refresh_token: t.refresh.is_some(),
        refresh_problem,
    }
}

/// The Authenticator's answer to a wrong password or an unknown user: 400
/// `Invalid username/password combination.` (tapis-project/authenticator,
/// service/controllers.py, `TokensResource.post`, from service/ldap.py
/// `check_username_password`). No other answer means the password is wrong.
/// Returns Tapis's words for it.
fn wrong_password(e: &TapisError) -> Option<&str> {
    match e {
        TapisError::BadRequest(m) if m.starts_with("Invalid username/password combination") => {
            Some(m)
        }
        _ => None,
    }
}

/// The Authenticator's 400s for its own failures after the password was
/// accepted (service/controllers.py, `TokensResource.post`): the Tokens API
/// call failed (`Failure to generate an access token; please try again
/// later.`), its answer could not be read (`Failure to parse access token
/// response; ...`), or the database refused the new token (`Invalid POST
/// data; {msg}`, with a semicolon, unlike the request validation's
/// `Invalid POST data: ...`). Tapis is failing: worth another try.
fn tapis_failed_login(e: &TapisError) -> bool {
    matches!(e, TapisError::BadRequest(m)
        if m.starts_with("Failure to generate an access token")
            || m.starts_with("Failure to parse access token response")
            || m.starts_with("Invalid POST data;"))
}

/// A new OAuth client for this host: id, key, and a name and description that
/// fit the Authenticator's columns whatever the host name.
fn new_client(host: &str) -> (ClientCreds, ClientInfo) {
    const PREFIX: &str = "tapis-agent-";
    let suffix = random_hex(4);
    let room = CLIENT_ID_MAX - PREFIX.len() - 1 - suffix.len();
    let client = ClientCreds {
        client_id: format!("{PREFIX}{}-{suffix}", sanitize(host, room.min(40))),
        client_key: Secret::new(random_hex(24)),
    };
    let info = ClientInfo {
        display_name: truncate(&format!("tapis-agent on {host}"), DISPLAY_NAME_MAX),
        description: truncate(CLIENT_DESCRIPTION, DESCRIPTION_MAX),
    };
    (client, info)
}

/// At most `max` characters (the database counts characters, not bytes).
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_fit_the_columns_whatever_the_host() {
        let long = format!("{}.tacc.utexas.edu", "c".repeat(200));
        for host in ["login1", "x", long.as_str(), "nœud-é.example.org", ""] {
            let (client, info) = new_client(host);
            assert!(client.client_id.chars().count() <= CLIENT_ID_MAX, "{host}");
            assert!(client.client_key.expose().len() <= 80);
            assert!(
                info.display_name.chars().count() <= DISPLAY_NAME_MAX,
                "{host}"
            );
            assert!(info.description.chars().count() <= DESCRIPTION_MAX);
            assert!(client.client_id.is_ascii(), "{}", client.client_id);
        }
        let (client, info) = new_client("login1.stampede3.tacc.utexas.edu");
        assert!(
            client
                .client_id
                .starts_with("tapis-agent-login1-stampede3-")
        );
        assert_eq!(
            info.display_name,
            "tapis-agent on login1.stampede3.tacc.utexas.edu"
        );
    }
}
