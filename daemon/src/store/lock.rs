//! Short locks shared by every agent on one state directory, whatever host
//! it runs on: one around a token refresh, one per (user, system) around an
//! establish. Held for one operation, never for an agent's life.
//!
//! Two methods. `flock(2)` on `locks/NAME.lock` is the default: the kernel
//! drops it when the holder dies, and NFS clients emulate it with POSIX
//! locks the server arbitrates. Where the call fails (ENOLCK: no lock
//! manager; ENOSYS/EINVAL/EOPNOTSUPP: Lustre without `flock`), or where it
//! would only be node-local (Lustre with `localflock`), the agents use lock
//! files instead: `locks/NAME.lck` created with `O_EXCL` and holding host,
//! pid, a nonce and the time. A lock file whose holder is gone (same host,
//! dead pid) or older than the lease is broken. Once any agent has fallen
//! back it leaves `locks/lockfile-mode`, so every agent on the directory
//! uses the same method.
//!
//! Nothing depends on a lock for safety: the token file is only replaced by
//! something at least as fresh, checked just before the write, and a
//! refresh refused after a peer's refresh adopts the peer's tokens. The
//! locks keep the upstream cost at one refresh (or one check) per event.

use super::mounts::{self, Mount};
use serde::Deserialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Directory of the lock files, inside the state directory.
pub const LOCKS_DIR: &str = "locks";
/// Marker left by the first agent that had to use lock files.
const MARKER: &str = "lockfile-mode";
/// Longest pause between two attempts at a taken lock.
const MAX_POLL: Duration = Duration::from_millis(100);

/// How to lock, as configured (`state_lock` in config.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockChoice {
    /// `flock`, unless it fails or would be node-local.
    #[default]
    Auto,
    /// Always `flock`.
    Flock,
    /// Always lock files.
    Lockfile,
}

impl std::str::FromStr for LockChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "flock" => Ok(Self::Flock),
            "lockfile" => Ok(Self::Lockfile),
            other => Err(format!(
                "unknown lock method {other:?}: use auto, flock or lockfile"
            )),
        }
    }
}

/// The method in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `flock(2)`.
    Flock,
    /// `O_EXCL` lock files with host, pid and age.
    LockFile,
}

impl Method {
    /// `flock` or `lockfile`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Flock => "flock",
            Method::LockFile => "lockfile",
        }
    }
}

/// The non-blocking `flock` call: `Ok(true)` when taken, `Ok(false)` when
/// someone else holds it. Replaceable so that tests can make it fail the way
/// it fails on NFS without a lock manager or on Lustre.
#[derive(Clone, Copy)]
pub struct FlockCall(pub fn(&File) -> io::Result<bool>);

impl Default for FlockCall {
    fn default() -> Self {
        Self(|file| match file.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        })
    }
}

impl std::fmt::Debug for FlockCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlockCall")
    }
}

/// What `status` and `doctor` show about locking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// The method in use.
    pub method: Method,
    /// Why lock files are used, when they are.
    pub reason: Option<String>,
    /// The filesystem of the state directory, when known.
    pub filesystem: Option<String>,
}

/// A lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else held it for the whole wait.
    #[error("lock {name} is still held{holder} after {} ms", waited.as_millis())]
    Timeout {
        /// Lock name.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// `" by HOST pid N"`, when a lock file says.
        holder: String,
    },
    /// The lock file could not be made or read.
    #[error("lock {name}: {source}")]
    Io {
        /// Lock name.
        name: String,
        /// The cause.
        source: io::Error,
    },
}

/// The locks of one state directory. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Locks {
    dir: PathBuf,
    state: Mutex<(Method, Option<String>)>,
    forced: bool,
    lease: Duration,
    flock: FlockCall,
    mount: Option<Mount>,
    host: String,
}

