//! Agent configuration: defaults, the TOML file, and the values derived from them.

pub mod effective;
pub mod keys;
pub mod layers;
pub mod profiles;
pub mod show;

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default Tapis base URL (DesignSafe's tenant).
pub const DEFAULT_BASE_URL: &str = "https://designsafe.tapis.io";

/// Everything the agent needs to run. Build it with [`Config::new`] and adjust
/// fields; [`ConfigFile::apply`] layers a config file on top.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tapis base URL, e.g. `https://designsafe.tapis.io`.
    pub base_url: String,
    /// Directory holding tokens, the OAuth client and the credential cache.
    pub state_dir: PathBuf,
    /// How long a `present` credential is answered from the cache.
    pub cache_ttl: Duration,
    /// Refresh this long before the access token expires; `None` means
    /// min(5 min, 10 % of the token's lifetime).
    pub refresh_margin: Option<Duration>,
    /// TCP connect timeout for Tapis.
    pub connect_timeout: Duration,
    /// Timeout of one HTTP request to Tapis.
    pub http_timeout: Duration,
    /// Retries of a failed safe call (5xx, 429, connection errors).
    pub retries: u32,
    /// First backoff delay; doubles each retry, with full jitter.
    pub retry_base: Duration,
    /// Overall deadline of one operation on one system, retries included:
    /// by default long enough for two calls that make Tapis SSH (a check and
    /// a create). An establish may wait `new_user_wait` more.
    pub request_deadline: Duration,
    /// Timeout of the calls that make Tapis SSH to the system's host
    /// (credential check and create): longer than Tapis's own SSH connect
    /// (30 s) and authenticate (20 s) timeouts (tapis-project/
    /// tapis-shared-java, `SSHTimeouts`), so that its answer arrives.
    pub ssh_call_timeout: Duration,
    /// How long a TMS key creation refused while a new user's access is
    /// still reaching the host (401 `SYSLIB_CRED_VALID_FAIL`) is retried.
    pub new_user_wait: Duration,
    /// How long Tapis may refuse a refresh, in words it also uses while
    /// failing, before the login is given up.
    pub refresh_give_up: Duration,
    /// Most client connections served at once.
    pub max_connections: usize,
    /// A connection idle for this long is closed.
    pub idle_timeout: Duration,
    /// A new connection must send its hello within this long.
    pub hello_timeout: Duration,
    /// A client that does not take its answer within this long is dropped.
    pub write_timeout: Duration,
    /// Most systems worked on upstream at once.
    pub max_parallel_systems: usize,
    /// Requests queued per system before callers are told "busy".
    pub queue_depth: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// OAuth client id to use instead of registering one.
    pub client_id: Option<String>,
    /// OAuth client key that goes with `client_id`.
    pub client_key: Option<tapis_agent_proto::Secret>,
    /// Keep an OpsUtils-style `~/.tapis_tokens.json` fresh at this path.
    pub export_token_file: Option<PathBuf>,
    /// Tenant id, when configured (the base URL is derived from it when
    /// none is given).
    pub tenant: Option<String>,
    /// Default user of `tapis-cred login`, when configured.
    pub username: Option<String>,
    /// The config file these settings were read from, when any.
    pub config_file: Option<PathBuf>,
    /// How agents sharing the state directory lock it.
    pub state_lock: crate::store::lock::LockChoice,
    /// The `flock` call (replaced in tests to fail as on NFS without lockd).
    pub flock_call: crate::store::lock::FlockCall,
    /// Host name the agent's OAuth client is named after; `None` reads the
    /// system's (`/proc/sys/kernel/hostname`).
    pub hostname: Option<String>,
    /// Allow a plain `http://` base URL to a host other than loopback (the
    /// password and tokens then cross the network in clear).
    pub allow_insecure_http: bool,
    /// The time token expiry, refresh times and cache ages are read from:
    /// the system clock, or in tests one they move ahead.
    pub clock: crate::clock::Clock,
}

