//! The documented config keys, and parse errors that name the key, the line
//! and the type the key takes.

/// One config-file key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key as written in `config.toml`.
    pub name: &'static str,
    /// The type it takes, in words (used in errors).
    pub kind: &'static str,
    /// Environment variable that overrides it, if any.
    pub env: Option<&'static str>,
    /// Command-line flag that overrides it, if any.
    pub flag: Option<&'static str>,
    /// Its value is secret or points at one.
    pub secret: bool,
}

const fn key(name: &'static str, kind: &'static str) -> Key {
    Key {
        name,
        kind,
        env: None,
        flag: None,
        secret: false,
    }
}

const SECONDS: &str = "a whole number of seconds";
const COUNT: &str = "a whole number";
const TEXT: &str = "a string";
const PATH: &str = "a path (string)";

/// Every key the config file accepts, in the order `config show` prints them.
pub const KEYS: &[Key] = &[
    Key {
        env: Some("TAPIS_BASE_URL"),
        flag: Some("--base-url"),
        ..key(
            "base_url",
            "a URL (string) starting with https:// or http://",
        )
    },
    Key {
        env: Some("TAPIS_TENANT"),
        ..key("tenant", TEXT)
    },
    Key {
        env: Some("TAPIS_USERNAME"),
        ..key("username", TEXT)
    },
    Key {
        env: Some("TAPIS_AGENT_STATE_DIR"),
        flag: Some("--state-dir"),
        ..key("state_dir", PATH)
    },
    Key {
        env: Some("RUST_LOG"),
        flag: Some("-v"),
        ..key(
            "log_level",
            "a log filter (string): error, warn, info, debug or trace",
        )
    },
    key("cache_ttl_secs", SECONDS),
    key("refresh_margin_secs", SECONDS),
    key("connect_timeout_secs", SECONDS),
    key("http_timeout_secs", SECONDS),
    key("retries", "a whole number from 0 to 10"),
    key("request_deadline_secs", SECONDS),
    key("credential_check_timeout_secs", SECONDS),
    key("new_user_wait_secs", SECONDS),
    key("refresh_give_up_secs", SECONDS),
    key("max_connections", COUNT),
    key("idle_timeout_secs", SECONDS),
    key("max_parallel_systems", COUNT),
    key("client_id", TEXT),
    Key {
        secret: true,
        ..key("client_key_file", "a path (string) to a file of mode 0600")
    },
    key("export_token_file", "true, false or a path (string)"),
    key("state_lock", "\"auto\", \"flock\" or \"lockfile\""),
    key("allow_insecure_http", "true or false"),
];

/// The documentation of `name`, if it is a key.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |head| head.matches('\n').count() + 1)
}

/// The key assigned on line `line` (`key = value`), if any.
fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let (key, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    Some(key.trim().trim_matches('"'))
}

/// The line on which each key is set, for keys that are: top-level keys
/// (`profile` `None`) or those of `[profiles.NAME]`.
pub fn lines_of_keys(text: &str, profile: Option<&str>) -> Vec<(&'static str, usize)> {
    let mut inside = profile.is_none();
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            let header = header.split(']').next().unwrap_or_default();
            let name = header
                .trim()
                .strip_prefix("profiles.")
                .map(|n| n.trim().trim_matches('"'));
            inside = profile.is_some() && name == profile;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, _)) = line.split_once('=')
            && let Some(key) = find(k.trim().trim_matches('"'))
        {
            found.push((key.name, i + 1));
        }
    }
    found
}

/// Rewrites the TOML parser's error as `line N: <what>`, naming the key and
/// the type it takes instead of Rust type names.
pub fn describe_error(text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|s| line_of(text, s.start));
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    let message = e.message().trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return format!("{at}unknown key `{name}`{}", unknown_hint(name));
    }
    let typed = ["invalid type", "invalid value", "did not match any variant"];
    if typed.iter().any(|t| message.contains(t))
        && let Some(key) = line.and_then(|l| key_on_line(text, l)).and_then(find)
    {
        let got = message
            .strip_prefix("invalid type: ")
            .and_then(|m| m.split(", expected").next())
            .map(|g| format!(", not {g}"))
            .unwrap_or_default();
        return format!("{at}`{}` must be {}{got}", key.name, key.kind);
    }
    format!("{at}{message}")
}

fn unknown_hint(name: &str) -> String {
    match tapis_agent_proto::suggest::closest(name, KEYS.iter().map(|k| k.name)).first() {
        Some(k) => format!(" (did you mean `{k}`?)"),
        None => "; `tapis-agent config show` lists the keys".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use std::path::Path;

    fn error(text: &str) -> String {
        ConfigFile::parse(text, Path::new("/c.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_key_names_key_line_and_suggestion() {
        assert_eq!(
            error("retries = 2\ncache_tll_secs = 3\n"),
            "/c.toml: line 2: unknown key `cache_tll_secs` (did you mean `cache_ttl_secs`?)"
        );
        assert!(error("zzz = 1").contains("config show` lists the keys"));
        assert_eq!(
            error("[profiles.a]\nretries = 1\nbase_ulr = \"x\""),
            "/c.toml: line 3: unknown key `base_ulr` (did you mean `base_url`?)"
        );
    }

    #[test]
    fn wrong_type_names_key_line_and_expected_type() {
        assert_eq!(
            error("\n\nretries = \"many\"\n"),
            "/c.toml: line 3: `retries` must be a whole number from 0 to 10, not string \"many\""
        );
        assert!(
            error("export_token_file = 3")
                .contains("line 1: `export_token_file` must be true, false or a path (string)"),
            "{}",
            error("export_token_file = 3")
        );
        assert!(error("base_url = 1").contains("`base_url` must be a URL"));
    }

    #[test]
    fn syntax_errors_keep_the_line() {
        assert!(error("a =\n").starts_with("/c.toml: line 1: "));
    }

    #[test]
    fn every_key_parses() {
        for k in KEYS {
            let value = match k.name {
                "export_token_file" => "true",
                "state_lock" => "\"lockfile\"",
                "allow_insecure_http" => "true",
                _ if k.kind.starts_with("a whole") => "1",
                _ => "\"x\"",
            };
            ConfigFile::parse(&format!("{} = {value}", k.name), Path::new("c"))
                .unwrap_or_else(|e| panic!("{}: {e}", k.name));
        }
    }

    #[test]
    fn every_key_is_documented() {
        let doc = include_str!("../../../docs/configuration.md");
        for k in KEYS {
            assert!(
                doc.contains(&format!("| `{}` |", k.name)),
                "{} undocumented",
                k.name
            );
            if let Some(var) = k.env {
                assert!(doc.contains(var), "{var} undocumented");
            }
        }
    }

    #[test]
    fn key_lines() {
        let text = "# base_url = \"no\"\n\nusername = \"u\"\n retries=1\n\
                    [profiles.tacc]\ntenant = \"tacc\"\n[profiles.b]\nretries = 2\n";
        assert_eq!(lines_of_keys(text, None), [("username", 3), ("retries", 4)]);
        assert_eq!(lines_of_keys(text, Some("tacc")), [("tenant", 6)]);
        assert_eq!(lines_of_keys(text, Some("b")), [("retries", 8)]);
    }
}
