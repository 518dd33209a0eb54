//! A fake Tapis v3 server for tests, benchmarks and demos.
//!
//! It serves the parts of the Authenticator, Tenants and Systems APIs (and the
//! Files upload) that tapis-agent and the official Python SDK use, answering with
//! the live services'
//! status codes and messages (see `shared/tapis-api.md`), and adds a `/_fake`
//! control API: call counts per operationId, injectable faults, and fixtures for
//! credentials, device logins and token revocation.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tapis_agent_tests::fake::{CredFixture, Fault, FaultKind, FakeConfig, FakeTapis};
//!
//! let fake = FakeTapis::start(FakeConfig::default()).await?;
//! fake.set_credential("testuser", "ls6", CredFixture::Rejected);
//! fake.inject(Fault::new("checkUserCredential", FaultKind::status(503)).times(2));
//! // ... point the code under test at fake.base_url() ...
//! assert_eq!(fake.calls("checkUserCredential"), 0);
//! fake.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod blocking;
mod caller;
mod clients;
mod config;
mod conn;
mod control;
mod credentials;
mod envelope;
mod faults;
mod files;
mod instrument;
mod jwt;
mod oauth2;
mod router;
mod state;
mod systems;
mod tenants;

use std::{
    fmt,
    net::{Ipv4Addr, SocketAddr},
    ops::Deref,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use tokio::{net::TcpListener, task::JoinHandle};

pub use blocking::BlockingFakeTapis;
pub use config::{AuthnMethod, DYNAMIC_EFFECTIVE_USER, FakeConfig, FakeSystem};
pub use faults::{DEFAULT_DRIP_INTERVAL, Fault, FaultKind};
pub use state::{CredFixture, CredentialEntry, Stats};

use conn::{Conn, CuttableListener};
use jwt::{Expiry, Subject};
use state::Shared;

/// How long [`FakeTapis::shutdown`] waits for open connections before aborting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running fake Tapis server. Stops when [`shutdown`](Self::shutdown) is awaited
/// (or, less gracefully, when dropped).
///
/// All inspection and fixture methods live on [`FakeControl`], which this derefs to.
pub struct FakeTapis {
    control: FakeControl,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl FakeTapis {
    /// Starts a fake on `127.0.0.1` with a free port, served on the current tokio
    /// runtime.
    pub async fn start(config: FakeConfig) -> anyhow::Result<FakeTapis> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a fake listening on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: SocketAddr, config: FakeConfig) -> anyhow::Result<FakeTapis> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let control = FakeControl {
            shared: Arc::new(Shared::new(&config, base_url(addr))),
            addr,
        };
        let app = router::router(control.clone()).into_make_service_with_connect_info::<Conn>();
        let shared = control.shared.clone();
        let server = axum::serve(CuttableListener(listener), app)
            .with_graceful_shutdown(async move { shared.shutting_down().await });
        let server = tokio::spawn(async move { server.await });
        tracing::info!(%addr, systems = control.shared.systems.len(), "fake Tapis listening");
        Ok(FakeTapis {
            control,
            server: Some(server),
        })
    }

    /// A handle that stays usable after this value moves (e.g. into another task).
    pub fn control(&self) -> FakeControl {
        self.control.clone()
    }

    /// Stops accepting, ends hanging and slow faults, lets other requests finish,
    /// and waits (at most 5 s) for the server to stop.
    pub async fn shutdown(mut self) {
        self.control.begin_shutdown();
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            tracing::warn!("fake Tapis did not stop within {SHUTDOWN_GRACE:?}; aborting");
            server.abort();
        }
    }
}

impl Drop for FakeTapis {
    fn drop(&mut self) {
        // The server task winds down on its own once told to.
        self.control.begin_shutdown();
    }
}

impl Deref for FakeTapis {
    type Target = FakeControl;

    fn deref(&self) -> &FakeControl {
        &self.control
    }
}

impl fmt::Debug for FakeTapis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTapis")
            .field("addr", &self.control.addr)
            .finish_non_exhaustive()
    }
}

/// `http://ADDR`, with an unspecified listen address replaced by loopback so the
/// URL can be connected to.
fn base_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// Inspects and arranges a running fake: stats, faults, credentials, tokens.
/// Cheap to clone; every clone controls the same server.
#[derive(Clone)]
pub struct FakeControl {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
}

