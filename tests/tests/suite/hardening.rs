//! Hardening against a hostile network, neighbour or file system (issue 20
//! of the audit): no secret follows a redirect or crosses plain HTTP, a
//! neighbour cannot block a job, nothing secret in a core. Each test runs
//! the real programs where the behaviour is visible to users.

use crate::reliability_common;

use reliability_common::{AgentPaths, AgentProcess, temp_dir};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};
use tapis_agent_tests::harness::{PASSWORD, USER, bin_path, cred_cmd};
use tapis_agent_tests::needs::is_root;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

fn login(socket: &std::path::Path) -> Output {
    cred_cmd(
        socket,
        &["login", "--username", USER, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
}

/// Counts the connections a listener accepts and the bytes they send, and
/// answers nothing.
#[derive(Clone, Default)]
struct Recorder {
    connections: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

impl Recorder {
    /// A recorder on a loopback TCP port, and its address.
    async fn tcp() -> (Self, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let recorder = Self::default();
        let r = recorder.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                r.record(s);
            }
        });
        (recorder, addr)
    }

    /// Counts `s` and what it sends, until it closes or is silent for 5 s.
    fn record(&self, mut s: impl tokio::io::AsyncRead + Unpin + Send + 'static) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        let bytes = self.bytes.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
                bytes.fetch_add(n, Ordering::SeqCst);
            }
        });
    }

    fn received(&self) -> (usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
    }
}

/// A "Tapis" on loopback that answers every request with a 307 to the same
/// path on `to`.
async fn redirector(to: SocketAddr) -> SocketAddr {
    use axum::http::{StatusCode, Uri, header::LOCATION};
    let app = axum::Router::new().fallback(move |uri: Uri| async move {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(LOCATION, format!("http://{to}{uri}"))],
        )
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Point 1: a Tapis that redirects to another server gets an error naming
/// the redirect; the other server receives no password and no token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_carries_no_password_and_no_token() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("th");
    let paths = AgentPaths::under(dir.path());
    // Logged in against the real fake first: the agent then holds a token.
    let mut agent = AgentProcess::start(&paths, &fake.base_url(), "info").await;
    let socket = paths.socket.clone();
    let out = blocking(move || login(&socket)).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    agent.terminate();

    let (elsewhere, elsewhere_addr) = Recorder::tcp().await;
    let tapis = redirector(elsewhere_addr).await;
    let _agent = AgentProcess::start(&paths, &format!("http://{tapis}"), "info").await;
    let socket = paths.socket.clone();
    let (establish, relogin) = blocking(move || {
        (
            cred_cmd(&socket, &["establish", "ls6"], None),
            login(&socket),
        )
    })
    .await;
    let target = format!("http://{elsewhere_addr}");
    // The stored login belongs to the first Tapis: it is not even sent to
    // this one (docs/tapis-conformance.md, row 36).
    assert_eq!(establish.status.code(), Some(3), "{establish:?}");
    assert!(text(&establish.stderr).contains("never sent to another Tapis"));
    // The password is: the redirect stops it.
    let err = text(&relogin.stderr);
    assert_eq!(relogin.status.code(), Some(8), "{relogin:?}");
    assert!(
        err.contains("307") && err.contains(&target) && err.contains("redirect"),
        "{err}"
    );
    assert_eq!(
        elsewhere.received(),
        (0, 0),
        "the redirect target was contacted"
    );
    fake.shutdown().await;
}

