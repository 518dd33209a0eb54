//! Logging in (password, imported token, device code) and out.

use super::{TokenManager, stored};
use crate::errors::{self, login_required};
use crate::tapis::{ClientCreds, DeviceGrant, DevicePoll, TapisError};
use crate::{clock, jwt};
use std::time::Instant;
use tapis_agent_proto::{DeviceCode, ErrorKind, ErrorReply, Response, Secret};

/// Seconds between device-code polls (Tapis does not say).
const DEVICE_INTERVAL: u64 = 5;

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
    ) -> Result<Response, ErrorReply> {
        let _flight = self.refresh_lock.lock().await;
        let _file_lock = self.file_lock().await;
        let client = self
            .client_creds()
            .filter(|_| self.client_usable_for(username));
        let set = match client {
            Some(client) => match self
                .tapis
                .password_login(username, &password, Some(&client))
                .await
            {
                Ok(set) => set,
                // Tapis may have forgotten our client: a plain login tells.
                Err(TapisError::Unauthorized(_) | TapisError::BadRequest(_)) => {
                    tracing::info!(
                        user = username,
                        "stored OAuth client refused; registering a new one"
                    );
                    self.login_with_new_client(username, &password).await?
                }
                Err(e) => return Err(login_error(&e)),
            },
            None => self.login_with_new_client(username, &password).await?,
        };
        drop(password);
        let tokens = stored::Tokens::from_set(set)
            .map_err(|e| ErrorReply::new(ErrorKind::TapisUnavailable, format!("login: {e}")))?;
        tracing::info!(user = %tokens.username, refresh = tokens.refresh.is_some(), "logged in");
        let answer = logged_in(&tokens);
        self.install(tokens, true);
        Ok(answer)
    }

    fn client_usable_for(&self, username: &str) -> bool {
        if self.config.client_id.is_some() {
            return true;
        }
        stored::load_client(&self.config.state_dir).is_some_and(|c| c.username == username)
    }

    /// Logs in without a client, registers one, logs in again through it.
    async fn login_with_new_client(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<crate::tapis::TokenSet, ErrorReply> {
        let first = self
            .tapis
            .password_login(username, password, None)
            .await
            .map_err(|e| login_error(&e))?;
        if self.config.client_id.is_some() {
            // A configured client is used as is, never replaced.
            return Ok(first);
        }
        let host = crate::host::hostname();
        let client = ClientCreds {
            client_id: format!("tapis-agent-{}-{}", sanitize(&host), random_hex(4)),
            client_key: Secret::new(random_hex(24)),
        };
        let display = format!("tapis-agent on {host}");
        if let Err(e) = self
            .tapis
            .create_client(&first.access, &client, &display)
            .await
        {
            tracing::warn!(error = %e, "cannot register an OAuth client; the login will not be refreshable");
            return Ok(first);
        }
        let record = stored::StoredClient {
            username: username.to_owned(),
            creds: client.clone(),
        };
        if let Err(e) = stored::save_client(&self.config.state_dir, &record) {
            tracing::error!(error = %e, "cannot store the OAuth client");
        }
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(client.clone());
        match self
            .tapis
            .password_login(username, password, Some(&client))
            .await
        {
            Ok(set) => Ok(set),
            Err(e) => {
                tracing::warn!(error = %e, "login through the new OAuth client failed; using the plain login");
                Ok(first)
            }
        }
    }

    /// Adopts an access token obtained elsewhere (no refresh possible).
    pub async fn login_import(&self, access_token: Secret) -> Result<Response, ErrorReply> {
        let claims = jwt::claims(access_token.expose())
            .map_err(|e| ErrorReply::new(ErrorKind::Usage, format!("import token: {e}")))?;
        let now = clock::now();
        if claims.exp <= now + 30 {
            return Err(login_required("import token: the token has expired"));
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
        };
        if tokens.username.is_empty() {
            return Err(ErrorReply::new(
                ErrorKind::Usage,
                "import token: the token names no tapis/username",
            ));
        }
        tracing::info!(user = %tokens.username, "imported access token");
        let answer = logged_in(&tokens);
        self.install(tokens, true);
        Ok(answer)
    }

    /// Starts a device-code login.
    pub async fn device_start(&self) -> Result<Response, ErrorReply> {
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
        Ok(Response::DeviceCode(code))
    }

    /// Polls the pending device-code login once.
    pub async fn device_poll(&self) -> Result<Response, ErrorReply> {
        let mut pending = self.device.lock().await;
        let Some(p) = pending.as_ref() else {
            return Err(
                ErrorReply::new(ErrorKind::Usage, "no device login in progress")
                    .with_hint("run: tapis-cred login --device"),
            );
        };
        if p.started.elapsed().as_secs() > p.grant.expires_in {
            *pending = None;
            return Err(login_required("the device code has expired"));
        }
        match self
            .tapis
            .device_token(&p.grant.device_code, &p.client)
            .await
        {
            Ok(DevicePoll::Pending) => Ok(Response::DevicePending),
            Ok(DevicePoll::Done(set)) => {
                *pending = None;
                drop(pending);
                let _flight = self.refresh_lock.lock().await;
                let _file_lock = self.file_lock().await;
                let tokens = stored::Tokens::from_set(set).map_err(|e| {
                    ErrorReply::new(ErrorKind::TapisUnavailable, format!("device login: {e}"))
                })?;
                tracing::info!(user = %tokens.username, "logged in with a device code");
                let answer = logged_in(&tokens);
                self.install(tokens, true);
                Ok(answer)
            }
            Err(e) => Err(errors::from_tapis("device login", &e)),
        }
    }

    /// Revokes the tokens at Tapis (best effort), deletes them from disk and,
    /// when asked, forgets the OAuth client.
    pub async fn logout(&self, forget_client: bool) -> Result<Response, ErrorReply> {
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
        Ok(Response::LoggedOut)
    }
}

fn logged_in(t: &stored::Tokens) -> Response {
    Response::LoggedIn {
        username: t.username.clone(),
        tenant: t.tenant.clone(),
        expires_at: t.access_expires_at,
        has_refresh_token: t.refresh.is_some(),
    }
}

fn login_error(e: &TapisError) -> ErrorReply {
    match e {
        TapisError::Unauthorized(_) | TapisError::BadRequest(_) => login_required(format!(
            "login: Tapis refused the username or password ({e})"
        )),
        other => errors::from_tapis("login", other),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