impl Config {
    /// Defaults for the given base URL and state directory.
    pub fn new(base_url: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            state_dir: state_dir.into(),
            cache_ttl: Duration::from_secs(600),
            refresh_margin: None,
            connect_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(30),
            retries: 3,
            retry_base: Duration::from_millis(200),
            request_deadline: Duration::from_secs(150),
            ssh_call_timeout: Duration::from_secs(75),
            new_user_wait: Duration::from_secs(300),
            refresh_give_up: Duration::from_secs(3600),
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
            hello_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_parallel_systems: 32,
            queue_depth: 128,
            shutdown_grace: Duration::from_secs(10),
            client_id: None,
            client_key: None,
            export_token_file: None,
            tenant: None,
            username: None,
            config_file: None,
            state_lock: crate::store::lock::LockChoice::Auto,
            flock_call: crate::store::lock::FlockCall::default(),
            hostname: None,
            allow_insecure_http: false,
            clock: crate::clock::Clock::system(),
        }
    }

    /// Deadline of one operation: an establish may also wait for a new
    /// user's access to reach the host.
    pub fn deadline(&self, establish: bool) -> Duration {
        if establish {
            self.request_deadline + self.new_user_wait
        } else {
            self.request_deadline
        }
    }

    /// Refuses a plain-HTTP base URL to anything but this host, unless
    /// `allow_insecure_http` is set (see [`check_transport`]).
    pub fn check_transport(&self) -> Result<(), String> {
        check_transport(&self.base_url, self.allow_insecure_http)
    }

    /// The refresh margin for a token with the given lifetime.
    pub fn margin_for(&self, lifetime: Duration) -> Duration {
        self.refresh_margin
            .unwrap_or_else(|| Duration::from_secs(300).min(lifetime / 10))
    }
}

/// The rule for `base_url`'s scheme: `https://` always; `http://` only to a
/// loopback host (`localhost`, 127.0.0.0/8, `::1`: a local proxy or a test
/// server) unless `allow_insecure_http` says otherwise. The error names the
/// key that allows it.
pub fn check_transport(base_url: &str, allow_insecure_http: bool) -> Result<(), String> {
    let url = reqwest::Url::parse(base_url).map_err(|e| format!("{base_url:?}: {e}"))?;
    match url.scheme() {
        "https" => return Ok(()),
        "http" => {}
        other => return Err(format!("{base_url:?}: scheme {other} is not https")),
    }
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_insecure_http {
        return Ok(());
    }
    Err(format!(
        "{base_url:?} is plain HTTP to another host: the password and tokens would \
         cross the network in clear. Use https://, or set allow_insecure_http = true \
         in the config file if this network is trusted"
    ))
}

/// The config file (`$XDG_CONFIG_HOME/tapis-agent/config.toml`). Every key is
/// optional; unknown keys are an error naming the key. [`keys::KEYS`]
/// documents each key; `log_level` is read by the binary, not applied here.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Tapis base URL.
    pub base_url: Option<String>,
    /// Tenant id.
    pub tenant: Option<String>,
    /// Default user of `tapis-cred login`.
    pub username: Option<String>,
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// Log filter (`info`, `debug`, or a `RUST_LOG`-style directive).
    pub log_level: Option<String>,
    /// Cache TTL of a `present` credential, seconds.
    pub cache_ttl_secs: Option<u64>,
    /// Refresh margin, seconds.
    pub refresh_margin_secs: Option<u64>,
    /// TCP connect timeout, seconds.
    pub connect_timeout_secs: Option<u64>,
    /// HTTP request timeout, seconds.
    pub http_timeout_secs: Option<u64>,
    /// Retries of failed safe calls.
    pub retries: Option<u32>,
    /// Overall deadline per operation, seconds.
    pub request_deadline_secs: Option<u64>,
    /// Timeout of a credential check or create (Tapis SSHes), seconds.
    pub credential_check_timeout_secs: Option<u64>,
    /// How long a new user's refused key creation is retried, seconds.
    pub new_user_wait_secs: Option<u64>,
    /// How long refused refreshes go on before the login is given up, seconds.
    pub refresh_give_up_secs: Option<u64>,
    /// Most concurrent client connections.
    pub max_connections: Option<usize>,
    /// Idle connection timeout, seconds.
    pub idle_timeout_secs: Option<u64>,
    /// Most systems worked on upstream at once.
    pub max_parallel_systems: Option<usize>,
    /// OAuth client id to use instead of registering one.
    pub client_id: Option<String>,
    /// File holding the OAuth client key (must be 0600).
    pub client_key_file: Option<PathBuf>,
    /// Keep `~/.tapis_tokens.json` fresh (true) or a given path fresh.
    pub export_token_file: Option<ExportSetting>,
    /// `auto`, `flock` or `lockfile`: how agents sharing the state
    /// directory lock it.
    pub state_lock: Option<crate::store::lock::LockChoice>,
    /// Allow plain `http://` to a host other than loopback.
    pub allow_insecure_http: Option<bool>,
    /// `[profiles.NAME]` sections: more tenants or accounts served by the
    /// same agent process (see [`layers`]). Not read by [`ConfigFile::apply`].
    pub profiles: Option<std::collections::BTreeMap<String, ConfigFile>>,
}

