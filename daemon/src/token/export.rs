//! The OpsUtils token file (`~/.tapis_tokens.json`).

use super::Tokens;
use serde_json::json;
use std::path::Path;

/// Writes `{"access_token": "...", "expires_at": "<ISO-8601>"}` atomically, 0600.
pub fn write_token_file(path: &Path, tokens: &Tokens) -> std::io::Result<()> {
    let expires = jiff::Timestamp::from_second(tokens.access_expires_at)
        .map_err(std::io::Error::other)?
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let body = json!({
        "access_token": tokens.access.expose(),
        "expires_at": expires,
    });
    let bytes = serde_json::to_vec_pretty(&body).map_err(std::io::Error::other)?;
    crate::store::write_atomic(path, &bytes)
}

/// Removes the token file at `path` (at logout: the token in it would
/// still work for hours). True when there was one.
pub fn remove_token_file(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