impl Locks {
    /// Prepares `state_dir/locks` and picks the method: the configured one,
    /// else lock files when a peer already uses them, when `flock` would be
    /// node-local or when a test `flock` fails; `flock` otherwise. A lock
    /// file older than `lease` is taken to be abandoned.
    pub fn open(
        state_dir: &Path,
        choice: LockChoice,
        lease: Duration,
        flock: FlockCall,
    ) -> io::Result<Arc<Self>> {
        let dir = state_dir.join(LOCKS_DIR);
        super::ensure_private_dir(&dir)?;
        let mount = mounts::mount_of(state_dir);
        let (method, reason) = match choice {
            LockChoice::Flock => (Method::Flock, None),
            LockChoice::Lockfile => (
                Method::LockFile,
                Some("state_lock = \"lockfile\" in the configuration".to_owned()),
            ),
            LockChoice::Auto => {
                let reason =
                    match read_marker(&dir).or_else(|| mount.as_ref().and_then(node_local_flock)) {
                        Some(reason) => Some(reason),
                        None => probe_flock(&dir, flock)?,
                    };
                match reason {
                    Some(reason) => (Method::LockFile, Some(reason)),
                    None => (Method::Flock, None),
                }
            }
        };
        let locks = Self {
            dir,
            state: Mutex::new((method, reason)),
            forced: choice != LockChoice::Auto,
            lease,
            flock,
            mount,
            host: crate::host::hostname(),
        };
        if method == Method::LockFile {
            locks.leave_marker();
        }
        Ok(Arc::new(locks))
    }

    /// The method in use and why.
    pub fn info(&self) -> LockInfo {
        let (method, reason) = self.state();
        LockInfo {
            method,
            reason,
            filesystem: self.mount.as_ref().map(Mount::describe),
        }
    }

    fn state(&self) -> (Method, Option<String>) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes lock `name`, waiting at most `wait` for its holder.
    pub async fn acquire(self: &Arc<Self>, name: &str, wait: Duration) -> Result<Guard, LockError> {
        let start = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let me = self.clone();
            let owned = name.to_owned();
            let attempt = tokio::task::spawn_blocking(move || me.try_once(&owned))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)));
            match attempt {
                Ok(Attempt::Taken(guard)) => return Ok(guard),
                Ok(Attempt::Held(holder)) => {
                    let waited = start.elapsed();
                    if waited >= wait {
                        return Err(LockError::Timeout {
                            name: name.to_owned(),
                            waited,
                            holder,
                        });
                    }
                    let jitter = pause.mul_f64(rand::random::<f64>() * 0.5);
                    tokio::time::sleep((pause + jitter).min(wait - waited)).await;
                    pause = (pause * 2).min(MAX_POLL);
                }
                Err(source) => {
                    return Err(LockError::Io {
                        name: name.to_owned(),
                        source,
                    });
                }
            }
        }
    }

    /// One non-blocking attempt.
    fn try_once(&self, name: &str) -> io::Result<Attempt> {
        let (method, _) = self.state();
        if method == Method::Flock
            && !self.forced
            && let Some(reason) = read_marker(&self.dir)
        {
            self.switch(reason);
            return self.try_lockfile(name);
        }
        match method {
            Method::Flock => match self.try_flock(name) {
                // Only a filesystem without flock: a planted symlink or a
                // lost permission is an error of its own, not a reason to
                // change the method of every agent on the directory.
                Err(e) if !self.forced && no_flock_here(&e) => {
                    self.switch(format!("flock failed: {}", errno_text(&e)));
                    self.leave_marker();
                    self.try_lockfile(name)
                }
                other => other,
            },
            Method::LockFile => self.try_lockfile(name),
        }
    }

    fn switch(&self, reason: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 != Method::LockFile {
            tracing::warn!(%reason, "state directory locks: using lock files instead of flock");
            *state = (Method::LockFile, Some(reason));
        }
    }

    fn leave_marker(&self) {
        let (_, reason) = self.state();
        let path = self.dir.join(MARKER);
        if path.exists() {
            return;
        }
        let text = format!(
            "{}\nwritten by {} pid {}; delete this file once flock works on this filesystem for every host\n",
            reason.unwrap_or_default(),
            self.host,
            std::process::id()
        );
        if let Err(e) = super::write_atomic(&path, text.as_bytes()) {
            tracing::warn!(error = %e, "cannot leave the lock-file marker");
        }
    }

    fn try_flock(&self, name: &str) -> io::Result<Attempt> {
        let file = open_lock_file(&self.dir.join(format!("{name}.lock")))?;
        if (self.flock.0)(&file)? {
            Ok(Attempt::Taken(Guard(Kind::Flock { _file: file })))
        } else {
            Ok(Attempt::Held(String::new()))
        }
    }

    fn try_lockfile(&self, name: &str) -> io::Result<Attempt> {
        let path = self.dir.join(format!("{name}.lck"));
        let holder = Holder {
            host: self.host.clone(),
            pid: std::process::id(),
            nonce: rand::random(),
            at_ms: now_ms(),
        };
        // Two tries: the second after breaking an abandoned lock.
        for _ in 0..2 {
            match create_exclusive(&path, &holder) {
                Ok(()) => {
                    return Ok(Attempt::Taken(Guard(Kind::LockFile {
                        path,
                        nonce: holder.nonce,
                    })));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let Some(current) = read_holder(&path) else {
                // Gone meanwhile: try again at once.
                continue;
            };
            if !self.abandoned(&current) {
                return Ok(Attempt::Held(current.describe()));
            }
            tracing::info!(lock = name, holder = %current.describe(), "breaking an abandoned lock");
            break_lock(&path, &current);
        }
        Ok(Attempt::Held(String::new()))
    }

    /// A lock file whose holder died on this host, or older than the lease.
    fn abandoned(&self, h: &Holder) -> bool {
        if h.host == self.host && h.pid != 0 && !crate::host::process_alive(h.pid) {
            return true;
        }
        now_ms().saturating_sub(h.at_ms) > self.lease.as_millis() as u64
    }
}

enum Attempt {
    Taken(Guard),
    /// Held by someone else (described when a lock file says who).
    Held(String),
}

/// A held lock; dropping it lets go.
#[derive(Debug)]
pub struct Guard(Kind);

#[derive(Debug)]
enum Kind {
    /// Closing the file drops the `flock`.
    Flock { _file: File },
    /// Removed on drop, if it is still ours.
    LockFile { path: PathBuf, nonce: u64 },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Kind::LockFile { path, nonce } = &self.0 {
            match read_holder(path) {
                Some(h) if h.nonce == *nonce => {
                    if let Err(e) = super::remove_if_exists(path) {
                        tracing::warn!(lock = %path.display(), error = %e, "cannot remove a lock file");
                    }
                }
                _ => tracing::debug!(lock = %path.display(), "lock file was broken by a peer"),
            }
        }
    }
}