/// The agent binary with `args`, its config at `dir/config.toml`, socket and
/// state under `dir`; no environment that could change them.
fn agent_cmd(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin_path("tapis-agent"));
    cmd.arg("--socket")
        .arg(dir.join("run/agent.sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(args)
        .env_remove("TAPIS_AGENT_SOCK")
        .env_remove("TAPIS_AGENT_STATE_DIR")
        .env_remove("TAPIS_BASE_URL")
        .env_remove("TAPIS_TENANT")
        .stdin(std::process::Stdio::null());
    cmd
}

/// Point 2: plain HTTP to a host other than loopback is refused at start-up
/// naming the key that allows it; with the key, `config show` says so and
/// `doctor` warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_another_host_is_refused_unless_allowed() {
    let dir = temp_dir("th");
    let d = dir.path().to_owned();
    let started = std::time::Instant::now();
    let out = agent_cmd(&d, &["--base-url", "http://10.255.255.1"])
        .output()
        .expect("run tapis-agent");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("http://10.255.255.1")
            && err.contains("in clear")
            && err.contains("allow_insecure_http = true"),
        "{err}"
    );
    // Refused before any connection was tried (port 80 of that address
    // would hang until the connect timeout).
    assert!(started.elapsed() < Duration::from_secs(5));
    // So is the same address from the config file.
    std::fs::write(
        d.join("config.toml"),
        "base_url = \"http://10.255.255.1\"\n",
    )
    .expect("write");
    let out = agent_cmd(&d, &["config", "show"])
        .output()
        .expect("config show");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("allow_insecure_http"), "{out:?}");

    // Opted in: shown, and the doctor warns (loopback here, so that nothing
    // leaves the host).
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    std::fs::write(
        d.join("config.toml"),
        format!(
            "base_url = \"{}\"\nallow_insecure_http = true\n",
            fake.base_url()
        ),
    )
    .expect("write");
    let out = agent_cmd(&d, &["config", "show"])
        .output()
        .expect("config show");
    let shown = text(&out.stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("allow_insecure_http") && l.contains("true")),
        "{shown}"
    );
    let mut agent = agent_cmd(&d, &[])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let socket = d.join("run/agent.sock");
    tapis_agent_tests::harness::wait_for_socket(&socket).await;
    let out = blocking(move || cred_cmd(&socket, &["doctor", "--json"], None)).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor --json");
    let config = doc["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "config"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(config["status"], "warn", "{doc}");
    assert!(
        config["detail"]
            .as_str()
            .is_some_and(|d| d.contains("allow_insecure_http = true")),
        "{doc}"
    );
    let _ = agent.kill();
    let _ = agent.wait();
    fake.shutdown().await;
}

/// This process's soft core limit raised to its hard limit, so that children
/// would write cores unless they prevent it; put back when dropped (the
/// suite's other tests share this process and start children meanwhile).
struct RaisedCoreLimit {
    before: libc::rlimit,
    /// The raised soft limit.
    raised: u64,
}

impl RaisedCoreLimit {
    #[allow(unsafe_code)]
    fn new() -> Self {
        let mut before = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_CORE, &mut before), 0);
            let raised = libc::rlimit {
                rlim_cur: before.rlim_max,
                rlim_max: before.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_CORE, &raised), 0);
        }
        Self {
            raised: before.rlim_max,
            before,
        }
    }
}

impl Drop for RaisedCoreLimit {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: as above; lowering a soft limit cannot fail.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &self.before);
        }
    }
}

/// The "Max core file size" soft limit of `pid`, as /proc shows it.
fn core_limit_of(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .and_then(|l| l.split_whitespace().nth(4))
        .expect("core limit")
        .to_owned()
}

/// Runs `program args` in `dir`, as `nobody` when this test runs as root
/// (so that /proc shows the dumpable flag: a non-dumpable process's files
/// there belong to root), with `dir` then handed to `nobody`.
fn spawn_unprivileged(
    dir: &std::path::Path,
    program: &std::path::Path,
    args: &[&str],
) -> std::process::Child {
    let mut cmd = if is_root() {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).expect("chown");
        let mut c = std::process::Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        c
    } else {
        std::process::Command::new(program)
    };
    cmd.args(args)
        .current_dir(dir)
        .env_remove("TAPIS_AGENT_SOCK")
        .env_remove("TAPIS_AGENT_STATE_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn")
}

/// Kills `child` with `signal` and reports whether it dumped core. Rust
/// programs catch SIGSEGV (to report stack overflows) and, for one that
/// was sent rather than caused, restore the default action and carry on:
/// the signal is sent again until the process dies (bounded).
fn kill_and_wait(child: &mut std::process::Child, signal: &str) -> bool {
    use std::os::unix::process::ExitStatusExt;
    for _ in 0..20 {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        for _ in 0..50 {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert!(status.signal().is_some(), "{status:?}");
                return status.core_dumped();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("SIG{signal} did not end the process");
}

fn cores_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("core"))
        .collect()
}

