//! What a fake Tapis instance serves: tenant, users, systems and token lifetimes.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

/// The `effectiveUserId` of systems where each Tapis user logs in as themself.
pub const DYNAMIC_EFFECTIVE_USER: &str = "${apiUserId}";

/// Configuration of a [`FakeTapis`](super::FakeTapis).
///
/// `Default` is the fixture the tests rely on: tenant `designsafe`, user
/// `testuser`/`testpass`, systems `stampede3`, `ls6`, `frontera`,
/// `designsafe.storage.default` (all TMS_KEYS) and `corral.pki` (PKI_KEYS), no
/// credentials stored, access tokens valid 4 h, refresh tokens 1 year, refresh
/// tokens not rotated and revocation not enforced (as the live services).
#[derive(Clone)]
pub struct FakeConfig {
    /// Tenant id put in tokens and served by `/v3/tenants`.
    pub tenant: String,
    /// Lifetime of access tokens (whole seconds; a few seconds is fine).
    pub token_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// Lifetime of the access token of a device-code login: 30 days at Tapis
    /// (tapis-project/authenticator, service/models.py, `DeviceCode.set_ttl`),
    /// whatever the tenant's default.
    pub device_token_ttl: Duration,
    /// Accepted `(username, password)` pairs for the password grant.
    pub users: Vec<(String, String)>,
    /// Systems served by `/v3/systems/{id}` and the credential endpoints.
    pub systems: Vec<FakeSystem>,
    /// Adds this many TMS_KEYS systems `sys0000`, `sys0001`, … (for load tests).
    pub extra_tms_systems: usize,
    /// When true a token may act on any `{user}` in credential paths, as a tenant
    /// admin can; when false (the default) that is answered 403 `SYSLIB_UNAUTH`.
    pub allow_cross_user: bool,
    /// Stricter than Tapis: a refresh token is good for one refresh only. The
    /// live Authenticator does not rotate (tapis-project/authenticator,
    /// service/controllers.py, `TokensResource.post`: the refresh grant checks
    /// the token's signature and expiry, never whether it was used), so by
    /// default a used refresh token stays valid until its own expiry.
    pub rotate_refresh_tokens: bool,
    /// Revoked access tokens are refused as the deployment's proxy does: 500
    /// `Token is revoked.` (tapis-deployer, the proxy's `auth_request /_auth`
    /// and `error_page 500 /token-revoked.json`; see `caller.rs`). The
    /// services themselves do not look revocations up (tapis-project/
    /// tapis-shared-java, `JWTValidateRequestFilter.filter`;
    /// tapipy-tapisservice, tapisservice/auth.py, `validate_token`), so
    /// without the proxy (the default) a revoked token works until it expires.
    pub enforce_revocation: bool,
    /// The time tokens are made and checked on: the system clock, or the
    /// agent's [`TestClock`](tapis_agent::clock::TestClock) when both run in
    /// one process, so that a test ages tokens by moving it.
    pub clock: tapis_agent::clock::Clock,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            tenant: "designsafe".into(),
            token_ttl: Duration::from_secs(4 * 3600),
            refresh_ttl: Duration::from_secs(365 * 24 * 3600),
            device_token_ttl: Duration::from_secs(30 * 24 * 3600),
            users: vec![("testuser".into(), "testpass".into())],
            systems: vec![
                FakeSystem::tms("stampede3", "stampede3.tacc.utexas.edu"),
                FakeSystem::tms("ls6", "ls6.tacc.utexas.edu"),
                FakeSystem::tms("frontera", "frontera.tacc.utexas.edu"),
                FakeSystem::tms("designsafe.storage.default", "data.tacc.utexas.edu").storage(),
                FakeSystem::new("corral.pki", "corral.tacc.utexas.edu", AuthnMethod::PkiKeys)
                    .storage(),
            ],
            extra_tms_systems: 0,
            allow_cross_user: false,
            rotate_refresh_tokens: false,
            enforce_revocation: false,
            clock: tapis_agent::clock::Clock::system(),
        }
    }
}

