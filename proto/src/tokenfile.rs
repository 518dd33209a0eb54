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

/// What `expires_at` states, when it is a date string or Unix seconds.
#[derive(Debug, PartialEq, Eq)]
pub enum StatedExpiry<'a> {
    /// A date string, to be read as RFC 3339 / ISO 8601.
    Date(&'a str),
    /// Unix seconds.
    Seconds(i64),
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

    /// The expiry the file states, if it states one of a readable kind.
    pub fn stated_expiry(&self) -> Option<StatedExpiry<'_>> {
        match &self.expires_at {
            Some(serde_json::Value::String(s)) => Some(StatedExpiry::Date(s.trim())),
            Some(serde_json::Value::Number(n)) => n.as_i64().map(StatedExpiry::Seconds),
            _ => None,
        }
    }
}
