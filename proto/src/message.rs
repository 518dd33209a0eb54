//! The messages. Plain data: no behaviour lives here.
//!
//! Compatibility rule: new variants and fields are only ever appended, and any
//! change to the encoding of an existing message bumps
//! [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION) (the golden-bytes test fails
//! first).

use crate::{ErrorReply, Secret};
use serde::{Deserialize, Serialize};

/// A client's request. The first request on a connection must be
/// [`Request::Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Opens the conversation and states the protocol version.
    Hello {
        /// The client's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
        protocol_version: u32,
        /// The client's package version, for logs.
        client_version: String,
    },
    /// Make sure credentials exist on each system (creating them if needed).
    Establish {
        /// System ids, handled concurrently.
        systems: Vec<String>,
        /// Tapis user; `None` means the user the token belongs to.
        user: Option<String>,
        /// Ignore the cache and ask Tapis.
        fresh: bool,
    },
    /// Remove credentials from each system (idempotent).
    Revoke {
        /// System ids, handled concurrently.
        systems: Vec<String>,
        /// Tapis user; `None` means the user the token belongs to.
        user: Option<String>,
    },
    /// Report each system's credential state without changing anything.
    Check {
        /// System ids, handled concurrently.
        systems: Vec<String>,
        /// Tapis user; `None` means the user the token belongs to.
        user: Option<String>,
        /// Ignore the cache and ask Tapis.
        fresh: bool,
    },
    /// Hand out an access token valid for at least `min_valid_secs`.
    Token {
        /// Minimum remaining lifetime of the returned token, in seconds.
        min_valid_secs: u64,
    },
    /// Log in (replacing any current login).
    Login(LoginMethod),
    /// Ask whether a device-code login started with
    /// [`LoginMethod::DeviceStart`] has completed.
    DevicePoll,
    /// Forget the login: revoke tokens at Tapis, delete them from disk and
    /// clear the credential cache.
    Logout {
        /// Also delete the agent's stored OAuth client.
        forget_client: bool,
    },
    /// Agent version, uptime, login state and cached systems.
    Status,
    /// Write the current token to an OpsUtils-style `.tapis_tokens.json`.
    ExportTokenFile {
        /// Destination; `None` means the configured or default path.
        path: Option<String>,
    },
    /// The agent's effective settings that a client may need (the default
    /// login user, the paths it uses). Nothing secret.
    Settings,
    /// Probe Tapis from the agent: a `GET /v3/systems/healthcheck`, timed.
    /// The client stays free of HTTP; the agent already has a client.
    Ping,
}

/// How to log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginMethod {
    /// Password grant. The password is used once and never stored.
    Password {
        /// Tapis username.
        username: String,
        /// The password (zeroed on drop, redacted in `Debug`).
        password: Secret,
    },
    /// Adopt the access token of a token file written elsewhere (OpsUtils'
    /// `~/.tapis_tokens.json`, or another agent's export): the agent reads
    /// and checks the file, with the code that writes its own.
    ImportTokenFile {
        /// Absolute path of the file.
        path: String,
    },
    /// Start a device-code login; answered with [`Response::DeviceCode`].
    DeviceStart,
}

/// The agent's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Hello`].
    Hello {
        /// The agent's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
        protocol_version: u32,
        /// The agent's package version.
        agent_version: String,
    },
    /// One outcome per requested system, in request order.
    Systems(Vec<SystemOutcome>),
    /// Answer to [`Request::Token`].
    Token(TokenGrant),
    /// The login succeeded.
    LoggedIn {
        /// Tapis username of the new login.
        username: String,
        /// Tenant id from the token.
        tenant: String,
        /// Access-token expiry, Unix seconds.
        expires_at: i64,
        /// Whether the agent can refresh the token without a new login.
        has_refresh_token: bool,
        /// Why the login cannot be refreshed, when it cannot.
        refresh_problem: Option<String>,
    },
    /// A device-code login has started: show these to the user.
    DeviceCode(DeviceCode),
    /// The device-code login is not finished yet; poll again after the interval.
    DevicePending,
    /// The login is gone.
    LoggedOut,
    /// Answer to [`Request::Status`].
    Status(StatusInfo),
    /// The token file was written.
    Exported {
        /// Where it was written.
        path: String,
        /// Expiry of the token in it, Unix seconds.
        expires_at: i64,
    },
    /// The request failed as a whole.
    Error(ErrorReply),
    /// Answer to [`Request::Settings`].
    Settings(AgentSettings),
    /// Answer to [`Request::Ping`].
    Pong(Pong),
    /// Not an answer: sent every second or so while a request takes long,
    /// before its answer. Says what the agent waits for, one line per
    /// system that has something to say (possibly none). A client reads on
    /// until the answer comes.
    Progress(Vec<String>),
}

impl Response {
    /// The variant's name only, for messages: the fields may hold secrets
    /// or be large.
    pub fn variant_name(&self) -> &'static str {
        match self {
            Response::Hello { .. } => "Hello",
            Response::Systems(_) => "Systems",
            Response::Token(_) => "Token",
            Response::LoggedIn { .. } => "LoggedIn",
            Response::DeviceCode(_) => "DeviceCode",
            Response::DevicePending => "DevicePending",
            Response::LoggedOut => "LoggedOut",
            Response::Status(_) => "Status",
            Response::Exported { .. } => "Exported",
            Response::Error(_) => "Error",
            Response::Settings(_) => "Settings",
            Response::Pong(_) => "Pong",
            Response::Progress(_) => "Progress",
        }
    }
}

