//! Starting the agent when none answers, so that tools calling `tapis-cred`
//! need no setup beyond `tapis-cred login`.
//!
//! Only for the default socket: a socket named with `--socket` or
//! `TAPIS_AGENT_SOCK` belongs to whoever named it (`tapis-agent exec`, a
//! test, a custom setup). Never under systemd: there the socket unit starts
//! the agent, and an agent started from inside a service would die with it.
//! Racing clients start one agent: they take a lock next to the socket and
//! look again before starting anything.

use crate::exit::{self, Failure};
use crate::socket;
use crate::ui::Ui;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tapis_agent_proto::paths;

/// Environment switch: `0`/`false`/`no`/`off` disables autostart,
/// `1`/`true`/`yes`/`on` enables it even where it would be off.
pub const AUTOSTART_ENV: &str = "TAPIS_AGENT_AUTOSTART";

/// Longest wait for the started agent to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// Longest wait for another client's start to finish (its own wait, plus slack).
const LOCK_LIMIT: Duration = Duration::from_secs(15);
/// The log is started afresh beyond this size; one old copy is kept.
const LOG_ROTATE_BYTES: u64 = 1 << 20;

/// Whether to start the agent, and if not, why.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start it.
    Start,
    /// Leave it; the reason, for `-v`.
    Skip(&'static str),
}

/// What [`decide`] looks at, separated from the process so it can be tested.
#[derive(Debug, Default)]
pub struct Facts {
    /// `TAPIS_AGENT_AUTOSTART`.
    pub switch: Option<OsString>,
    /// The socket was named with `--socket` or `TAPIS_AGENT_SOCK`.
    pub explicit_socket: bool,
    /// `INVOCATION_ID` or `NOTIFY_SOCKET` is set: this runs inside a unit.
    pub in_systemd_unit: bool,
    /// A `tapis-agent.socket` user unit is installed.
    pub socket_unit_installed: bool,
}

/// The policy: an explicit switch wins; otherwise start only for the
/// default socket and only outside systemd.
pub fn decide(facts: &Facts) -> Decision {
    match facts.switch.as_ref().and_then(|s| s.to_str()) {
        Some("0" | "false" | "no" | "off") => {
            return Decision::Skip("TAPIS_AGENT_AUTOSTART is off");
        }
        Some("1" | "true" | "yes" | "on") => return Decision::Start,
        _ => {}
    }
    if facts.explicit_socket {
        Decision::Skip("the socket was named explicitly")
    } else if facts.in_systemd_unit {
        Decision::Skip("running inside a systemd unit")
    } else if facts.socket_unit_installed {
        Decision::Skip("systemd starts the agent (tapis-agent.socket is installed)")
    } else {
        Decision::Start
    }
}

/// [`Facts`] of this process for the socket at `path`.
pub fn facts(path: &Path) -> Facts {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    // The default path, whatever $TAPIS_AGENT_SOCK says: a socket named
    // there is named explicitly too.
    let default = paths::resolve_socket(
        None,
        None,
        std::env::var_os("XDG_RUNTIME_DIR"),
        socket::effective_uid(),
    );
    Facts {
        switch: env(AUTOSTART_ENV),
        explicit_socket: path != default,
        in_systemd_unit: env("INVOCATION_ID").is_some() || env("NOTIFY_SOCKET").is_some(),
        socket_unit_installed: user_unit_dirs()
            .iter()
            .any(|d| d.join("tapis-agent.socket").exists()),
    }
}

/// Where systemd looks for user units, in the places a user or a package
/// would install ours.
fn user_unit_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg = |var: &str, fallback: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home.as_ref().map(|h| h.join(fallback)))
    };
    let mut dirs: Vec<PathBuf> = [
        xdg("XDG_CONFIG_HOME", ".config"),
        xdg("XDG_DATA_HOME", ".local/share"),
    ]
    .into_iter()
    .flatten()
    .map(|d| d.join("systemd/user"))
    .collect();
    dirs.extend(
        [
            "/etc/systemd/user",
            "/usr/lib/systemd/user",
            "/usr/local/lib/systemd/user",
        ]
        .map(PathBuf::from),
    );
    dirs
}