/// Point 4: an agent killed with SIGSEGV or SIGABRT writes no core, is not
/// dumpable and runs with a core limit of 0; a process started the same
/// way without the agent's precautions does dump (the check can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_agent_writes_no_core() {
    let limit = RaisedCoreLimit::new();
    let original = limit.raised;
    assert!(
        !is_root() || std::path::Path::new("/usr/bin/setpriv").exists(),
        "setpriv is needed when running as root"
    );
    // The control: a plain process started the same way dumps core here,
    // or this host writes no core files and the kill only proves the limit.
    let control = temp_dir("tc");
    let mut sleeper =
        spawn_unprivileged(control.path(), std::path::Path::new("/bin/sleep"), &["30"]);
    let host_dumps = kill_and_wait(&mut sleeper, "SEGV") && original != 0;
    if host_dumps {
        assert!(
            !cores_in(control.path()).is_empty(),
            "the control left no core file"
        );
    } else {
        eprintln!(
            "this host writes no core files: only the limit and the dumpable flag are checked"
        );
    }
    for signal in ["SEGV", "ABRT"] {
        let dir = temp_dir("th");
        let d = dir.path();
        let socket = d.join("run/agent.sock");
        let args = [
            "--socket".to_owned(),
            socket.display().to_string(),
            "--state-dir".to_owned(),
            d.join("state").display().to_string(),
            "--config".to_owned(),
            d.join("config.toml").display().to_string(),
            "--base-url".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut agent = spawn_unprivileged(d, &bin_path("tapis-agent"), &args);
        // The socket is bound after the precautions are taken.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the agent never bound its socket"
            );
            assert!(
                agent.try_wait().expect("try_wait").is_none(),
                "the agent exited"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pid = agent.id();
        assert_eq!(core_limit_of(pid), "0", "core limit of the agent");
        // The agent does not run as root: only a non-dumpable process's
        // /proc files belong to root.
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(format!("/proc/{pid}/status")).expect("status"),
        );
        assert_eq!(owner, 0, "the agent is still dumpable");
        assert!(
            !kill_and_wait(&mut agent, signal),
            "the agent dumped core on SIG{signal}"
        );
        assert!(cores_in(d).is_empty(), "core files: {:?}", cores_in(d));
        if is_root() {
            // Handed back for its removal.
            std::os::unix::fs::chown(d, Some(0), Some(0)).expect("chown");
        }
    }
    if is_root() {
        std::os::unix::fs::chown(control.path(), Some(0), Some(0)).expect("chown");
    }
}

/// Point 4: `exec`'s private agent has a core limit of 0, and the command it
/// runs gets the limit `exec` started with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_its_command_with_the_normal_core_limit() {
    let limit = RaisedCoreLimit::new();
    let original = limit.raised;
    let dir = temp_dir("th");
    let d = dir.path().to_owned();
    let out = blocking(move || {
        agent_cmd(
            &d,
            &[
                "--base-url",
                "http://127.0.0.1:9",
                "exec",
                "--private",
                "--quiet",
                "--",
                "sh",
                "-c",
                "grep 'core file' /proc/self/limits; grep 'core file' /proc/$PPID/limits",
            ],
        )
        .output()
        .expect("exec")
    })
    .await;
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let limits: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    let want = if original == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        original.to_string()
    };
    assert_eq!(limits, [want.as_str(), "0"], "{shown}");
}