/// Who holds a lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    host: String,
    pid: u32,
    nonce: u64,
    at_ms: u64,
}

impl Holder {
    fn line(&self) -> String {
        format!(
            "{} {} {:016x} {}\n",
            self.host, self.pid, self.nonce, self.at_ms
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let mut f = text.split_whitespace();
        Some(Self {
            host: f.next()?.to_owned(),
            pid: f.next()?.parse().ok()?,
            nonce: u64::from_str_radix(f.next()?, 16).ok()?,
            at_ms: f.next()?.parse().ok()?,
        })
    }

    fn describe(&self) -> String {
        let age = now_ms().saturating_sub(self.at_ms) / 1000;
        format!(" by {} pid {} for {age} s", self.host, self.pid)
    }
}

/// Opens (creating) a lock file for `flock`. The error names the file; its
/// errno is not kept, so that no open error is ever taken for "no flock".
fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::ELOOP) => "is a symbolic link; refusing to follow it".to_owned(),
                _ => e.to_string(),
            };
            io::Error::new(e.kind(), format!("{} {why}", path.display()))
        })
}

/// The `flock` errors that mean "no flock on this filesystem": no lock
/// manager (ENOLCK, NFS without lockd), or a filesystem that does not
/// implement it (ENOSYS, EINVAL, EOPNOTSUPP: Lustre without `flock`).
fn no_flock_here(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP)
    )
}

/// `O_CREAT|O_EXCL` (atomic on local filesystems and NFSv3+), then the
/// holder line.
fn create_exclusive(path: &Path, holder: &Holder) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    file.write_all(holder.line().as_bytes())
}

/// The holder of a lock file. A file cut short by a crash between create and
/// write is dated by its modification time.
fn read_holder(path: &Path) -> Option<Holder> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let mut text = String::new();
    let _ = Read::by_ref(&mut file).take(512).read_to_string(&mut text);
    Holder::parse(&text).or_else(|| {
        let modified = file.metadata().ok()?.modified().ok()?;
        Some(Holder {
            host: String::new(),
            pid: 0,
            nonce: 0,
            at_ms: modified.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64,
        })
    })
}