/// After `failure` to reach the agent at `path`: starts the agent if the
/// policy allows and nothing listens there, and says where it listens. If an
/// agent listens by now (another client started it meanwhile), that is
/// where. Otherwise (or if starting fails) the original failure stands.
pub fn recover(path: &Path, ui: Ui, failure: Failure) -> Result<PathBuf, Failure> {
    match decide(&facts(path)) {
        Decision::Skip(why) => {
            ui.note(format_args!("not starting an agent: {why}"));
            return Err(failure);
        }
        // Another client's agent came up since our connect failed: use it
        // (unless the directory is another user's: whatever listens there
        // is not ours).
        Decision::Start if !taken_by_another_user(path) && !nothing_listens(path) => {
            return Ok(path.to_owned());
        }
        Decision::Start => {}
    }
    match start(path, ui) {
        Ok(started) => Ok(started),
        Err(NotStarted { why, agent_said }) => {
            let mut f = failure;
            f.message = format!("{}; starting one failed: {why}", f.message);
            if agent_said {
                // Starting it by hand would fail the same way.
                f.hint = Some("fix what the agent says above, then run the command again".into());
            }
            Err(f)
        }
    }
}

/// Whether `path` is in the fixed runtime directory and another user has
/// made that unusable: the agent then goes in a private directory of
/// unpredictable name (see [`paths::runtime_dir`]).
fn taken_by_another_user(path: &Path) -> bool {
    let uid = socket::effective_uid();
    let fixed = paths::fixed_runtime_dir(uid);
    path.parent() == Some(fixed.as_path()) && paths::is_taken(&fixed, uid)
}

/// No socket file, or a stale one: an agent is missing, not slow or foreign.
fn nothing_listens(path: &Path) -> bool {
    match UnixStream::connect(path) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
        ),
    }
}

/// Why no agent was started.
struct NotStarted {
    why: String,
    /// `why` quotes the agent's own last words.
    agent_said: bool,
}

impl From<String> for NotStarted {
    fn from(why: String) -> Self {
        Self {
            why,
            agent_said: false,
        }
    }
}

/// Starts `tapis-agent --socket PATH` detached, unless another client did
/// so meanwhile, and waits until it accepts connections. Returns the socket:
/// `path`, or one in a fresh private directory when another user has taken
/// `path`'s.
fn start(path: &Path, ui: Ui) -> Result<PathBuf, NotStarted> {
    let fresh;
    let path = if taken_by_another_user(path) {
        let dir = paths::make_private_runtime_dir(socket::effective_uid())?;
        ui.note(format_args!(
            "{} is unusable (another user's?); starting the agent in {}",
            path.parent().unwrap_or(path).display(),
            dir.display()
        ));
        fresh = dir.join(paths::SOCKET_NAME);
        fresh.as_path()
    } else {
        path
    };
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    private_dir(dir)?;
    let lock_path = dir.join("autostart.lock");
    let lock = private_file(&lock_path, false)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock_within(&lock, LOCK_LIMIT).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    if !nothing_listens(path) {
        ui.note(format_args!("another client started the agent"));
        return Ok(path.to_path_buf());
    }
    let exe = agent_binary()?;
    let log = log_path();
    let out = open_log(&log).map_err(|e| format!("cannot open the log {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot open the log {}: {e}", log.display()))?;
    // Where this start's lines begin, to quote them if it fails.
    let logged_before = out.metadata().map(|m| m.len()).unwrap_or(0);
    let socket = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut child = Command::new(&exe)
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // A daemon holds no directory busy, and Ctrl-C in this terminal
        // (sent to the foreground process group) does not stop it.
        .current_dir("/")
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    wait_until_accepting(path, &mut child, READY_LIMIT).map_err(|e| {
        match last_words(&log, logged_before) {
            Some(said) => NotStarted {
                why: format!("{e}: {said} (log: {})", log.display()),
                agent_said: true,
            },
            None => format!("{e} (log: {})", log.display()).into(),
        }
    })?;
    if ui.chatty() && !ui.quiet {
        crate::ui::stderr(&format!(
            "tapis-cred: started tapis-agent (pid {}; log: {})\n",
            child.id(),
            log.display()
        ));
    }
    Ok(path.to_path_buf())
}

/// Polls with a short, growing pause until the socket accepts, the agent
/// exits, or `limit` passes.
fn wait_until_accepting(path: &Path, child: &mut Child, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        if UnixStream::connect(path).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("tapis-agent exited at once ({status})"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "tapis-agent did not accept connections within {} s",
                limit.as_secs()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Longest quote from the agent's log, in characters.
const QUOTE_CHARS: usize = 300;

/// What a failed agent said last in its log after byte `from`: its own
/// error line (`tapis-agent: ...`), else its last line. The cause (a typo in
/// the config, a socket it may not use) is there, not in the exit status.
fn last_words(log: &Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(log).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = Vec::new();
    // A failed start writes a few lines; bound the read all the same.
    file.take(64 * 1024).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("tapis-agent: "))
        .or_else(|| lines.last().copied())?;
    Some(line.chars().take(QUOTE_CHARS).collect())
}

/// Takes the lock, polling so that the wait is bounded.
fn lock_within(file: &File, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(e),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "another client held the autostart lock too long",
                ));
            }
            Err(TryLockError::WouldBlock) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// `tapis-agent` next to this binary, else on `PATH`.