/// `export_token_file = true` or `export_token_file = "/path"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ExportSetting {
    /// true: the default path; false: off.
    Enabled(bool),
    /// This path.
    Path(PathBuf),
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Reads the config file; `Ok(None)` when there is none. Like ssh with its
/// config, a file that someone else could have written is refused: it
/// chooses `base_url`, hence where the password goes. It must belong to us
/// (or root) and not be writable by group or others; the error says how
/// to fix it. (A symlink is followed: the file it names is checked.)
pub fn read_config_text(path: &Path) -> Result<Option<String>, ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let read = |path: &Path| -> std::io::Result<Option<(std::fs::Metadata, String)>> {
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // Checked on the open file: what is read is what was checked.
        let meta = file.metadata()?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text)?;
        Ok(Some((meta, text)))
    };
    let Some((meta, text)) = read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?
    else {
        return Ok(None);
    };
    let unsafe_file = |why: String, fix: String| ConfigError::Invalid {
        path: path.to_owned(),
        message: format!(
            "{why}: whoever can change this file chooses the Tapis server that receives \
             your password, so it is not used; fix: {fix}"
        ),
    };
    let me = crate::uid::euid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_file(
            format!("owned by uid {}, not by you (uid {me})", meta.uid()),
            format!(
                "use a copy of your own (cp {0} ~/.config/tapis-agent/config.toml), \
                 or have it owned by you (chown {me} {0})",
                path.display()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_file(
            format!("writable by group or others (mode {:04o})", mode),
            format!("chmod go-w {}", path.display()),
        ));
    }
    Ok(Some(text))
}