/// Point 5: the client asks the connection who listens (`SO_PEERCRED`)
/// before writing anything. The socket file here passes any check of the
/// path (it belongs to the user, in a root-owned directory), as a file
/// swapped in after the connect would; the listener is root's. The user is
/// `nobody`, so this needs root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(as_root), ignore = "needs root")]
async fn a_socket_of_another_user_never_receives_a_frame() {
    assert!(is_root(), "needs root to run the client as another user");
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("th");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = dir.path().join("agent.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("chown");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let recorder = Recorder::default();
    let r = recorder.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            r.record(s);
        }
    });
    let socket = path.clone();
    let out = blocking(move || {
        let mut cmd = std::process::Command::new("/usr/bin/setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin_path("tapis-cred"))
            .arg("--socket")
            .arg(&socket)
            .args(["login", "--username", USER, "--password-stdin"])
            .env("TAPIS_AGENT_AUTOSTART", "0");
        tapis_agent_tests::harness::output_with_stdin(cmd, Some(&format!("{PASSWORD}\n")))
            .expect("run tapis-cred as nobody")
    })
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(
        err.contains("runs as uid 0, not as you (uid 65534)"),
        "{err}"
    );
    // `exec` does not take it for an agent of the user's: it runs its own.
    let home = temp_dir("th");
    std::os::unix::fs::chown(home.path(), Some(65534), Some(65534)).expect("chown");
    let (socket, h) = (path.clone(), home.path().to_owned());
    let exec = blocking(move || {
        std::process::Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin_path("tapis-agent"))
            .args(["--base-url", "http://127.0.0.1:9", "exec", "--quiet", "--"])
            .args(["sh", "-c", "echo \"$TAPIS_AGENT_SOCK\""])
            .env("TAPIS_AGENT_SOCK", &socket)
            .env("HOME", &h)
            .env("XDG_RUNTIME_DIR", &h)
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("TAPIS_AGENT_STATE_DIR")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run exec as nobody")
    })
    .await;
    assert_eq!(exec.status.code(), Some(0), "{exec:?}");
    let used = text(&exec.stdout);
    assert!(
        used.trim().starts_with(&home.path().display().to_string()),
        "exec used {used}"
    );
    std::os::unix::fs::chown(home.path(), Some(0), Some(0)).expect("chown");
    // Both connected (the refusal is about the connection), neither wrote.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (connections, bytes) = recorder.received();
    assert_eq!(connections, 2);
    assert_eq!(bytes, 0, "the listener received a frame");
}

/// Point 6: `logout` removes the token file the agent keeps fresh
/// (`export_token_file`), and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_removes_the_exported_token_file() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("th");
    let paths = AgentPaths::under(dir.path());
    let token_file = dir.path().join("tapis_tokens.json");
    std::fs::write(
        &paths.config,
        format!("export_token_file = \"{}\"\n", token_file.display()),
    )
    .expect("config");
    let _agent = AgentProcess::start(&paths, &fake.base_url(), "info").await;
    let socket = paths.socket.clone();
    let out = blocking(move || login(&socket)).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(token_file.exists(), "the agent exports its token");
    let socket = paths.socket.clone();
    let (human, json) = blocking(move || {
        (
            cred_cmd(&socket, &["logout"], None),
            // Nothing left to remove the second time.
            cred_cmd(&socket, &["--json", "logout"], None),
        )
    })
    .await;
    assert_eq!(human.status.code(), Some(0), "{human:?}");
    assert_eq!(
        text(&human.stdout).trim(),
        format!(
            "logged out; removed the token file {}",
            token_file.display()
        )
    );
    assert!(!token_file.exists(), "the token file is still there");
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(
        doc,
        serde_json::json!({"command": "logout", "ok": true, "exit_code": 0})
    );
    fake.shutdown().await;
}

/// Point 10: a symlink planted at `locks/refresh.lock` is an error naming it
/// (logged; the refresh goes on without the lock), never a switch of every
/// agent on the directory to lock files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_lock_is_an_error_not_a_mode_switch() {
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("th");
    let paths = AgentPaths::under(dir.path());
    let locks = paths.state_dir.join("locks");
    std::fs::create_dir_all(&locks).expect("mkdir");
    for d in [&paths.state_dir, &locks] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    let victim = dir.path().join("victim");
    let link = locks.join("refresh.lock");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let agent = AgentProcess::start(&paths, &fake.base_url(), "info").await;
    let socket = paths.socket.clone();
    let (login, status) = blocking(move || {
        (
            login(&socket),
            cred_cmd(&socket, &["--json", "status"], None),
        )
    })
    .await;
    assert_eq!(login.status.code(), Some(0), "{login:?}");
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status --json");
    assert_eq!(doc["state_dir"]["lock_method"], "flock", "{doc}");
    assert!(
        !locks.join("lockfile-mode").exists(),
        "the mode was switched"
    );
    assert!(!victim.exists(), "the link was followed");
    let log = agent.log_text();
    assert!(
        log.contains(&format!("{} is a symbolic link", link.display())),
        "{log}"
    );
    fake.shutdown().await;
}

