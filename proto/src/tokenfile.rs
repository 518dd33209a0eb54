//! The OpsUtils token file, `{"access_token": "...", "expires_at": "..."}`:
//! its shape, in one place for the agent (which writes it, and reads it for
//! `login --import-token-file`) and the client (whose `doctor` checks it).

use crate::Secret;
use serde::{Deserialize, Serialize};

/// The file's shape. OpsUtils writes `expires_at` as Python's `isoformat()`;
/// other writers may give Unix seconds or leave it out.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenFile {
    /// The access token.
    pub access_token: Secret,
    /// The expiry the file states, as written (a date string or seconds).
    #[serde(default)]
    pub expires_at: Option<serde_json::Value>,
}

impl TokenFile {
    /// Parses a token file's text. Error messages give the position only,
    /// never serde's text, which can quote the token.
    pub fn parse(text: &str) -> Result<Self, String> {
        const SHAPE: &str =
            r#"expected an object like {"access_token": "...", "expires_at": "..."}"#;
        // serde would also accept a struct written as an array.
        if text.trim_start().starts_with('[') {
            return Err(SHAPE.into());
        }
        let file: TokenFile = serde_json::from_str(text).map_err(|e| {
            use serde_json::error::Category;
            let what = match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => "not valid JSON",
                Category::Data => SHAPE,
            };
            format!("{what} (line {}, column {})", e.line(), e.column())
        })?;
        if file.access_token.expose().trim().is_empty() {
            return Err("access_token is empty".into());
        }
        Ok(file)
    }

    /// The expiry the file states, in Unix seconds, if it states one that
    /// can be read: a date with its offset, as Python's `isoformat()` writes
    /// it (`2026-11-23T18:00:00.123456+00:00`, or with a space for the `T`),
    /// or Unix seconds. A date without an offset could be local time, so it
    /// states nothing; the token's own expiry decides in the end anyway.
    pub fn stated_expiry(&self) -> Option<i64> {
        let when = match &self.expires_at {
            Some(serde_json::Value::String(s)) => s.trim().parse::<jiff::Timestamp>().ok(),
            Some(serde_json::Value::Number(n)) => n
                .as_i64()
                .and_then(|t| jiff::Timestamp::from_second(t).ok()),
            _ => None,
        };
        when.map(|t| t.as_second())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_456_800;

    fn stated(expires_at: &str) -> Option<i64> {
        let text = format!(r#"{{"access_token": "a.b.c", "expires_at": {expires_at}}}"#);
        TokenFile::parse(&text).unwrap().stated_expiry()
    }

    #[test]
    fn reads_python_isoformat_and_unix_seconds() {
        for date in [
            "2026-11-23T18:00:00+00:00",
            "2026-11-23 18:00:00Z",
            "2026-11-23T18:00:00.123456+00:00",
            "2026-11-23T19:30:00+01:30",
            "2026-11-23T12:00:00-0600",
            "2026-11-23T19:00:00+01",
            "2026-11-23T18:00Z",
        ] {
            assert_eq!(stated(&format!("{date:?}")), Some(NOW), "{date}");
        }
        assert_eq!(stated("1795456800"), Some(NOW));
    }

    #[test]
    fn what_is_not_a_token_file_is_refused_without_quoting_the_token() {
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
            let e = TokenFile::parse(bad).unwrap_err();
            assert!(!e.contains("eyJ"), "{bad:?}: {e}");
        }
        let e = TokenFile::parse("{").unwrap_err();
        assert!(e.starts_with("not valid JSON (line 1"), "{e}");
        let file = TokenFile::parse(r#"{"access_token": "a.b.c", "other": [1, 2]}"#).unwrap();
        assert_eq!(file.stated_expiry(), None);
    }

    #[test]
    fn ambiguous_or_malformed_dates_state_nothing() {
        for bad in [
            "\"\"",
            "\"tomorrow\"",
            "\"2026-11-23\"",
            "\"2026-11-23T18:00:00\"",
            "\"2026-13-23T18:00:00Z\"",
            "\"2026-11-31T18:00:00Z\"",
            "\"2026-11-23T18:00:00+1\"",
            "\"2026-11-23T18:00:00.Z\"",
            "\"2026/11/23T18:00:00Z\"",
            "\"2026-11-23T18:00:00Zjunk\"",
            "\"２０２６-11-23T18:00:00Z\"",
            "1e300",
            "[1]",
            "null",
        ] {
            assert_eq!(stated(bad), None, "{bad}");
        }
    }
}