pub fn agent_binary() -> Result<PathBuf, String> {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("tapis-agent")));
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("tapis-agent"));
    sibling
        .into_iter()
        .chain(on_path)
        .find(|p| is_executable(p))
        .ok_or_else(|| "tapis-agent is not next to tapis-cred nor on PATH".to_owned())
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `agent.log` in the agent's state directory, as the agent computes it
/// from the environment.
pub fn log_path() -> PathBuf {
    paths::env_dir("TAPIS_AGENT_STATE_DIR")
        .unwrap_or_else(paths::default_state_dir)
        .join("agent.log")
}

/// Opens the log for appending (0600), keeping one old copy once it is large.
fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        private_dir(dir).map_err(io::Error::other)?;
    }
    if fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        fs::rename(path, old)?;
    }
    private_file(path, true)
}

fn private_file(path: &Path, append: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(!append)
        .write(true)
        .append(append)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates `dir` 0700 if missing, and insists it is ours and closed to
/// others, as the agent does: the lock and the log go in there.
fn private_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != socket::effective_uid() || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} must be a directory of yours that only you can enter (chmod 700)",
            dir.display()
        ));
    }
    Ok(())
}

/// The failure of a command that needs the `tapis-agent` binary and has none.
pub fn missing_agent(why: String) -> Failure {
    exit::agent_unreachable(why)
        .with_hint("install tapis-agent next to tapis-cred, or put it on PATH")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn policy() {
        let start = Facts::default();
        assert_eq!(decide(&start), Decision::Start);
        for (facts, reason) in [
            (
                Facts {
                    explicit_socket: true,
                    ..Facts::default()
                },
                "explicitly",
            ),
            (
                Facts {
                    in_systemd_unit: true,
                    ..Facts::default()
                },
                "inside a systemd unit",
            ),
            (
                Facts {
                    socket_unit_installed: true,
                    ..Facts::default()
                },
                "tapis-agent.socket",
            ),
            (
                Facts {
                    switch: os("0"),
                    ..Facts::default()
                },
                "off",
            ),
        ] {
            match decide(&facts) {
                Decision::Skip(why) => assert!(why.contains(reason), "{why}"),
                Decision::Start => panic!("{facts:?} must not start"),
            }
        }
        let forced = Facts {
            switch: os("1"),
            explicit_socket: true,
            in_systemd_unit: true,
            socket_unit_installed: true,
        };
        assert_eq!(decide(&forced), Decision::Start);
        let unknown = Facts {
            switch: os("maybe"),
            ..Facts::default()
        };
        assert_eq!(decide(&unknown), Decision::Start);
    }

    #[test]
    fn lock_is_exclusive_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autostart.lock");
        let a = private_file(&path, false).unwrap();
        let b = private_file(&path, false).unwrap();
        lock_within(&a, Duration::from_millis(10)).unwrap();
        let err = lock_within(&b, Duration::from_millis(30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(a);
        lock_within(&b, Duration::from_millis(10)).unwrap();
    }

    #[test]
    fn loose_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("run");
        private_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir(&d).unwrap_err().contains("chmod 700"));
    }

    #[test]
    fn the_agents_own_error_line_is_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        fs::write(&log, "tapis-agent: an old failure\n").unwrap();
        let from = fs::metadata(&log).unwrap().len();
        assert_eq!(last_words(&log, from), None);
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        io::Write::write_all(
            &mut f,
            b"2026-01-01T00:00:00Z  INFO starting\n\
              tapis-agent: /c.toml: line 2: unknown key `cache_tll_secs` (did you mean `cache_ttl_secs`?)\n\n",
        )
        .unwrap();
        assert_eq!(
            last_words(&log, from).as_deref(),
            Some("/c.toml: line 2: unknown key `cache_tll_secs` (did you mean `cache_ttl_secs`?)")
        );
        io::Write::write_all(&mut f, b"thread 'main' has overflowed its stack\n").unwrap();
        assert_eq!(
            last_words(&log, from).as_deref(),
            Some("/c.toml: line 2: unknown key `cache_tll_secs` (did you mean `cache_ttl_secs`?)")
        );
        let other = dir.path().join("other.log");
        fs::write(&other, "first\nkilled\n").unwrap();
        assert_eq!(last_words(&other, 0).as_deref(), Some("killed"));
    }

    #[test]
    fn nothing_listens_on_missing_or_stale_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        assert!(nothing_listens(&path));
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(nothing_listens(&path));
        let _live = std::os::unix::net::UnixListener::bind(dir.path().join("live.sock")).unwrap();
        assert!(!nothing_listens(&dir.path().join("live.sock")));
    }
}