/// Moves an abandoned lock aside and deletes it. If a peer broke it first
/// and took the lock anew, what was moved is the peer's fresh lock: put it
/// back (a hard link fails if yet another holder exists) rather than delete it.
fn break_lock(path: &Path, abandoned: &Holder) {
    let aside = path.with_extension(format!(
        "stale-{:016x}-{:08x}",
        abandoned.nonce,
        rand::random::<u32>()
    ));
    if fs::rename(path, &aside).is_err() {
        return;
    }
    if read_holder(&aside).is_some_and(|h| h.nonce != abandoned.nonce) {
        let _ = fs::hard_link(&aside, path);
    }
    let _ = fs::remove_file(&aside);
}

fn read_marker(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(MARKER)).ok()?;
    let first = text.lines().next().unwrap_or("").trim();
    Some(if first.is_empty() {
        "a peer agent uses lock files".to_owned()
    } else {
        format!("a peer agent uses lock files: {first}")
    })
}

/// Mounts where `flock` is granted on each host alone: useless between
/// hosts, though every call succeeds. Lustre with `localflock`; NFS with
/// `nolock` or `local_lock=flock|all`.
fn node_local_flock(mount: &Mount) -> Option<String> {
    let option = match mount.fstype.as_str() {
        "lustre" => ["localflock"].iter().find(|o| mount.has_option(o)),
        t if t.starts_with("nfs") => ["nolock", "local_lock=flock", "local_lock=all"]
            .iter()
            .find(|o| mount.has_option(o)),
        _ => None,
    }?;
    Some(format!(
        "{} is mounted with {option}: flock is node-local",
        mount.point.display()
    ))
}

/// Tries `flock` once on a probe file; `Some(reason)` when the filesystem
/// has no flock. Any other failure (a symlink planted at the probe, a
/// permission) is an error naming the file.
fn probe_flock(dir: &Path, flock: FlockCall) -> io::Result<Option<String>> {
    let path = dir.join("probe.lock");
    let file = open_lock_file(&path)?;
    match (flock.0)(&file) {
        Ok(_) => Ok(None),
        Err(e) if no_flock_here(&e) => Ok(Some(format!("flock failed: {}", errno_text(&e)))),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("flock on {}: {}", path.display(), errno_text(&e)),
        )),
    }
}

