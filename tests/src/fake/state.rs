//! Everything a fake instance remembers between requests.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{
    config::{FakeConfig, FakeSystem},
    faults::FaultQueue,
    jwt::Signer,
};

/// Stored state of one user's credential on one system, and so what the
/// credential check answers (tapis-project/tapis-systems, branch tms-mvp,
/// CredentialResource.java `checkUserCredential`, CredUtils.java
/// `checkCredentialForUser` and `verifyConnection`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredFixture {
    /// Nothing stored: check answers 401 `SYSLIB_CRED_NOT_FOUND`.
    #[default]
    Absent,
    /// Stored and working: check answers 200.
    Present,
    /// Stored, but the host refuses the keys: check answers 401
    /// `SYSAPI_CRED_VALID_FAIL ... Message: SYSLIB_CRED_VALID_FAIL`.
    Rejected,
    /// Stored, but the host cannot be reached: check answers 401
    /// `SYSAPI_CRED_VALID_FAIL ... Message: SYSLIB_CRED_CONN_FAIL`.
    ConnFail,
    /// Stored, but a part is missing (say a key pair without its public key):
    /// check answers 401 `SYSAPI_CRED_VALID_FAIL ... Message: SYSLIB_CRED_NOT_FOUND`.
    Incomplete,
    /// Stored, but Tapis cannot validate this kind: check answers 401
    /// `SYSAPI_CRED_VALID_FAIL ... Message: SYSLIB_CRED_NOT_SUPPORTED`.
    NotSupported,
}

/// One stored credential, as listed by `GET /_fake/credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialEntry {
    /// Tapis user.
    pub user: String,
    /// System id.
    pub system: String,
    /// Its state.
    pub state: CredFixture,
}

/// Request counters, as served by `GET /_fake/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests per operationId (`create_token`, `checkUserCredential`, …), faulted
    /// and rejected ones included; requests matching no route count as `unmatched`.
    pub calls: BTreeMap<String, u64>,
    /// Requests refused because of their `X-Tapis-Token` (any reason).
    pub rejected_token: u64,
    /// The subset of `rejected_token` refused because the token had expired.
    pub expired_token: u64,
}

impl Stats {
    /// Calls of one operation.
    pub fn calls(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    /// Calls of all operations together.
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// An OAuth client registered through `POST /v3/oauth2/clients`.
#[derive(Clone)]
pub(crate) struct OauthClient {
    pub(crate) client_id: String,
    pub(crate) client_key: String,
    pub(crate) owner: String,
    pub(crate) display_name: String,
    pub(crate) description: String,
    pub(crate) callback_url: String,
    pub(crate) create_time: i64,
    /// False once deleted: the Authenticator only marks clients inactive.
    pub(crate) active: bool,
}

/// A device code waiting for (or holding) the user's approval.
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    /// Copied from the client when the code is made (models.py, `DeviceCode`).
    pub(crate) client_key: String,
    pub(crate) user_code: String,
    pub(crate) expires_at: i64,
    pub(crate) approved_by: Option<String>,
}

/// The mutable part, behind one lock (never held across an `.await`).
#[derive(Default)]
pub(crate) struct Inner {
    /// Keyed by (user, system); `Absent` is never stored.
    pub(crate) creds: HashMap<(String, String), CredFixture>,
    /// (user, system) pairs answered 403.
    pub(crate) forbidden: HashSet<(String, String)>,
    /// Systems whose host drops packets: how long Tapis's SSH attempt takes
    /// to give up (see [`FakeControl::set_unreachable`](super::FakeControl::set_unreachable)).
    pub(crate) unreachable: HashMap<String, Duration>,
    /// (user, system): how many more TMS key creations fail verification
    /// while the user's access propagates.
    pub(crate) propagating: HashMap<(String, String), u32>,
    pub(crate) clients: HashMap<String, OauthClient>,
    /// Keyed by device code.
    pub(crate) devices: HashMap<String, DeviceGrant>,
    /// `jti`s of refresh tokens that may still be used (rotation, an enforced
    /// revocation and the `revoke_all_refresh_tokens` fixture remove them).
    pub(crate) live_refresh: HashSet<String>,
    /// `jti`s of revoked tokens (refused only with `enforce_revocation`).
    pub(crate) revoked: HashSet<String>,
    pub(crate) faults: FaultQueue,
    pub(crate) stats: Stats,
}

/// Immutable configuration plus the locked mutable state.
pub(crate) struct Shared {
    pub(crate) tenant: String,
    pub(crate) base_url: String,
    pub(crate) token_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    pub(crate) device_token_ttl: Duration,
    pub(crate) allow_cross_user: bool,
    pub(crate) rotate_refresh_tokens: bool,
    pub(crate) enforce_revocation: bool,
    pub(crate) users: HashMap<String, String>,
    pub(crate) systems: HashMap<String, FakeSystem>,
    pub(crate) signer: Signer,
    /// Flips to true once; long faults (hang, delay, drip) watch it to end early.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Bumped after every counted call, so tests can wait for calls to arrive.
    pub(crate) counted: watch::Sender<u64>,
    inner: Mutex<Inner>,
}

impl Shared {
    /// State for `config`, served at `base_url`.
    pub(crate) fn new(config: &FakeConfig, base_url: String) -> Self {
        let signer = Signer::new(format!("{base_url}/v3/tokens"), config.clock.clone());
        Shared {
            tenant: config.tenant.clone(),
            base_url,
            token_ttl: config.token_ttl,
            refresh_ttl: config.refresh_ttl,
            device_token_ttl: config.device_token_ttl,
            allow_cross_user: config.allow_cross_user,
            rotate_refresh_tokens: config.rotate_refresh_tokens,
            enforce_revocation: config.enforce_revocation,
            users: config.users.iter().cloned().collect(),
            systems: config
                .all_systems()
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect(),
            signer,
            shutdown: watch::Sender::new(false),
            counted: watch::Sender::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Unix seconds now, on the fake's clock.
    pub(crate) fn now(&self) -> i64 {
        self.signer.now()
    }

    /// The mutable state. A panic elsewhere must not wedge the fake, so a poisoned
    /// lock is taken over as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one call of `operation`.
    pub(crate) fn count(&self, operation: &str) {
        *self
            .lock()
            .stats
            .calls
            .entry(operation.to_owned())
            .or_default() += 1;
        self.counted.send_modify(|n| *n += 1);
    }

    /// `user`'s stored credential state on `system`.
    pub(crate) fn credential(&self, user: &str, system: &str) -> CredFixture {
        self.lock()
            .creds
            .get(&(user.to_owned(), system.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn shutting_down(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which also means we are going away.
        let _ = rx.wait_for(|down| *down).await;
    }
}