impl fmt::Debug for FakeControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeControl")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeControl {
    /// `http://127.0.0.1:PORT`: the base URL for clients (no trailing slash).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The tenant id (`designsafe` by default).
    pub fn tenant(&self) -> &str {
        &self.shared.tenant
    }

    /// Calls of one operationId so far (e.g. `checkUserCredential`).
    pub fn calls(&self, operation: &str) -> u64 {
        self.shared.lock().stats.calls(operation)
    }

    /// Resolves once `operation` has been called at least `n` times (the request has
    /// arrived; it may still be in progress). Wrap it in a timeout.
    pub async fn wait_for_calls(&self, operation: &str, n: u64) {
        let mut counted = self.shared.counted.subscribe();
        // An error means the server is gone; nothing more will arrive.
        let _ = counted.wait_for(|_| self.calls(operation) >= n).await;
    }

    /// All counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        self.shared.lock().stats = Stats::default();
    }

    /// Adds a fault (after those already pending).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Faults not yet used up, with their remaining `times`.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.pending()
    }

    /// Drops all pending faults.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Stores (or, with `Absent`, removes) `user`'s credential on `system`.
    pub fn set_credential(&self, user: &str, system: &str, state: CredFixture) {
        let key = (user.to_owned(), system.to_owned());
        let mut inner = self.shared.lock();
        if state == CredFixture::Absent {
            inner.creds.remove(&key);
        } else {
            inner.creds.insert(key, state);
        }
    }

    /// Makes `system`'s host drop packets (or, with `None`, answer again):
    /// every SSH attempt Tapis makes there (a check of stored credentials, the
    /// verification of new ones) gives up after `ssh` and is answered 401
    /// `SYSAPI_CRED_VALID_FAIL ... SYSLIB_CRED_CONN_FAIL`, nothing stored.
    /// Tapis's own SSH waits up to 30 s to connect and 20 s to authenticate
    /// (tapis-project/tapis-shared-java, `SSHTimeouts`); tests use less.
    pub fn set_unreachable(&self, system: &str, ssh: Option<Duration>) {
        let mut inner = self.shared.lock();
        match ssh {
            Some(d) => inner.unreachable.insert(system.to_owned(), d),
            None => inner.unreachable.remove(system),
        };
    }

    /// A new user's access to `system` has not reached its host yet: the next
    /// `creates` TMS key creations fail verification, answered 401
    /// `SYSAPI_CRED_VALID_FAIL ... SYSLIB_CRED_VALID_FAIL` with nothing stored
    /// (tapis-project/tapis-systems, CredentialResource.java,
    /// `createUserCredential` and ApiUtils `checkCredValidationResult`), as
    /// DesignSafe's onboarding meets it (DesignSafe-CI/portal,
    /// onboarding/steps/system_access_v3.py, which retries for five minutes
    /// "to account for allocation propagation").
    pub fn set_propagating(&self, user: &str, system: &str, creates: u32) {
        let key = (user.to_owned(), system.to_owned());
        let mut inner = self.shared.lock();
        if creates == 0 {
            inner.propagating.remove(&key);
        } else {
            inner.propagating.insert(key, creates);
        }
    }

    /// `user`'s credential state on `system`.
    pub fn credential(&self, user: &str, system: &str) -> CredFixture {
        self.shared.credential(user, system)
    }

    /// Every stored credential, sorted by user then system.
    pub fn credentials(&self) -> Vec<CredentialEntry> {
        let mut all: Vec<CredentialEntry> = self
            .shared
            .lock()
            .creds
            .iter()
            .map(|((user, system), state)| CredentialEntry {
                user: user.clone(),
                system: system.clone(),
                state: *state,
            })
            .collect();
        all.sort_by(|a, b| (&a.user, &a.system).cmp(&(&b.user, &b.system)));
        all
    }

    /// Makes `system` unreadable for `user` (or, with `forbidden` false, readable
    /// again): `getSystem` answers 403 `SYSLIB_UNAUTH`, and the credential
    /// endpoints 500 `SYSAPI_CHECK_ERROR ... SYSLIB_UNAUTH`, as Tapis does.
    pub fn set_forbidden(&self, user: &str, system: &str, forbidden: bool) {
        let key = (user.to_owned(), system.to_owned());
        let mut inner = self.shared.lock();
        if forbidden {
            inner.forbidden.insert(key);
        } else {
            inner.forbidden.remove(&key);
        }
    }

    /// Completes a device login, as the user entering the code in the browser
    /// does: the next poll with the matching device code gets tokens for
    /// `username`, until then polls answer 400 `device code not ready.`. False
    /// when no pending device code has `user_code`.
    pub fn approve_device(&self, user_code: &str, username: &str) -> bool {
        let mut inner = self.shared.lock();
        let grant = inner
            .devices
            .values_mut()
            .find(|grant| grant.user_code.eq_ignore_ascii_case(user_code));
        match grant {
            Some(grant) => {
                grant.approved_by = Some(username.to_owned());
                true
            }
            None => false,
        }
    }

    /// Invalidates every refresh token issued so far (a fixture: the live service
    /// has no such switch, but a refresh token can stop working, e.g. expire).
    pub fn revoke_all_refresh_tokens(&self) {
        self.shared.lock().live_refresh.clear();
    }

    /// Signs an access token for `username` valid for `ttl`, as a login would. A zero
    /// `ttl` gives a token that is already expired.
    pub fn mint_access_token(&self, username: &str, ttl: Duration) -> String {
        self.mint(username, Expiry::After(ttl))
    }

    /// Signs an access token for `username` whose `exp` is `exp_unix` (seconds since
    /// the epoch; a past value gives an expired token).
    pub fn mint_access_token_expiring_at(&self, username: &str, exp_unix: i64) -> String {
        self.mint(username, Expiry::At(exp_unix))
    }

    fn mint(&self, username: &str, expiry: Expiry) -> String {
        self.try_mint(username, expiry)
            .expect("HS256 signing of plain claims cannot fail")
    }

    pub(crate) fn try_mint(
        &self,
        username: &str,
        expiry: Expiry,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let shared = &self.shared;
        let who = Subject {
            tenant: &shared.tenant,
            username,
            client_id: None,
            grant_type: "password",
        };
        shared
            .signer
            .sign_pair(&who, expiry, None)
            .map(|(signed, _)| signed.jwt)
    }

    /// Back to the start state: no credentials, forbidden pairs, faults, OAuth
    /// clients, device codes or refresh tokens, and zeroed stats. Access tokens
    /// already issued stay valid until they expire (they are self-contained JWTs),
    /// and revoked ones stay revoked.
    pub fn reset(&self) {
        let mut inner = self.shared.lock();
        let revoked = std::mem::take(&mut inner.revoked);
        *inner = state::Inner::default();
        inner.revoked = revoked;
    }

    fn begin_shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}
