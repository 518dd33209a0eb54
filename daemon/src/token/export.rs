//! The OpsUtils token file (`~/.tapis_tokens.json`),
//! `{"access_token": "...", "expires_at": "<ISO-8601>"}`: written by the
//! export, read by `tapis-cred login --import-token-file`, both here.

use super::Tokens;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use tapis_agent_proto::tokenfile::TokenFile;
use tapis_agent_proto::{ErrorKind, ErrorReply, Secret};

/// A token file is a few kilobytes; anything bigger is something else.
const MAX_LEN: u64 = 64 * 1024;

/// Writes the token file atomically, 0600.
pub fn write_token_file(path: &Path, tokens: &Tokens) -> std::io::Result<()> {
    let expires = jiff::Timestamp::from_second(tokens.access_expires_at)
        .map_err(std::io::Error::other)?
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let body = TokenFile {
        access_token: tokens.access.clone(),
        expires_at: Some(serde_json::Value::String(expires)),
    };
    let bytes =
        zeroize::Zeroizing::new(serde_json::to_vec_pretty(&body).map_err(std::io::Error::other)?);
    crate::store::write_atomic(path, &bytes)
}

/// Reads the access token from the token file at `path`, refusing a file
/// others could have written (they could plant a token of their choosing)
/// and one whose stated expiry is past `now`. Errors never quote the token.
pub fn read_token_file(path: &Path, now: i64) -> Result<Secret, ErrorReply> {
    let shown = path.display();
    let fail = |why: String| {
        ErrorReply::new(
            ErrorKind::Other,
            format!("login: token file {shown}: {why}"),
        )
    };
    // Non-blocking: a FIFO named here must not hold up the agent's thread.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| fail(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot inspect it: {e}")))?;
    if !meta.is_file() {
        return Err(fail("it is not a regular file".into()));
    }
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
    let file = TokenFile::parse(text.expose()).map_err(fail)?;
    if let Some(t) = file.stated_expiry().filter(|&t| t <= now) {
        let when = jiff::Timestamp::from_second(t)
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|_| t.to_string());
        return Err(ErrorReply::new(
            ErrorKind::LoginRequired,
            format!("login: the token in {shown} expired at {when}"),
        )
        .with_hint("log in with a password (tapis-cred login) or with --device"));
    }
    Ok(file.access_token)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    const NOW: i64 = 1_795_456_800;

    #[test]
    fn reads_what_the_export_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let tokens = Tokens {
            username: "u".into(),
            tenant: "t".into(),
            access: Secret::new("x.y.z"),
            access_expires_at: NOW,
            access_issued_at: NOW - 10,
            refresh: None,
            refresh_expires_at: None,
            base_url: None,
        };
        write_token_file(&path, &tokens).unwrap();
        assert_eq!(read_token_file(&path, NOW - 1).unwrap().expose(), "x.y.z");
    }

    fn file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("tokens.json");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn refuses_writable_expired_and_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"access_token": "a.b.c", "expires_at": "2026-11-23T18:00:00Z"}"#;
        assert_eq!(
            read_token_file(&file(dir.path(), good, 0o644), NOW - 1)
                .unwrap()
                .expose(),
            "a.b.c"
        );
        let e = read_token_file(&file(dir.path(), good, 0o664), NOW - 1).unwrap_err();
        assert!(
            e.message.contains("writable by group or others"),
            "{}",
            e.message
        );

        let e = read_token_file(&file(dir.path(), good, 0o600), NOW).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LoginRequired);
        assert!(
            e.message.contains("expired at 2026-11-23 18:00 UTC"),
            "{}",
            e.message
        );

        let e = read_token_file(&file(dir.path(), "garbage", 0o600), NOW).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other);
        assert!(
            e.message.starts_with("login: token file ") && e.message.contains("not valid JSON"),
            "{}",
            e.message
        );

        let e = read_token_file(&dir.path().join("missing.json"), NOW).unwrap_err();
        assert!(e.message.contains("cannot open it"), "{}", e.message);

        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let e = read_token_file(&fifo, NOW).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
    }
}
