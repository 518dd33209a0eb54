//! Working out the effective configuration: flag > environment > file >
//! default, noting where each value came from.

use super::effective::{Effective, Source};
use super::{Config, ConfigError, ConfigFile, DEFAULT_BASE_URL, keys, profiles};
use crate::paths;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Values given on the command line (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config PATH`.
    pub config: Option<PathBuf>,
    /// `--base-url URL`.
    pub base_url: Option<String>,
    /// `--state-dir PATH`.
    pub state_dir: Option<PathBuf>,
    /// `--socket PATH`.
    pub socket: Option<PathBuf>,
    /// `-v` count.
    pub verbose: u8,
}

/// Layers defaults, the config file, `env` and `flags`. `env` reads an
/// environment variable (empty counts as unset).
pub fn resolve(
    flags: &Flags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Effective, ConfigError> {
    let env = |var: &str| env(var).filter(|v| !v.is_empty());
    let mut sources = BTreeMap::new();
    let config_file = match &flags.config {
        Some(p) => {
            sources.insert("config", Source::Flag("--config"));
            p.clone()
        }
        None => paths::default_config_file(),
    };
    let text = super::read_config_text(&config_file)?;
    let mut config = Config::new(DEFAULT_BASE_URL, paths::default_state_dir());
    let mut log_level = "info".to_owned();
    let mut sections = None;
    if let Some(text) = &text {
        let mut file = ConfigFile::parse(text, &config_file)?;
        sections = file.profiles.take().filter(|p| !p.is_empty());
        for (key, line) in keys::lines_of_keys(text, None) {
            sources.insert(key, Source::File(line));
        }
        if let Some(level) = file.log_level.take() {
            log_level = level;
        }
        file.apply(&mut config, &config_file, &paths::home())?;
    }

    // Environment, then flags: each later layer wins.
    let mut set = |key: &'static str, source: Source, value: String, config: &mut Config| {
        match key {
            "base_url" => config.base_url = value.trim_end_matches('/').to_owned(),
            "tenant" => config.tenant = Some(value),
            "username" => config.username = Some(value),
            "state_dir" => config.state_dir = PathBuf::from(value),
            "log_level" => log_level = value,
            _ => unreachable!("only keys with an env or flag layer"),
        }
        sources.insert(key, source);
    };
    for key in keys::KEYS {
        if let Some(var) = key.env
            && let Some(value) = env(var)
        {
            set(key.name, Source::Env(var), value, &mut config);
        }
    }
    if let Some(v) = &flags.base_url {
        set(
            "base_url",
            Source::Flag("--base-url"),
            v.clone(),
            &mut config,
        );
    }
    if let Some(v) = &flags.state_dir {
        let v = v.display().to_string();
        set("state_dir", Source::Flag("--state-dir"), v, &mut config);
    }
    if flags.verbose > 0 {
        let level = if flags.verbose == 1 { "debug" } else { "trace" };
        set("log_level", Source::Flag("-v"), level.into(), &mut config);
    }
    let socket = match (&flags.socket, env(paths::SOCKET_ENV)) {
        (Some(p), _) => {
            sources.insert("socket", Source::Flag("--socket"));
            p.clone()
        }
        (None, Some(p)) => {
            sources.insert("socket", Source::Env(paths::SOCKET_ENV));
            PathBuf::from(p)
        }
        (None, None) => paths::default_socket(),
    };

    // A tenant alone names its base URL.
    if !sources.contains_key("base_url")
        && let Some(tenant) = &config.tenant
    {
        config.base_url = format!("https://{tenant}.tapis.io");
        sources.insert("base_url", Source::Derived("tenant"));
    }
    validate(&config, &log_level, &config_file, &sources)?;
    config.config_file = Some(config_file.clone());
    let mut effective = Effective {
        config,
        socket,
        log_level,
        config_file_found: text.is_some(),
        config_file,
        profiles: Vec::new(),
        name: None,
        sources,
    };
    if let (Some(text), Some(sections)) = (&text, sections) {
        effective.profiles = profiles::resolve(text, &effective.config_file, sections, &effective)?;
        for p in &effective.profiles {
            validate(&p.config, &p.log_level, &p.config_file, &p.sources)?;
        }
    }
    Ok(effective)
}

fn validate(
    config: &Config,
    log_level: &str,
    file: &Path,
    sources: &BTreeMap<&'static str, Source>,
) -> Result<(), ConfigError> {
    let bad = |key: &str, what: String| {
        let from = sources.get(key).cloned().unwrap_or(Source::Default);
        ConfigError::Invalid {
            path: file.to_owned(),
            message: format!("{key} (from {from}): {what}"),
        }
    };
    let url = &config.base_url;
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.contains(char::is_whitespace)
    {
        return Err(bad(
            "base_url",
            format!("{url:?} is not a URL starting with https:// or http://"),
        ));
    }
    if let Err(why) = config.check_transport() {
        return Err(bad("base_url", why));
    }
    if let Some(t) = &config.tenant
        && !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(bad("tenant", format!("{t:?} is not a tenant id")));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(log_level) {
        return Err(bad(
            "log_level",
            format!("{log_level:?} is not a log filter: {e}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn with_file(text: &str) -> (tempfile::TempDir, Flags) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        (dir, flags)
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let (_d, mut flags) = with_file("base_url = \"https://file.example\"\nretries = 2\n");
        let env = env_of(&[("TAPIS_BASE_URL", "https://env.example")]);
        let e = resolve(&flags, &env).unwrap();
        assert_eq!(e.config.base_url, "https://env.example");
        assert_eq!(e.source("base_url"), Source::Env("TAPIS_BASE_URL"));
        assert_eq!(e.source("retries"), Source::File(2));
        assert_eq!(e.source("cache_ttl_secs"), Source::Default);
        flags.base_url = Some("https://flag.example/".into());
        let e = resolve(&flags, &env).unwrap();
        assert_eq!(e.config.base_url, "https://flag.example");
        assert_eq!(e.source("base_url"), Source::Flag("--base-url"));
        let e = resolve(&flags, env_of(&[])).unwrap();
        assert_eq!(e.config.retries, 2);
        assert_eq!(e.source("config"), Source::Flag("--config"));
    }

    #[test]
    fn tenant_derives_base_url() {
        let (_d, flags) = with_file("tenant = \"tacc\"\nusername = \"jdoe\"\n");
        let e = resolve(&flags, env_of(&[])).unwrap();
        assert_eq!(e.config.base_url, "https://tacc.tapis.io");
        assert_eq!(e.source("base_url"), Source::Derived("tenant"));
        assert_eq!(e.config.username.as_deref(), Some("jdoe"));
        let e = resolve(&flags, env_of(&[("TAPIS_USERNAME", "other")])).unwrap();
        assert_eq!(e.config.username.as_deref(), Some("other"));
    }

    #[test]
    fn log_level_layers() {
        let (_d, mut flags) = with_file("log_level = \"warn\"\n");
        assert_eq!(resolve(&flags, env_of(&[])).unwrap().log_level, "warn");
        let env = env_of(&[("RUST_LOG", "tapis_agent=trace")]);
        assert_eq!(
            resolve(&flags, &env).unwrap().log_level,
            "tapis_agent=trace"
        );
        flags.verbose = 1;
        assert_eq!(resolve(&flags, &env).unwrap().log_level, "debug");
    }

    #[test]
    fn bad_values_name_key_and_source() {
        let (_d, flags) = with_file("base_url = \"designsafe.tapis.io\"\n");
        let err = resolve(&flags, env_of(&[])).unwrap_err().to_string();
        assert!(err.contains("base_url (from file, line 1)"), "{err}");
        let (_d, flags) = with_file("");
        let err = resolve(&flags, env_of(&[("RUST_LOG", "==")])).unwrap_err();
        assert!(
            err.to_string().contains("log_level (from env RUST_LOG)"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let flags = Flags {
            config: Some(dir.path().join("none.toml")),
            socket: Some("/s".into()),
            ..Flags::default()
        };
        let e = resolve(&flags, env_of(&[])).unwrap();
        assert!(!e.config_file_found);
        assert_eq!(e.config.base_url, DEFAULT_BASE_URL);
        assert_eq!(e.socket, Path::new("/s"));
        assert_eq!(e.log_level, "info");
    }
}