/// The agent's effective, non-secret settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSettings {
    /// Tapis base URL.
    pub base_url: String,
    /// Configured tenant id, if any.
    pub tenant: Option<String>,
    /// Default user of `tapis-cred login`, if configured.
    pub username: Option<String>,
    /// The config file the agent read (it may not exist).
    pub config_file: Option<String>,
    /// The state directory (tokens, OAuth client, cache).
    pub state_dir: String,
    /// The token file the agent keeps fresh, if enabled.
    pub export_token_file: Option<String>,
}

/// Answer to [`Request::Ping`]: how Tapis answered the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The URL probed.
    pub url: String,
    /// Round-trip time of a successful probe, milliseconds.
    pub tapis_latency_ms: Option<u64>,
    /// Why the probe failed, when it did.
    pub tapis_error: Option<String>,
}

/// A valid access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenGrant {
    /// The JWT (redacted in `Debug`).
    pub access_token: Secret,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Tapis username the token belongs to.
    pub username: String,
}

/// What to show the user during a device-code login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCode {
    /// Page where the user enters the code.
    pub verification_uri: String,
    /// The code to enter.
    pub user_code: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

/// The result for one system of an establish, revoke or check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemOutcome {
    /// System id as requested.
    pub system: String,
    /// Tapis user the operation was for (empty when it could not be known).
    pub user: String,
    /// The state reached, or why not.
    pub outcome: Outcome,
    /// True when answered from the agent's cache without asking Tapis.
    pub cached: bool,
}

/// Success with a state, or an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The operation reached this state.
    Ok(CredState),
    /// The operation failed for this system.
    Err(ErrorReply),
}

/// Credential state of a user on a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CredState {
    /// Credentials exist and Tapis accepts them.
    Present,
    /// Credentials were missing and have been created.
    Created,
    /// Stored credentials were rejected and have been created anew.
    Recreated,
    /// Credentials were removed (or were not there).
    Revoked,
    /// No credentials are stored (check only).
    Missing,
    /// Credentials are stored but the system rejects them (check only).
    Rejected,
    /// Credentials are stored but Tapis cannot reach the system's host (check only).
    HostUnreachable,
}

impl CredState {
    /// Every state, in declaration order.
    pub const ALL: [CredState; 7] = [
        CredState::Present,
        CredState::Created,
        CredState::Recreated,
        CredState::Revoked,
        CredState::Missing,
        CredState::Rejected,
        CredState::HostUnreachable,
    ];

    /// Stable snake_case name, used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            CredState::Present => "present",
            CredState::Created => "created",
            CredState::Recreated => "recreated",
            CredState::Revoked => "revoked",
            CredState::Missing => "missing",
            CredState::Rejected => "rejected",
            CredState::HostUnreachable => "host_unreachable",
        }
    }
}

/// Answer to [`Request::Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Agent package version.
    pub agent_version: String,
    /// Agent process id.
    pub pid: u32,
    /// Seconds since the agent started.
    pub uptime_secs: u64,
    /// Tapis base URL the agent talks to.
    pub base_url: String,
    /// Login and token state.
    pub login: LoginState,
    /// Cached systems, at most [`StatusInfo::MAX_SYSTEMS`] of them.
    pub systems: Vec<SystemStatus>,
    /// How many systems the cache holds in all.
    pub systems_total: u64,
    /// The state directory, which other agents may share.
    pub state: StateDirStatus,
}

/// The state directory and how the agents sharing it take turns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDirStatus {
    /// The directory.
    pub dir: String,
    /// Its filesystem, e.g. `nfs4 (fs1:/home on /home)`, when known.
    pub filesystem: Option<String>,
    /// `flock` or `lockfile`.
    pub lock_method: String,
    /// Why this method: the filesystem's rule, a failed `flock`, a peer's
    /// marker or the configuration.
    pub lock_reason: Option<String>,
}

impl StatusInfo {
    /// The most systems listed in one status answer, to keep it in one
    /// frame: as many as one request may name.
    pub const MAX_SYSTEMS: usize = crate::limits::MAX_SYSTEMS_PER_REQUEST;
}

/// Login and token state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginState {
    /// Nobody has logged in.
    LoggedOut,
    /// There was a login, but the token cannot be renewed without a new one.
    LoginRequired {
        /// User of the lapsed login, when known.
        username: Option<String>,
        /// Why, e.g. `access token expired and no refresh token`.
        reason: String,
    },
    /// A valid token is held.
    LoggedIn {
        /// Tapis username.
        username: String,
        /// Tenant id.
        tenant: String,
        /// Access-token expiry, Unix seconds.
        expires_at: i64,
        /// Whether a refresh token is held.
        has_refresh_token: bool,
        /// Refresh-token expiry, Unix seconds, when known.
        refresh_expires_at: Option<i64>,
        /// When the agent plans the next refresh, Unix seconds.
        next_refresh_at: Option<i64>,
        /// The last refresh failure, if the last attempt failed.
        last_refresh_error: Option<String>,
        /// Why the login cannot be refreshed, when it cannot.
        refresh_problem: Option<String>,
    },
}

/// One cached system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// System id.
    pub system: String,
    /// Tapis user.
    pub user: String,
    /// Last known state.
    pub state: CredState,
    /// When Tapis last confirmed the state, Unix seconds.
    pub checked_at: i64,
}
