//! The OpsUtils token file, `{"access_token": "...", "expires_at": "ISO-8601"}`:
//! where it is by default, and (for `doctor`) the expiry it states. The
//! agent reads it for `login --import-token-file`, with the code that writes
//! its export (daemon/src/token/export.rs).

use crate::exit::{self, Failure};
use crate::time;
use serde::Deserialize;
use std::path::PathBuf;
use tapis_agent_proto::Secret;

/// `~/.tapis_tokens.json`, where OpsUtils keeps it.
pub fn default_path() -> Result<PathBuf, Failure> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".tapis_tokens.json")),
        None => Err(exit::usage(
            "login: HOME is not set: give the token file's path to --import-token-file",
        )),
    }
}

/// The expiry a token file states (Unix seconds), if it states one; `Err`
/// when the file is not a token file. Never quotes the token.
pub fn expiry(text: &str) -> Result<Option<i64>, String> {
    parse(text).map(|p| p.expires_at)
}

/// What the file says.
#[derive(Debug)]
struct Parsed {
    /// Expiry, Unix seconds, when the file states one we can read.
    expires_at: Option<i64>,
}

#[derive(Deserialize)]
struct Raw {
    access_token: Secret,
    #[serde(default)]
    expires_at: Option<serde_json::Value>,
}

/// Parses the JSON. Error messages give the position only, never serde's
/// text, which can quote the token. An `expires_at` that cannot be read is
/// ignored: the agent takes the expiry from the token itself.
fn parse(text: &str) -> Result<Parsed, String> {
    const SHAPE: &str = r#"expected an object like {"access_token": "...", "expires_at": "..."}"#;
    // serde would also accept a struct written as an array.
    if text.trim_start().starts_with('[') {
        return Err(SHAPE.into());
    }
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "not valid JSON",
            Category::Data => SHAPE,
        };
        format!("{what} (line {}, column {})", e.line(), e.column())
    })?;
    if raw.access_token.expose().trim().is_empty() {
        return Err("access_token is empty".into());
    }
    let expires_at = match raw.expires_at {
        Some(serde_json::Value::String(s)) => time::parse_iso8601(&s),
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    Ok(Parsed { expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_456_800;

    #[test]
    fn parses_opsutils_files() {
        let p = parse(r#"{"access_token": "a.b.c", "expires_at": "2026-11-23T18:00:00+00:00"}"#)
            .unwrap();
        assert_eq!(p.expires_at, Some(NOW));
        let p = parse(r#"{"access_token": "a.b.c", "other": [1, 2]}"#).unwrap();
        assert_eq!(p.expires_at, None);
        let p = parse(r#"{"access_token": "a.b.c", "expires_at": "tomorrow"}"#).unwrap();
        assert_eq!(p.expires_at, None);
        let p = parse(r#"{"access_token": "a.b.c", "expires_at": 1795456800}"#).unwrap();
        assert_eq!(p.expires_at, Some(NOW));
    }

    #[test]
    fn bad_json_is_refused_without_quoting_the_token() {
        for bad in [
            "",
            "{",
            "not json",
            r#""eyJsecret.token.value""#,
            r#"{"expires_at": "2026-11-23T18:00:00Z"}"#,
            r#"{"access_token": 5}"#,
            r#"{"access_token": ""}"#,
            r#"["eyJsecret.token.value"]"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("eyJ"), "{bad:?}: {e}");
        }
        let e = parse("{").unwrap_err();
        assert!(e.starts_with("not valid JSON (line 1"), "{e}");
    }
}