/// Point 7: a config file others can write (or owned by another user) is
/// refused, as ssh does, with the fix; `doctor` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("th");
    let d = dir.path().to_owned();
    let xdg = d.join("xdg");
    let file = xdg.join("tapis-agent/config.toml");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
    std::fs::write(&file, "base_url = \"http://127.0.0.1:9\"\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let fix = format!("chmod go-w {}", file.display());
    let run = |args: &[&str]| agent_with_config(&d, args);
    for out in [run(&[]), run(&["config", "show"])] {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("writable by group or others (mode 0666)") && err.contains(&fix),
            "{err}"
        );
    }
    // The doctor (no agent running) reads the same file through config show.
    let doctor = std::process::Command::new(bin_path("tapis-cred"))
        .arg("--socket")
        .arg(d.join("none/agent.sock"))
        .args(["--json", "doctor"])
        .env("XDG_CONFIG_HOME", &xdg)
        .env("TAPIS_AGENT_AUTOSTART", "0")
        .output()
        .expect("doctor");
    let doc: serde_json::Value = serde_json::from_slice(&doctor.stdout).expect("doctor --json");
    let config = doc["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "config"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(config["status"], "fail", "{doc}");
    assert_eq!(config["fix"], fix.as_str(), "{doc}");
    assert!(
        config["detail"]
            .as_str()
            .is_some_and(|d| d.contains("writable by group or others")),
        "{doc}"
    );
    // Fixed as told: used.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(&["config", "show"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// `tapis-agent ARGS` with the config file under `d/xdg`.
fn agent_with_config(d: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(bin_path("tapis-agent"))
        .arg("--socket")
        .arg(d.join("run/agent.sock"))
        .arg("--state-dir")
        .arg(d.join("state"))
        .args(args)
        .env("XDG_CONFIG_HOME", d.join("xdg"))
        .env_remove("TAPIS_BASE_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("tapis-agent")
}

/// A config file owned by another user is refused too: only root can make
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(as_root), ignore = "needs root")]
async fn a_config_file_of_another_user_is_refused() {
    tapis_agent_tests::needs::root("to chown a file to another user");
    let dir = temp_dir("th");
    let file = dir.path().join("xdg/tapis-agent/config.toml");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
    std::fs::write(&file, "base_url = \"http://127.0.0.1:9\"\n").expect("write");
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).expect("chown");
    let out = agent_with_config(dir.path(), &["config", "show"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("owned by uid 65534, not by you (uid 0)"),
        "{err}"
    );
}

/// Runs `program args` as `nobody` with `home` as its home and no runtime
/// directory, capturing its output.
fn as_nobody(home: &std::path::Path, program: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(program)
        .args(args)
        .env("HOME", home)
        .env("TAPIS_AGENT_AUTOSTART", "1")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("TAPIS_AGENT_SOCK")
        .env_remove("TAPIS_AGENT_STATE_DIR")
        .env_remove("INVOCATION_ID")
        .env_remove("NOTIFY_SOCKET")
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run as nobody")
}

