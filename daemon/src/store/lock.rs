//! Short locks shared by every agent on one state directory, whatever host
//! it runs on: one around a token refresh, one per (user, system) around an
//! establish. Held for one operation, never for an agent's life.
//!
//! Two methods, and one rule between them ([`method_for`]): `flock(2)` on
//! `locks/NAME.lock` only where it excludes processes on every host that
//! sees the directory (a local filesystem; NFS with its lock manager;
//! Lustre mounted `-o flock`; CephFS), lock files everywhere else (FUSE,
//! BeeGFS, Lustre `localflock`, NFS `nolock`/`local_lock`, any type not
//! known to lock across hosts), since those grant `flock` on each host
//! alone without an error. Where `flock` is chosen but the call fails
//! (ENOLCK: no lock manager; ENOSYS/EINVAL/EOPNOTSUPP), the agents switch to
//! lock files too: `locks/NAME.lck` created with `O_EXCL` and holding host,
//! pid, a nonce and the time. A lock file whose holder is gone (same host,
//! dead pid) or older than the lease is broken. Once any agent uses lock
//! files it leaves `locks/lockfile-mode`, so every agent on the directory
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
    /// The rule of [`method_for`]; lock files also when `flock` fails.
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
    /// Why this method.
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
    /// else lock files when a peer already uses them, else what
    /// [`method_for`] says of the filesystem, with lock files after all when
    /// a test `flock` fails. A lock file older than `lease` is taken to be
    /// abandoned.
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
            LockChoice::Flock => (
                Method::Flock,
                "state_lock = \"flock\" in the configuration".to_owned(),
            ),
            LockChoice::Lockfile => (
                Method::LockFile,
                "state_lock = \"lockfile\" in the configuration".to_owned(),
            ),
            LockChoice::Auto => match read_marker(&dir) {
                Some(reason) => (Method::LockFile, reason),
                None => match method_for(mount.as_ref()) {
                    (Method::Flock, why) => match probe_flock(&dir, flock)? {
                        Some(failed) => (Method::LockFile, failed),
                        None => (Method::Flock, why),
                    },
                    other => other,
                },
            },
        };
        let reason = Some(reason);
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

