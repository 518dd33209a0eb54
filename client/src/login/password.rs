//! Where a password comes from: stdin, a private file, or a no-echo prompt.
//! The value goes straight into a [`Secret`] and is never printed.

use crate::exit::{self, Failure};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tapis_agent_proto::Secret;

/// Longest line read as a password; anything longer is not a password.
const MAX_LEN: u64 = 4096;

/// The first line of stdin, without its newline. Read one byte at a time
/// from a duplicate of fd 0, so no copy of the password stays behind in
/// std's shared stdin buffer and nothing past the line is consumed.
pub fn from_stdin() -> Result<Secret, Failure> {
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| exit::other(format!("login: cannot read stdin: {e}")))?;
    first_line(BufReader::with_capacity(1, File::from(fd)), "stdin")
}

/// The first line of a file that only its owner can access.
pub fn from_file(path: &Path) -> Result<Secret, Failure> {
    let shown = path.display();
    let file = File::open(path)
        .map_err(|e| exit::other(format!("login: cannot open password file {shown}: {e}")))?;
    // fstat on the open file, so the file checked is the file read.
    let meta = file
        .metadata()
        .map_err(|e| exit::other(format!("login: cannot inspect password file {shown}: {e}")))?;
    private_mode(meta.mode()).map_err(|why| {
        exit::other(format!("login: refusing password file {shown}: {why}"))
            .with_hint(format!("chmod 600 {shown}"))
    })?;
    // Byte by byte for the same reason as stdin: no stray buffered copy.
    first_line(
        BufReader::with_capacity(1, file),
        &format!("password file {shown}"),
    )
}

/// The password file rule: nobody but the owner may read or write it.
fn private_mode(mode: u32) -> Result<(), String> {
    if mode & 0o077 != 0 {
        return Err(format!(
            "it is accessible by group or others (mode {:04o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Reads one line and strips only its line ending: spaces are part of the
/// password. The buffer is pre-sized so the usual password is never copied
/// by a reallocation, and it is moved (not copied) into the [`Secret`].
fn first_line(reader: impl BufRead, source: &str) -> Result<Secret, Failure> {
    let mut line = String::with_capacity(256);
    reader
        .take(MAX_LEN)
        .read_line(&mut line)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => exit::other(format!(
                "login: the password on {source} is not valid UTF-8"
            )),
            _ => exit::other(format!(
                "login: cannot read the password from {source}: {e}"
            )),
        })?;
    if !line.ends_with('\n') && line.len() as u64 >= MAX_LEN {
        return Err(exit::usage(format!(
            "login: the password on {source} is longer than {MAX_LEN} bytes"
        )));
    }
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    let secret = Secret::new(line);
    if secret.is_empty() {
        return Err(exit::usage(format!("login: empty password on {source}")));
    }
    Ok(secret)
}

/// Asks on the terminal without echo (rpassword talks to /dev/tty itself).
pub fn prompt(username: &str) -> Result<Secret, Failure> {
    let secret = rpassword::prompt_password(format!("Tapis password for {username}: "))
        .map(Secret::new)
        .map_err(|e| exit::other(format!("login: cannot read the password: {e}")))?;
    if secret.is_empty() {
        return Err(exit::usage("login: empty password"));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn read(input: &[u8]) -> Result<Secret, Failure> {
        first_line(input, "stdin")
    }

    #[test]
    fn strips_only_the_line_ending() {
        assert_eq!(read(b"hunter2\n").unwrap().expose(), "hunter2");
        assert_eq!(
            read(b" pass word \r\nnext").unwrap().expose(),
            " pass word "
        );
        assert_eq!(read(b"no-newline").unwrap().expose(), "no-newline");
    }

    #[test]
    fn empty_or_binary_input_is_refused() {
        assert_eq!(exit::code(&read(b"\n").unwrap_err()), 2);
        assert_eq!(exit::code(&read(b"").unwrap_err()), 2);
        let e = read(b"\xff\xfe\n").unwrap_err();
        assert!(e.message.contains("not valid UTF-8"), "{}", e.message);
        let long = vec![b'x'; MAX_LEN as usize + 10];
        assert_eq!(exit::code(&read(&long).unwrap_err()), 2);
    }

    #[test]
    fn mode_rule() {
        assert!(private_mode(0o100600).is_ok());
        assert!(private_mode(0o100400).is_ok());
        assert!(private_mode(0o100700).is_ok());
        for bad in [0o100640, 0o100604, 0o100620, 0o100644, 0o100601] {
            assert!(private_mode(bad).is_err(), "{bad:o}");
        }
        assert_eq!(
            private_mode(0o100644).unwrap_err(),
            "it is accessible by group or others (mode 0644)"
        );
    }

    #[test]
    fn password_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"s3cret-value\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = from_file(&path).unwrap_err();
        assert_eq!(exit::code(&e), 1);
        assert!(
            e.message.contains("refusing password file"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("s3cret"));
        assert_eq!(e.hint, Some(format!("chmod 600 {}", path.display())));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(from_file(&path).unwrap().expose(), "s3cret-value");
    }
}
