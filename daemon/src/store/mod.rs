//! Private files: directories that only the user can enter, atomic writes,
//! reads that refuse symlinks and loose permissions; the locks shared by
//! agents on one state directory ([`lock`]) and the filesystem under it
//! ([`mounts`]).

pub mod lock;
pub mod mounts;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Creates `dir` (and parents) with mode 0700 if missing, then checks that it
/// is a real directory owned by us with no group/other access.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    check_private_dir(dir)
}

/// Checks that `dir` is a directory (not a symlink) owned by the current user
/// with mode 0700 or stricter.
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(refuse(dir, "is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(refuse(dir, "is not a directory"));
    }
    let me = crate::uid::euid();
    if meta.uid() != me {
        return Err(refuse(
            dir,
            &format!("is owned by uid {}, not by you (uid {me})", meta.uid()),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(
            dir,
            &format!("has mode {mode:03o}; it must not be accessible to others (chmod 700)"),
        ));
    }
    Ok(())
}

fn refuse(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{} {why}", path.display()),
    )
}

/// Writes `bytes` to `path` atomically with mode 0600: a fresh temp file in
/// the same directory (`O_EXCL|O_NOFOLLOW`), fsync, rename over `path`, fsync
/// the directory. A crash at any point leaves either the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// [`write_atomic`] without the fsyncs, for files that are only worth a
/// re-check when lost (the credential cache). The rename is still atomic:
/// a killed process leaves the old or the new file, and readers on other
/// hosts see one or the other; only a power cut can lose the new one.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.file_type().is_symlink()
    {
        return Err(refuse(path, "is a symbolic link; refusing to replace it"));
    }
    // `~` appears in no host name: the writer can be read back.
    let tmp = dir.join(format!(
        ".{}~{}~{}~{:08x}.tmp",
        name.to_string_lossy(),
        crate::host::hostname(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the temp files that [`write_atomic`] leaves when the process is
/// killed between creating and renaming one. Other agents, on this host or
/// others, may be writing in the same directory: a file goes when its
/// writer was a process of this host that is gone, or when it is older
/// than `min_age` (a write takes milliseconds). Returns how many went.
pub fn remove_stale_temp_files(dir: &Path, min_age: Duration) -> io::Result<usize> {
    let host = crate::host::hostname();
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let meta = entry.metadata()?;
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or_default();
        // Not followed: only plain files we made are removed.
        if meta.is_file() && (age >= min_age || writer_gone(&name, &host)) {
            remove_if_exists(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether temp file `name` (`.NAME~HOST~PID~RAND.tmp`) was written by a
/// process of `host` that no longer runs.
fn writer_gone(name: &str, host: &str) -> bool {
    let mut parts = name.trim_end_matches(".tmp").split('~').skip(1);
    let (Some(h), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    h == host
        && pid
            .parse::<u32>()
            .is_ok_and(|p| p != std::process::id() && !crate::host::process_alive(p))
}

/// Reads a private file: refuses symlinks, files owned by someone else and
/// files readable or writable by group/others. `Ok(None)` when it does not exist.
pub fn read_private(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refuse(path, "is a symbolic link"));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse(path, "is not a regular file"));
    }
    if meta.uid() != crate::uid::euid() {
        return Err(refuse(path, "is not owned by you"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(refuse(path, "is accessible to others (chmod 600)"));
    }
    // State files are small; refuse anything absurd rather than allocate it.
    if meta.len() > 16 * 1024 * 1024 {
        return Err(refuse(path, "is larger than 16 MiB"));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    io::Read::read_to_end(&mut &file, &mut buf)?;
    Ok(Some(buf))
}

/// Reads a private file as text; a missing file is an error.
pub fn read_private_text(path: &Path) -> io::Result<String> {
    let bytes = read_private(path)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// Removes a file; a missing file is fine.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(read_private(&p).unwrap().unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(read_private(&link).is_err());
        assert!(write_atomic(&link, b"y").is_err());
        assert_eq!(fs::read(&target).unwrap(), b"x");
    }

    #[test]
    fn loose_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("state");
        ensure_private_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&d).unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let host = crate::host::hostname();
        let me = std::process::id();
        let young = [
            // A live writer here (this process), one elsewhere, an old name.
            format!(".tokens.json~{host}~{me}~00000001.tmp"),
            format!(".tokens.json~other-node~{me}~00000002.tmp"),
            ".tokens.json.1.2.tmp".to_owned(),
        ];
        for name in &young {
            fs::write(dir.path().join(name), b"{\"cut").unwrap();
        }
        // A writer of this host that is gone.
        let dead = format!(".cache.json~{host}~{}~00000003.tmp", u32::MAX - 1);
        fs::write(dir.path().join(&dead), b"{").unwrap();
        fs::write(dir.path().join("tokens.json"), b"{}").unwrap();
        let hour = Duration::from_secs(3600);
        assert_eq!(remove_stale_temp_files(dir.path(), hour).unwrap(), 1);
        assert!(!dir.path().join(&dead).exists());
        assert_eq!(
            remove_stale_temp_files(dir.path(), Duration::ZERO).unwrap(),
            3
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
