//! Where the OpsUtils token file, `{"access_token": "...", "expires_at":
//! "ISO-8601"}`, is by default. Its shape is `proto::tokenfile`; the agent
//! reads it for `login --import-token-file`, with the code that writes its
//! export (daemon/src/token/export.rs).

use crate::exit::{self, Failure};
use std::path::PathBuf;

/// `~/.tapis_tokens.json`, where OpsUtils keeps it.
pub fn default_path() -> Result<PathBuf, Failure> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".tapis_tokens.json")),
        None => Err(exit::usage(
            "login: HOME is not set: give the token file's path to --import-token-file",
        )),
    }
}
