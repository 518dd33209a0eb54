//! The effective configuration of a profile, and where each value came from
//! ([`layers`](super::layers) works it out, [`profiles`](super::profiles)
//! for the profiles beside the default one).

use super::Config;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// The config file, at this line.
    File(usize),
    /// Computed from another setting.
    Derived(&'static str),
    /// Built in.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File(line) => write!(f, "file, line {line}"),
            Source::Derived(from) => write!(f, "from {from}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// Everything the agent binary runs with, and where each value came from:
/// the default profile, and the `[profiles.NAME]` served beside it.
#[derive(Debug)]
pub struct Effective {
    /// The agent's configuration.
    pub config: Config,
    /// The socket to listen on.
    pub socket: PathBuf,
    /// The log filter.
    pub log_level: String,
    /// The config file consulted.
    pub config_file: PathBuf,
    /// Whether it exists.
    pub config_file_found: bool,
    /// The other profiles (empty in a profile itself).
    pub profiles: Vec<Effective>,
    pub(super) name: Option<String>,
    pub(super) sources: BTreeMap<&'static str, Source>,
}

impl Effective {
    /// Where `key` (a config key, or `socket`/`config`) came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// The profile's name; `None` for the default profile.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The default profile (`None`) or the profile called `name`.
    pub fn select(&self, name: Option<&str>) -> Option<&Effective> {
        match name {
            None => Some(self),
            Some(n) => self.profiles.iter().find(|p| p.name() == Some(n)),
        }
    }

    /// A profile beside the default profile `base`.
    pub(super) fn profile(
        name: String,
        config: Config,
        socket: PathBuf,
        base: &Effective,
        sources: BTreeMap<&'static str, Source>,
    ) -> Self {
        Self {
            config,
            socket,
            log_level: base.log_level.clone(),
            config_file: base.config_file.clone(),
            config_file_found: base.config_file_found,
            profiles: Vec::new(),
            name: Some(name),
            sources,
        }
    }
}