/// `ENOLCK (No locks available)`.
fn errno_text(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::ENOLCK) => "ENOLCK",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::EIO) => "EIO",
        _ => return e.to_string(),
    };
    format!("{name} ({e})")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enolck(_: &File) -> io::Result<bool> {
        Err(io::Error::from_raw_os_error(libc::ENOLCK))
    }

    const LEASE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn flock_excludes_and_releases() {
        let dir = tempfile::tempdir().unwrap();
        let a = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall::default()).unwrap();
        let b = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall::default()).unwrap();
        assert_eq!(a.info().method, Method::Flock);
        let held = a.acquire("refresh", Duration::ZERO).await.unwrap();
        let err = b
            .acquire("refresh", Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        // Another name is another lock.
        let _other = b.acquire("cred-1", Duration::ZERO).await.unwrap();
        drop(held);
        b.acquire("refresh", Duration::from_millis(500))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_failing_flock_falls_back_to_lock_files_for_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let a = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall(enolck)).unwrap();
        let info = a.info();
        assert_eq!(info.method, Method::LockFile);
        assert!(info.reason.unwrap().contains("ENOLCK"));
        // A peer whose flock works follows the marker.
        let b = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall::default()).unwrap();
        assert_eq!(b.info().method, Method::LockFile);
        let held = a.acquire("refresh", Duration::ZERO).await.unwrap();
        let err = b
            .acquire("refresh", Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("pid"), "{err}");
        drop(held);
        assert!(!dir.path().join("locks/refresh.lck").exists());
        b.acquire("refresh", Duration::from_millis(500))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_symlinked_lock_is_an_error_naming_it_not_a_mode_switch() {
        let dir = tempfile::tempdir().unwrap();
        let a = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall::default()).unwrap();
        let link = dir.path().join("locks/refresh.lock");
        std::os::unix::fs::symlink(dir.path().join("victim"), &link).unwrap();
        let err = a
            .acquire("refresh", Duration::from_millis(30))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&link.display().to_string()) && err.contains("symbolic link"),
            "{err}"
        );
        assert_eq!(a.info().method, Method::Flock);
        assert!(!dir.path().join("locks").join(MARKER).exists());
        assert!(!dir.path().join("victim").exists());
        // Other locks still work, with flock.
        a.acquire("cred-1", Duration::ZERO).await.unwrap();
        // At the probe, it stops the agent from starting instead.
        let _ = fs::remove_file(dir.path().join("locks/probe.lock"));
        std::os::unix::fs::symlink(
            dir.path().join("victim"),
            dir.path().join("locks/probe.lock"),
        )
        .unwrap();
        let err = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("probe.lock is a symbolic link"), "{err}");
    }

    #[tokio::test]
    async fn only_no_flock_errors_fall_back() {
        fn eio(_: &File) -> io::Result<bool> {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
        fn eopnotsupp(_: &File) -> io::Result<bool> {
            Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
        }
        let dir = tempfile::tempdir().unwrap();
        let err = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall(eio)).unwrap_err();
        assert!(err.to_string().contains("EIO"), "{err}");
        let a = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall(eopnotsupp)).unwrap();
        assert_eq!(a.info().method, Method::LockFile);
    }

    #[tokio::test]
    async fn a_peer_that_switches_at_run_time_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let a = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall::default()).unwrap();
        assert_eq!(a.info().method, Method::Flock);
        let b = Locks::open(
            dir.path(),
            LockChoice::Lockfile,
            LEASE,
            FlockCall::default(),
        )
        .unwrap();
        let _held = b.acquire("refresh", Duration::ZERO).await.unwrap();
        assert!(
            a.acquire("refresh", Duration::from_millis(30))
                .await
                .is_err()
        );
        assert_eq!(a.info().method, Method::LockFile);
    }

    #[tokio::test]
    async fn abandoned_lock_files_are_broken() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::open(
            dir.path(),
            LockChoice::Lockfile,
            LEASE,
            FlockCall::default(),
        )
        .unwrap();
        let path = dir.path().join("locks/refresh.lck");
        // A holder on this host whose process is gone.
        let dead = Holder {
            host: crate::host::hostname(),
            pid: u32::MAX - 1,
            nonce: 7,
            at_ms: now_ms(),
        };
        fs::write(&path, dead.line()).unwrap();
        locks.acquire("refresh", Duration::ZERO).await.unwrap();
        // A live holder elsewhere, older than the lease.
        let old = Holder {
            host: "other-node".into(),
            pid: 1,
            nonce: 8,
            at_ms: now_ms() - 120_000,
        };
        fs::write(&path, old.line()).unwrap();
        locks.acquire("refresh", Duration::ZERO).await.unwrap();
        // A live holder elsewhere within the lease is respected.
        let live = Holder {
            at_ms: now_ms(),
            ..old
        };
        fs::write(&path, live.line()).unwrap();
        let err = locks
            .acquire("refresh", Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("other-node pid 1"), "{err}");
    }

    #[test]
    fn holder_lines_round_trip() {
        let h = Holder {
            host: "c401-001".into(),
            pid: 42,
            nonce: 0xdead_beef,
            at_ms: 1_700_000_000_000,
        };
        assert_eq!(Holder::parse(&h.line()), Some(h));
        assert_eq!(Holder::parse("garbage"), None);
    }

    #[test]
    fn node_local_flock_is_recognised() {
        let mounts = mounts::parse(
            "41 22 0:36 / /scratch rw - lustre mgs@o2ib:/scratch rw,localflock\n\
             42 22 0:37 / /work rw - lustre mgs@o2ib:/work rw,flock\n\
             43 22 0:38 / /home rw - nfs fs:/home rw,vers=3,nolock\n\
             44 22 0:39 / /h2 rw - nfs4 fs:/h2 rw,vers=4.2,local_lock=flock\n\
             45 22 0:40 / /h3 rw - nfs4 fs:/h3 rw,vers=4.2,local_lock=none\n",
        );
        let local: Vec<bool> = mounts
            .iter()
            .map(|m| node_local_flock(m).is_some())
            .collect();
        assert_eq!(local, [true, false, true, true, false]);
        assert_eq!(
            node_local_flock(&mounts[0]).unwrap(),
            "/scratch is mounted with localflock: flock is node-local"
        );
    }
}
