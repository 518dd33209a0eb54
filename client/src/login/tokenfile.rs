//! The OpsUtils token file, `{"access_token": "...", "expires_at": "ISO-8601"}`:
//! where it is by default, and (for `doctor`) the expiry it states. The
//! agent reads it for `login --import-token-file`, with the code that writes
//! its export (daemon/src/token/export.rs).

use crate::exit::{self, Failure};
use std::path::PathBuf;
use tapis_agent_proto::tokenfile::TokenFile;

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
    let file = TokenFile::parse(text)?;
    Ok(file.stated_expiry())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_456_800;

    #[test]
    fn parses_opsutils_files() {
        let p = expiry(r#"{"access_token": "a.b.c", "expires_at": "2026-11-23T18:00:00+00:00"}"#)
            .unwrap();
        assert_eq!(p, Some(NOW));
        let p = expiry(r#"{"access_token": "a.b.c", "other": [1, 2]}"#).unwrap();
        assert_eq!(p, None);
        let p = expiry(r#"{"access_token": "a.b.c", "expires_at": "tomorrow"}"#).unwrap();
        assert_eq!(p, None);
        let p = expiry(r#"{"access_token": "a.b.c", "expires_at": 1795456800}"#).unwrap();
        assert_eq!(p, Some(NOW));
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
            let e = expiry(bad).unwrap_err();
            assert!(!e.contains("eyJ"), "{bad:?}: {e}");
        }
        let e = expiry("{").unwrap_err();
        assert!(e.starts_with("not valid JSON (line 1"), "{e}");
    }
}
