//! Reading an OpsUtils token file, `{"access_token": "...", "expires_at": "ISO-8601"}`.

use crate::exit::{self, Failure};
use crate::time;
use serde::Deserialize;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tapis_agent_proto::Secret;

/// A token file is a few kilobytes; anything bigger is something else.
const MAX_LEN: u64 = 64 * 1024;

/// `~/.tapis_tokens.json`, where OpsUtils keeps it.
pub fn default_path() -> Result<PathBuf, Failure> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".tapis_tokens.json")),
        None => Err(exit::usage(
            "login: HOME is not set: give the token file's path to --import-token-file",
        )),
    }
}

/// Reads the access token from the file at `path`, refusing a file others
/// could have written (they could plant a token of their choosing) and a
/// token that has already expired.
pub fn read(path: &Path, now: i64) -> Result<Secret, Failure> {
    let shown = path.display();
    let fail = |why: String| exit::other(format!("login: token file {shown}: {why}"));
    let file = File::open(path).map_err(|e| fail(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot inspect it: {e}")))?;
    if meta.mode() & 0o022 != 0 {
        return Err(fail(format!(
            "refusing it: it is writable by group or others (mode {:04o})",
            meta.mode() & 0o7777
        ))
        .with_hint(format!("chmod go-w {shown}")));
    }
    let mut raw = String::with_capacity(4096);
    let outcome = file.take(MAX_LEN + 1).read_to_string(&mut raw);
    // The whole text is a secret too: keep it where it is zeroed on drop.
    let text = Secret::new(raw);
    outcome.map_err(|e| fail(format!("cannot read it: {e}")))?;
    if text.expose().len() as u64 > MAX_LEN {
        return Err(fail(format!(
            "larger than {MAX_LEN} bytes: not a token file"
        )));
    }
    let parsed = parse(text.expose()).map_err(fail)?;
    if let Some(t) = parsed.expires_at.filter(|&t| t <= now) {
        return Err(exit::login_required(format!(
            "login: the token in {shown} expired at {}",
            time::human(t)
        ))
        .with_hint("log in with a password (tapis-cred login) or with --device"));
    }
    Ok(parsed.access_token)
}

/// The expiry a token file states (Unix seconds), if it states one; `Err`
/// when the file is not a token file. Never quotes the token.
pub fn expiry(text: &str) -> Result<Option<i64>, String> {
    parse(text).map(|p| p.expires_at)
}

/// What the file says.
#[derive(Debug)]
struct Parsed {
    access_token: Secret,
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
    Ok(Parsed {
        access_token: raw.access_token,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOW: i64 = 1_795_456_800;

    #[test]
    fn parses_opsutils_files() {
        let p = parse(r#"{"access_token": "a.b.c", "expires_at": "2026-11-23T18:00:00+00:00"}"#)
            .unwrap();
        assert_eq!(p.access_token.expose(), "a.b.c");
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

    fn file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("tokens.json");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn reads_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            dir.path(),
            r#"{"access_token": "a.b.c", "expires_at": "2026-11-23T18:00:00Z"}"#,
            0o644,
        );
        assert_eq!(read(&path, NOW - 1).unwrap().expose(), "a.b.c");
    }

    #[test]
    fn refuses_writable_expired_and_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"access_token": "a.b.c", "expires_at": "2026-11-23T18:00:00Z"}"#;
        let e = read(&file(dir.path(), good, 0o664), NOW - 1).unwrap_err();
        assert!(
            e.message.contains("writable by group or others"),
            "{}",
            e.message
        );

        let e = read(&file(dir.path(), good, 0o600), NOW).unwrap_err();
        assert_eq!(exit::code(&e), 3);
        assert!(
            e.message.contains("expired at 2026-11-23 18:00 UTC"),
            "{}",
            e.message
        );

        let e = read(&file(dir.path(), "garbage", 0o600), NOW).unwrap_err();
        assert_eq!(exit::code(&e), 1);
        assert!(
            e.message.starts_with("login: token file ") && e.message.contains("not valid JSON"),
            "{}",
            e.message
        );

        let e = read(&dir.path().join("missing.json"), NOW).unwrap_err();
        assert!(e.message.contains("cannot open it"), "{}", e.message);
    }
}