impl FakeConfig {
    /// All systems: the configured ones followed by the generated `sysNNNN` ones.
    pub fn all_systems(&self) -> Vec<FakeSystem> {
        let width = self
            .extra_tms_systems
            .saturating_sub(1)
            .to_string()
            .len()
            .max(4);
        let extra = (0..self.extra_tms_systems)
            .map(|i| FakeSystem::tms(&format!("sys{i:0width$}"), "localhost"));
        self.systems.iter().cloned().chain(extra).collect()
    }
}

// Written by hand so that passwords never reach a log line.
impl fmt::Debug for FakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("FakeConfig")
            .field("tenant", &self.tenant)
            .field("token_ttl", &self.token_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("device_token_ttl", &self.device_token_ttl)
            .field("users", &users)
            .field("systems", &self.systems.len())
            .field("extra_tms_systems", &self.extra_tms_systems)
            .field("allow_cross_user", &self.allow_cross_user)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("enforce_revocation", &self.enforce_revocation)
            .finish()
    }
}

/// Authentication methods of a Tapis system (`defaultAuthnMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthnMethod {
    /// Password login.
    Password,
    /// SSH key pair registered by the user.
    PkiKeys,
    /// S3 access key.
    AccessKey,
    /// Token (e.g. Globus).
    Token,
    /// SSH certificate.
    Cert,
    /// Keys minted by the Trust Manager System: the only kind Tapis can create itself.
    TmsKeys,
}

impl AuthnMethod {
    /// The spelling Tapis uses, e.g. `TMS_KEYS`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthnMethod::Password => "PASSWORD",
            AuthnMethod::PkiKeys => "PKI_KEYS",
            AuthnMethod::AccessKey => "ACCESS_KEY",
            AuthnMethod::Token => "TOKEN",
            AuthnMethod::Cert => "CERT",
            AuthnMethod::TmsKeys => "TMS_KEYS",
        }
    }
}

/// One system of the fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSystem {
    /// System id, e.g. `stampede3`.
    pub id: String,
    /// Host name.
    pub host: String,
    /// `LINUX`, `S3`, `IRODS`, `GLOBUS`.
    pub system_type: String,
    /// How users authenticate; the credential check validates with it.
    pub default_authn_method: AuthnMethod,
    /// [`DYNAMIC_EFFECTIVE_USER`] or a fixed login; TMS keys need the dynamic one.
    pub effective_user_id: String,
    /// Whether jobs can run on it.
    pub can_exec: bool,
    /// Disabled systems are still served, as Tapis does.
    pub enabled: bool,
    /// Owner of the system.
    pub owner: String,
}

impl FakeSystem {
    /// A LINUX execution system with a dynamic effective user.
    pub fn new(id: &str, host: &str, method: AuthnMethod) -> Self {
        FakeSystem {
            id: id.into(),
            host: host.into(),
            system_type: "LINUX".into(),
            default_authn_method: method,
            effective_user_id: DYNAMIC_EFFECTIVE_USER.into(),
            can_exec: true,
            enabled: true,
            owner: "wma_prtl".into(),
        }
    }

    /// A LINUX execution system using TMS keys.
    pub fn tms(id: &str, host: &str) -> Self {
        Self::new(id, host, AuthnMethod::TmsKeys)
    }

    /// The same system, but for storage only (`canExec` false).
    pub fn storage(mut self) -> Self {
        self.can_exec = false;
        self
    }

    /// The same system with another `systemType` (TMS keys need `LINUX`).
    pub fn system_type(mut self, system_type: &str) -> Self {
        self.system_type = system_type.into();
        self
    }

    /// The same system with a static effective user (TMS keys need a dynamic one).
    pub fn static_user(mut self, login: &str) -> Self {
        self.effective_user_id = login.into();
        self
    }
}