/// The rule: `flock` where it excludes processes on every host that sees
/// the filesystem, lock files everywhere else; with the reason, for
/// `status` and `doctor`. Only what a source below says locks across hosts
/// (or is local) gets `flock`: a filesystem that grants `flock` per host
/// does so without an error, so a wrong guess is silent. A site that knows
/// better sets `state_lock`.
pub fn method_for(mount: Option<&Mount>) -> (Method, String) {
    let flock = |why: &str| (Method::Flock, why.to_owned());
    let files = |why: String| (Method::LockFile, why);
    let Some(m) = mount else {
        return files("the filesystem is unknown (not in /proc/self/mountinfo)".into());
    };
    let node_local = |option: &str| format!("mounted with {option}: flock is node-local");
    match m.fstype.as_str() {
        // Local filesystems: the kernel's own flock (fs/locks.c), and no
        // other host mounts them. On a block device of this host only: the
        // same types on anything else are not known.
        "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" | "f2fs" | "jfs" | "reiserfs" | "bcachefs"
            if m.source.starts_with("/dev/") =>
        {
            flock("a local filesystem")
        }
        // In memory, or a pool of this host's disks (ZFS has no shared mode).
        "tmpfs" | "ramfs" | "zfs" => flock("a local filesystem"),
        // Writes go to the upper layer, which cannot be NFS (Linux,
        // Documentation/filesystems/overlayfs.rst, "Upper and Lower": the
        // upper filesystem must support trusted.* or user.* xattrs and a
        // valid d_type, "so NFS is not suitable"); one host mounts it.
        "overlay" => flock("a local filesystem (overlay)"),
        // The Linux NFS client turns flock into a POSIX lock on the server
        // (NLM for v2/v3, the LOCK operation for v4) unless `local_lock`
        // covers flock (Linux, fs/nfs/file.c, `nfs_flock`:
        // NFS_MOUNT_LOCAL_FLOCK makes it local). `nolock` (v2/v3) keeps
        // locks on the client: nfs(5), "lock / nolock". A missing lock
        // manager fails the call (ENOLCK), caught by the probe.
        "nfs" | "nfs4" => match ["nolock", "local_lock=flock", "local_lock=all"]
            .into_iter()
            .find(|o| m.has_option(o))
        {
            Some(option) => files(node_local(option)),
            None => flock("NFS: the server arbitrates flock"),
        },
        // mount.lustre(8): `flock` is "coherent across all client nodes",
        // `localflock` is client-local, neither (`noflock`) fails with ENOSYS.
        "lustre" if m.has_option("localflock") => files(node_local("localflock")),
        "lustre" if m.has_option("flock") => {
            flock("Lustre mounted with flock: coherent across nodes")
        }
        "lustre" => files("Lustre mounted without -o flock".into()),
        // The kernel CephFS client sends flock to the MDS (Linux,
        // fs/ceph/locks.c, `ceph_flock` -> `ceph_lock_message` with
        // CEPH_LOCK_FLOCK); ceph-fuse is FUSE, below.
        "ceph" => flock("CephFS: the metadata server arbitrates flock"),
        // FUSE: unless the daemon implements flock (libfuse's `flock`
        // operation, FUSE_FLOCK_LOCKS) the kernel grants it on this mount
        // alone; from here the two cannot be told apart. Two bindfs mounts of
        // one directory both grant it (tests/tests/suite/shared_fuse.rs).
        t if t == "fuse" || t == "fuseblk" || t.starts_with("fuse.") => {
            files("FUSE: flock may hold on this host only".into())
        }
        // BeeGFS: flock is client-local unless the client sets
        // `tuneUseGlobalFileLocks`, false by default (ThinkParQ beegfs, the
        // client module's Config.c, `_Config_loadDefaults`); the mount does
        // not show it.
        "beegfs" => files("BeeGFS: flock is node-local unless tuneUseGlobalFileLocks".into()),
        // GPFS/Spectrum Scale, CIFS/SMB, GlusterFS, ...: not known here.
        _ => files("a filesystem type not known to lock across hosts".into()),
    }
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

    /// The rule on captured `/proc/self/mountinfo` lines: the two FUSE
    /// lines are the bindfs mounts of tests/tests/suite/shared_fuse.rs.
    #[test]
    fn one_rule_picks_the_method_from_the_mount() {
        let mounts = mounts::parse(
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
             30 25 0:27 / /dev/shm rw - tmpfs tmpfs rw\n\
             31 1 0:31 / /var/lib/x rw - overlay overlay rw,lowerdir=/l,upperdir=/u\n\
             32 1 0:32 / /srv rw - ext4 fs1:/srv rw\n\
             40 22 0:35 / /home rw - nfs4 fs1:/export/home rw,vers=4.2,local_lock=none\n\
             41 22 0:36 / /scratch rw - lustre mgs@o2ib:/scratch rw,localflock\n\
             42 22 0:37 / /work rw - lustre mgs@o2ib:/work rw,flock\n\
             43 22 0:38 / /h1 rw - nfs fs:/h1 rw,vers=3,nolock\n\
             44 22 0:39 / /h2 rw - nfs4 fs:/h2 rw,vers=4.2,local_lock=flock\n\
             45 22 0:40 / /h3 rw - nfs fs:/h3 rw,vers=3\n\
             46 22 0:41 / /l3 rw - lustre mgs@o2ib:/l3 rw\n\
             47 22 0:42 / /ceph rw - ceph 10.0.0.1:6789:/ rw,name=u\n\
             48 27 0:40 / /tmp/a rw,nosuid,nodev - fuse /tmp/back rw,user_id=0,group_id=0,allow_other\n\
             49 27 0:43 / /tmp/s rw - fuse.sshfs u@h:/home rw\n\
             50 22 0:44 / /mnt/beegfs rw - beegfs beegfs_nodev rw,cfgFile=/etc/beegfs/c.conf\n\
             51 22 0:45 / /gpfs rw - gpfs gpfs1 rw\n\
             52 22 0:46 / /smb rw - cifs //srv/share rw,vers=3.1.1\n",
        );
        let methods: Vec<(&str, Method)> = mounts
            .iter()
            .map(|m| (m.fstype.as_str(), method_for(Some(m)).0))
            .collect();
        use Method::{Flock as F, LockFile as L};
        let expected = [
            F, F, F, L, // local ext4, tmpfs, overlay; ext4 not on a /dev device
            F, L, F, L, L, F, L, F, // NFS, Lustre, NFS, CephFS
            L, L, L, L, L, // FUSE, BeeGFS, GPFS, CIFS
        ];
        let got: Vec<Method> = methods.iter().map(|(_, m)| *m).collect();
        assert_eq!(got, expected, "{methods:?}");
        assert_eq!(
            method_for(Some(&mounts[5])).1,
            "mounted with localflock: flock is node-local"
        );
        assert!(method_for(Some(&mounts[12])).1.contains("FUSE"));
        assert!(method_for(Some(&mounts[14])).1.contains("BeeGFS"));
        assert!(method_for(Some(&mounts[15])).1.contains("not known"));
        assert_eq!(method_for(None).0, Method::LockFile);
    }

    #[tokio::test]
    async fn the_reason_is_shown_for_either_method() {
        let dir = tempfile::tempdir().unwrap();
        let a = Locks::open(dir.path(), LockChoice::Auto, LEASE, FlockCall::default()).unwrap();
        let info = a.info();
        let expected = method_for(mounts::mount_of(dir.path()).as_ref());
        assert_eq!((info.method, info.reason.unwrap()), expected);
        let forced = Locks::open(dir.path(), LockChoice::Flock, LEASE, FlockCall::default())
            .unwrap()
            .info();
        assert!(forced.reason.unwrap().contains("state_lock"));
    }
}