/// Point 3: another user creates `/tmp/tapis-agent-$UID` first (here root
/// for the user `nobody`, open to all). `exec` still runs the job, with an
/// agent in a private directory of unpredictable name; autostart starts the
/// agent there, and later commands find it through the pointer file in the
/// user's state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(as_root), ignore = "needs root")]
async fn a_neighbour_owning_the_runtime_directory_cannot_stop_a_job() {
    use std::os::unix::fs::PermissionsExt;
    assert!(is_root(), "needs root to act as two users");
    let fixed = std::path::PathBuf::from("/tmp/tapis-agent-65534");
    let cleanup = || {
        let _ = std::fs::remove_dir_all(&fixed);
        for e in std::fs::read_dir("/tmp").expect("tmp").flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("tapis-agent-65534.")
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    };
    cleanup();
    std::fs::create_dir(&fixed).expect("mkdir");
    std::fs::set_permissions(&fixed, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let home = temp_dir("th");
    std::os::unix::fs::chown(home.path(), Some(65534), Some(65534)).expect("chown");
    let h = home.path().to_owned();

    let exec = blocking(move || {
        as_nobody(
            &h,
            &bin_path("tapis-agent"),
            &["--base-url", "http://127.0.0.1:9", "exec", "--quiet", "--"]
                .into_iter()
                .chain(["sh", "-c", "echo \"$TAPIS_AGENT_SOCK\""])
                .collect::<Vec<_>>(),
        )
    })
    .await;
    assert_eq!(exec.status.code(), Some(0), "{exec:?}");
    let used = text(&exec.stdout);
    assert!(
        used.starts_with("/tmp/tapis-agent-65534.") && used.contains("/exec-"),
        "the job ran with {used}"
    );
    let private_dir = used.split("/exec-").next().unwrap_or_default().to_owned();
    let pointer = std::fs::read_dir(home.path().join(".local/state/tapis-agent"))
        .expect("state dir")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("runtime-dir."))
        .expect("pointer file");
    assert_eq!(
        std::fs::read_to_string(pointer.path())
            .expect("pointer")
            .trim(),
        private_dir
    );
    let meta = std::fs::symlink_metadata(&private_dir).expect("private dir");
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);

    // Autostart starts the agent in that directory; the next command finds it.
    let h = home.path().to_owned();
    let (first, second) = blocking(move || {
        let cred = bin_path("tapis-cred");
        (
            as_nobody(&h, &cred, &["--json", "status"]),
            as_nobody(&h, &cred, &["--json", "-v", "status"]),
        )
    })
    .await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let pid = |out: &Output| {
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("status --json")["agent"]
            ["pid"]
            .as_u64()
            .expect("pid")
    };
    let agent = pid(&first);
    assert_eq!(agent, pid(&second), "a second agent was started");
    assert!(
        text(&second.stderr).contains(&format!("{private_dir}/agent.sock")),
        "{}",
        text(&second.stderr)
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &agent.to_string()])
        .status();
    std::os::unix::fs::chown(home.path(), Some(0), Some(0)).expect("chown");
    cleanup();
}