impl ConfigFile {
    /// Reads and parses a config file. A missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match read_config_text(path)? {
            Some(text) => Self::parse(&text, path),
            None => Ok(Self::default()),
        }
    }

    /// Parses the text of a config file. Errors read `PATH:LINE: what`, name
    /// the key, and say which type the key takes.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: keys::describe_error(text, &e),
        })
    }

    /// Applies the file's settings to `config`. `home` resolves the default
    /// export path.
    pub fn apply(self, config: &mut Config, path: &Path, home: &Path) -> Result<(), ConfigError> {
        let secs = Duration::from_secs;
        if let Some(v) = self.base_url {
            config.base_url = v.trim_end_matches('/').to_owned();
        }
        if let Some(v) = self.tenant {
            config.tenant = Some(v);
        }
        if let Some(v) = self.username {
            config.username = Some(v);
        }
        if let Some(v) = self.state_dir {
            config.state_dir = v;
        }
        if let Some(v) = self.cache_ttl_secs {
            config.cache_ttl = secs(v);
        }
        if let Some(v) = self.refresh_margin_secs {
            config.refresh_margin = Some(secs(v));
        }
        if let Some(v) = self.connect_timeout_secs {
            config.connect_timeout = secs(v.max(1));
        }
        if let Some(v) = self.http_timeout_secs {
            config.http_timeout = secs(v.max(1));
        }
        if let Some(v) = self.retries {
            config.retries = v.min(10);
        }
        if let Some(v) = self.request_deadline_secs {
            config.request_deadline = secs(v.max(1));
        }
        if let Some(v) = self.credential_check_timeout_secs {
            config.ssh_call_timeout = secs(v.max(1));
        }
        if let Some(v) = self.new_user_wait_secs {
            config.new_user_wait = secs(v);
        }
        if let Some(v) = self.refresh_give_up_secs {
            config.refresh_give_up = secs(v);
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v.clamp(1, 65_536);
        }
        if let Some(v) = self.idle_timeout_secs {
            config.idle_timeout = secs(v.max(1));
        }
        if let Some(v) = self.max_parallel_systems {
            config.max_parallel_systems = v.clamp(1, 1024);
        }
        if let Some(v) = self.state_lock {
            config.state_lock = v;
        }
        if let Some(v) = self.allow_insecure_http {
            config.allow_insecure_http = v;
        }
        config.client_id = self.client_id.or(config.client_id.take());
        if let Some(key_file) = self.client_key_file {
            let key =
                crate::store::read_private_text(&key_file).map_err(|e| ConfigError::Invalid {
                    path: path.to_owned(),
                    message: format!("client_key_file {}: {e}", key_file.display()),
                })?;
            config.client_key = Some(tapis_agent_proto::Secret::new(key.trim()));
        }
        match self.export_token_file {
            Some(ExportSetting::Enabled(true)) => {
                config.export_token_file = Some(home.join(".tapis_tokens.json"));
            }
            Some(ExportSetting::Enabled(false)) => config.export_token_file = None,
            Some(ExportSetting::Path(p)) => config.export_token_file = Some(p),
            None => {}
        }
        if config.client_id.is_some() != config.client_key.is_some() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: "client_id and client_key_file must be given together".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = toml::from_str::<ConfigFile>("cache_tll_secs = 3\n").unwrap_err();
        assert!(err.to_string().contains("cache_tll_secs"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let err = toml::from_str::<ConfigFile>("retries = \"many\"\n").unwrap_err();
        assert!(err.to_string().contains("retries"), "{err}");
    }

    #[test]
    fn margin_is_min_of_five_minutes_and_ten_percent() {
        let c = Config::new("http://x", "/tmp");
        assert_eq!(
            c.margin_for(Duration::from_secs(4 * 3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            c.margin_for(Duration::from_secs(30)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_config_file_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "retries = 2\n").unwrap();
        for mode in [0o600, 0o644, 0o444] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                read_config_text(&path).unwrap().as_deref(),
                Some("retries = 2\n")
            );
        }
        for mode in [0o666, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_config_text(&path).unwrap_err().to_string();
            assert!(
                e.contains("writable by group or others")
                    && e.ends_with(&format!("fix: chmod go-w {}", path.display())),
                "{e}"
            );
        }
        assert_eq!(read_config_text(&dir.path().join("none")).unwrap(), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        if crate::uid::euid() == 0 {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let e = ConfigFile::load(&path).unwrap_err().to_string();
            assert!(e.contains("owned by uid 65534, not by you"), "{e}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "https://designsafe.tapis.io",
            "http://127.0.0.1:5000",
            "http://127.9.9.9",
            "http://localhost:8080/x",
            "http://LOCALHOST",
            "http://[::1]:80",
        ] {
            assert_eq!(check_transport(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://10.255.255.1",
            "http://designsafe.tapis.io",
            "http://localhost.example.org",
            "http://[::2]",
            "http://128.0.0.1",
        ] {
            let e = check_transport(bad, false).unwrap_err();
            assert!(e.contains("allow_insecure_http = true"), "{e}");
            assert_eq!(check_transport(bad, true), Ok(()), "{bad}");
        }
        assert!(check_transport("ftp://x", true).is_err());
    }

    #[test]
    fn export_setting_true_uses_home() {
        let f: ConfigFile = toml::from_str("export_token_file = true\ncache_ttl_secs = 5").unwrap();
        let mut c = Config::new("http://x", "/tmp");
        f.apply(&mut c, Path::new("c.toml"), Path::new("/home/u"))
            .unwrap();
        assert_eq!(
            c.export_token_file,
            Some(PathBuf::from("/home/u/.tapis_tokens.json"))
        );
        assert_eq!(c.cache_ttl, Duration::from_secs(5));
    }
}
