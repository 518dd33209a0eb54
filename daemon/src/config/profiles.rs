//! `[profiles.NAME]`: more tenants or accounts served by the same agent
//! process. Each profile is a complete agent of its own (token manager,
//! cache, state directory) on its own socket next to the default one, so
//! nothing inside the agent or on the wire needs to know about profiles:
//! `tapis-cred --profile NAME` only picks the socket.

use super::effective::{Effective, Source};
use super::{Config, ConfigError, ConfigFile, DEFAULT_BASE_URL, keys};
use crate::paths;
use std::collections::BTreeMap;
use std::path::Path;

/// Keys a profile never takes from the top level: they say which Tapis and
/// which account, or name files two profiles must not share. `log_level`
/// belongs to the whole process and is only allowed at the top.
const NOT_INHERITED: &[&str] = &[
    "base_url",
    "tenant",
    "state_dir",
    "client_id",
    "client_key_file",
    "export_token_file",
    "log_level",
    "allow_insecure_http",
];

use tapis_agent_proto::paths::{bad_profile_name, profile_socket, valid_profile_name};

/// The effective settings of each profile in `sections`. `base` is the
/// default profile (flags and environment apply to it only; a profile's
/// state directory and socket are placed beside it).
pub(super) fn resolve(
    text: &str,
    path: &Path,
    sections: BTreeMap<String, ConfigFile>,
    base: &Effective,
) -> Result<Vec<Effective>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    };
    let table: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let top: toml::Table = table
        .iter()
        .filter(|(k, _)| k.as_str() != "profiles" && !NOT_INHERITED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let top_lines = keys::lines_of_keys(text, None);
    let mut profiles = Vec::new();
    for (name, section) in sections {
        if !valid_profile_name(&name) {
            return Err(invalid(bad_profile_name(&name)));
        }
        if section.profiles.is_some() {
            return Err(invalid(format!(
                "[profiles.{name}]: profiles cannot be nested"
            )));
        }
        if section.log_level.is_some() {
            return Err(invalid(format!(
                "[profiles.{name}]: log_level applies to the whole agent: set it at the top"
            )));
        }
        let own = table["profiles"][name.as_str()]
            .as_table()
            .cloned()
            .unwrap_or_default();
        let own_keys: Vec<String> = own.keys().cloned().collect();
        let mut merged = top.clone();
        merged.extend(own);
        let file: ConfigFile = merged.try_into().map_err(|e| invalid(e.to_string()))?;

        let state_dir = base.config.state_dir.join("profiles").join(&name);
        let mut config = Config::new(DEFAULT_BASE_URL, state_dir);
        file.apply(&mut config, path, &paths::home())?;
        let mut sources = BTreeMap::new();
        for (key, line) in &top_lines {
            if !NOT_INHERITED.contains(key) {
                sources.insert(*key, Source::File(*line));
            }
        }
        for (key, line) in keys::lines_of_keys(text, Some(&name)) {
            sources.insert(key, Source::File(line));
        }
        if !own_keys.iter().any(|k| k == "state_dir") {
            sources.insert("state_dir", Source::Derived("profile"));
        }
        if !own_keys.iter().any(|k| k == "base_url") {
            match &config.tenant {
                Some(tenant) => {
                    config.base_url = format!("https://{tenant}.tapis.io");
                    sources.insert("base_url", Source::Derived("tenant"));
                }
                None => {
                    return Err(invalid(format!(
                        "[profiles.{name}] needs base_url or tenant: a profile is another Tapis \
                         tenant or account"
                    )));
                }
            }
        }
        if config.state_dir == base.config.state_dir {
            return Err(invalid(format!(
                "[profiles.{name}]: state_dir must differ from the default profile's"
            )));
        }
        sources.insert("socket", Source::Derived("profile"));
        sources.insert("log_level", base.source("log_level"));
        sources.insert("config", base.source("config"));
        config.config_file = Some(path.to_owned());
        profiles.push(Effective::profile(
            name.clone(),
            config,
            profile_socket(&base.socket, &name),
            base,
            sources,
        ));
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layers::{Flags, resolve as resolve_all};

    fn resolve_text(text: &str) -> Result<Effective, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let flags = Flags {
            config: Some(path),
            socket: Some("/run/u/tapis-agent/agent.sock".into()),
            state_dir: Some("/st".into()),
            ..Flags::default()
        };
        resolve_all(&flags, |_| None)
    }

    #[test]
    fn profiles_inherit_settings_but_not_identity() {
        let e = resolve_text(
            "base_url = \"https://designsafe.tapis.io\"\nretries = 1\nusername = \"jdoe\"\n\
             export_token_file = true\n\n[profiles.tacc]\ntenant = \"tacc\"\n\
             [profiles.dev]\nbase_url = \"http://127.0.0.1:8080\"\nusername = \"dev\"\n",
        )
        .unwrap();
        assert_eq!(e.profiles.len(), 2);
        let tacc = e
            .profiles
            .iter()
            .find(|p| p.name() == Some("tacc"))
            .unwrap();
        assert_eq!(tacc.config.base_url, "https://tacc.tapis.io");
        assert_eq!(tacc.config.retries, 1);
        assert_eq!(tacc.config.username.as_deref(), Some("jdoe"));
        assert_eq!(tacc.config.export_token_file, None);
        assert_eq!(tacc.config.state_dir, Path::new("/st/profiles/tacc"));
        assert_eq!(
            tacc.socket,
            Path::new("/run/u/tapis-agent/profile-tacc.sock")
        );
        assert_eq!(tacc.source("retries"), Source::File(2));
        assert_eq!(tacc.source("tenant"), Source::File(7));
        assert_eq!(tacc.source("base_url"), Source::Derived("tenant"));
        let dev = e.profiles.iter().find(|p| p.name() == Some("dev")).unwrap();
        assert_eq!(dev.config.username.as_deref(), Some("dev"));
        assert_eq!(dev.source("username"), Source::File(10));
        assert!(e.config.export_token_file.is_some());
    }

    #[test]
    fn bad_profiles_are_errors_that_say_why() {
        let err = |t: &str| resolve_text(t).unwrap_err().to_string();
        assert!(err("[profiles.a]\nretries = 1\n").contains("needs base_url or tenant"));
        assert!(err("[profiles.\"a b\"]\ntenant = \"t\"\n").contains("profile name"));
        assert!(
            err("[profiles.a]\ntenant = \"t\"\nlog_level = \"debug\"\n")
                .contains("log_level applies to the whole agent")
        );
        assert!(err("[profiles.a]\ntenant = \"t\"\nstate_dir = \"/st\"\n").contains("must differ"));
        assert!(
            err("[profiles.a]\ntenant = \"t\"\nretries = \"x\"\n")
                .contains("line 3: `retries` must be")
        );
    }
}