/// Point 9: an `exec` killed with SIGKILL leaves its directory (with, when
/// logged in, a token file that still works); the next agent or `exec`
/// started there removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_of_killed_execs_are_removed_at_start_up() {
    let runtime = temp_dir("th");
    let base = runtime.path().join("tapis-agent");
    let state = temp_dir("th");
    let exec = |args: &[&str]| {
        let mut cmd = std::process::Command::new(bin_path("tapis-agent"));
        cmd.args(["--base-url", "http://127.0.0.1:9", "--state-dir"])
            .arg(state.path().join("s"))
            .args(["exec", "--private", "--quiet", "--"])
            .args(args)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("TAPIS_AGENT_SOCK")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    let exec_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&base)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("exec-"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut killed = {
        use std::os::unix::process::CommandExt;
        exec(&["sleep", "30"])
            .process_group(0)
            .spawn()
            .expect("exec")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while exec_dirs().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "exec made no directory"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // exec and its command, as a job scheduler kills them.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", killed.id())])
        .status();
    let _ = killed.wait();
    let left = exec_dirs();
    assert_eq!(left.len(), 1, "{left:?}");
    // Another exec starts beside it: the dead one's directory goes.
    let status = exec(&["true"]).status().expect("exec");
    assert!(status.success());
    assert_eq!(exec_dirs(), Vec::<std::path::PathBuf>::new());
    // So does an agent starting on the socket beside such a directory.
    let stale = base.join(format!("exec-{}-0000beef", u32::MAX - 1));
    std::fs::create_dir(&stale).expect("mkdir");
    let paths = AgentPaths {
        socket: base.join("agent.sock"),
        ..AgentPaths::under(state.path())
    };
    let _agent = AgentProcess::start(&paths, "http://127.0.0.1:9", "info").await;
    assert!(!stale.exists(), "the agent left a dead exec's directory");
}

/// Point 8: the limits the client accepts fit the frames the agent sends:
/// `check` of 256 ids of 80 characters (Tapis knows none of them, so every
/// answer is an error with a message) answers, one result per id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_of_256_long_ids_answers() {
    use tapis_agent_proto::limits::{MAX_SYSTEM_ID_LEN, MAX_SYSTEMS_PER_REQUEST};
    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let dir = temp_dir("th");
    let paths = AgentPaths::under(dir.path());
    let _agent = AgentProcess::start(&paths, &fake.base_url(), "warn").await;
    let socket = paths.socket.clone();
    let ids: Vec<String> = (0..MAX_SYSTEMS_PER_REQUEST)
        .map(|i| format!("s{i:0>width$}", width = MAX_SYSTEM_ID_LEN - 1))
        .collect();
    let (login, human, json) = blocking(move || {
        let login = login(&socket);
        let mut args = vec!["check"];
        args.extend(ids.iter().map(String::as_str));
        let human = cred_cmd(&socket, &args, None);
        let mut json_args = vec!["--json"];
        json_args.extend(&args);
        (login, human, cred_cmd(&socket, &json_args, None))
    })
    .await;
    assert_eq!(login.status.code(), Some(0), "{login:?}");
    for out in [&human, &json] {
        let code = out.status.code();
        assert!(
            code != Some(7) && code != Some(1),
            "{code:?} {}",
            text(&out.stderr)
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let results = doc["results"]
        .as_array()
        .or_else(|| doc["systems"].as_array())
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(results.len(), MAX_SYSTEMS_PER_REQUEST, "{doc}");
    fake.shutdown().await;
}

/// Point 8: 600 clients of the user's own uid that ask and never read their
/// answers (each blocks the agent's write once its socket buffer is full)
/// cannot hold the 512 connection slots: `status` answers within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_do_not_delay_status() {
    use tapis_agent_proto::limits::{MAX_SYSTEM_ID_LEN, MAX_SYSTEMS_PER_REQUEST};
    use tapis_agent_proto::{PROTOCOL_VERSION, Request, encode_frame};
    use tokio::io::AsyncWriteExt;
    let _turn = crate::HEAVY.lock().await;
    reliability_common::raise_nofile_limit();
    let dir = temp_dir("th");
    let paths = AgentPaths::under(dir.path());
    let agent = AgentProcess::start(&paths, "http://127.0.0.1:9", "warn").await;
    // Hello, then requests whose answers are near a frame each (256 invalid
    // ids: answered without Tapis), enough to fill the socket buffer.
    let mut bytes = encode_frame(&Request::Hello {
        protocol_version: PROTOCOL_VERSION,
        client_version: "never-reads".into(),
    })
    .expect("hello");
    let check = Request::Check {
        systems: (0..MAX_SYSTEMS_PER_REQUEST)
            .map(|i| format!("{i:/>width$}", width = MAX_SYSTEM_ID_LEN))
            .collect(),
        user: Some(USER.into()),
        fresh: false,
    };
    for _ in 0..5 {
        bytes.extend(encode_frame(&check).expect("check"));
    }
    let bytes = Arc::new(bytes);
    let mut tasks = Vec::new();
    for _ in 0..600 {
        let (socket, bytes) = (paths.socket.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::UnixStream::connect(&socket).await.ok()?;
            tokio::time::timeout(Duration::from_secs(10), s.write_all(&bytes))
                .await
                .ok()?
                .ok()?;
            Some(s)
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        held.extend(t.await.expect("join"));
    }
    assert!(held.len() >= 512, "only {} clients got in", held.len());
    // Let the agent answer until every slot is stuck on a write: until it
    // stops using CPU (the work itself is not what is measured here).
    let cpu = || {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", agent.pid())).unwrap_or_default();
        // utime and stime: fields 14 and 15 of the line, 11 and 12 after
        // the command name.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        field(11) + field(12)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last = cpu();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = cpu();
        if now == last || std::time::Instant::now() > deadline {
            break;
        }
        last = now;
    }
    let socket = paths.socket.clone();
    let (took, out) = blocking(move || {
        let start = std::time::Instant::now();
        let out = cred_cmd(&socket, &["status"], None);
        (start.elapsed(), out)
    })
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        took < Duration::from_secs(1),
        "status took {took:?} behind clients that never read"
    );
    drop(held);
}
