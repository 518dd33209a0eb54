//! The Python example (examples/python/tapis_token.py) against a real agent
//! and the fake Tapis, with the official SDK (tapipy) from the package
//! registry.
//!
//! tapipy is installed once into a venv under the target directory and
//! reused; a run with it installed costs an import, not an install. When
//! Python, venv or pip cannot do it (no network, no python3), the test says
//! why and passes without running: it checks an interop, not this machine.
//! `TAPIS_SKIP_PYTHON=1` skips it on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tapis_agent_tests::harness::{TestAgent, bin_path};

/// Longest a first-time `pip install tapipy` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest the example itself may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn skip(why: &str) {
    eprintln!("python_interop: SKIPPED: {why}");
}

/// Runs `cmd`, killing it after `limit`; `None` when it could not run in time.
fn run_within(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + limit;
    while child.try_wait().ok()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().ok()
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// The venv's python with tapipy importable, installing it the first time.
fn python_with_tapipy() -> Result<PathBuf, String> {
    let venv = bin_path("tapis-cred")
        .parent()
        .expect("target dir")
        .join("python-venv");
    let python = venv.join("bin/python");
    let imports = |python: &Path| {
        let mut cmd = Command::new(python);
        cmd.args(["-c", "import tapipy.tapis"]);
        run_within(cmd, RUN_TIMEOUT).is_some_and(|o| o.status.success())
    };
    if python.exists() && imports(&python) {
        return Ok(python);
    }
    if !python.exists() {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        match run_within(cmd, RUN_TIMEOUT) {
            Some(o) if o.status.success() => {}
            Some(o) => return Err(format!("python3 -m venv failed: {}", tail(&o.stderr))),
            None => return Err("python3 is not available".into()),
        }
    }
    eprintln!(
        "python_interop: installing tapipy into {} (once)",
        venv.display()
    );
    let mut cmd = Command::new(venv.join("bin/pip"));
    cmd.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--timeout",
        "30",
        "tapipy",
    ]);
    match run_within(cmd, INSTALL_TIMEOUT) {
        Some(o) if o.status.success() && imports(&python) => Ok(python),
        Some(o) => Err(format!(
            "pip install tapipy failed (no network?): {}",
            tail(&o.stderr)
        )),
        None => Err(format!(
            "pip install tapipy took longer than {} s",
            INSTALL_TIMEOUT.as_secs()
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapipy_example_uses_the_agents_token() {
    if std::env::var_os("TAPIS_SKIP_PYTHON").is_some_and(|v| v == "1") {
        return skip("TAPIS_SKIP_PYTHON=1");
    }
    let python = match tokio::task::spawn_blocking(python_with_tapipy)
        .await
        .expect("join")
    {
        Ok(p) => p,
        Err(why) => return skip(&why),
    };
    let agent = TestAgent::start().await;
    agent.login().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/tapis_token.py");
    let bin_dir = bin_path("tapis-cred")
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("stampede3")
        .env("PATH", path)
        .env("TAPIS_AGENT_SOCK", &agent.socket)
        // tapipy must not find a real config or token cache of this machine.
        .env("HOME", agent.dir.path());
    let out = tokio::task::spawn_blocking(move || run_within(cmd, RUN_TIMEOUT))
        .await
        .expect("join")
        .expect("the example finishes in time");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("stampede3: "), "{stdout}");
    assert!(stdout.contains("TMS_KEYS"), "{stdout}");
    // The SDK read the system itself, with the agent's token.
    assert!(agent.fake.calls("getSystem") >= 1);
    agent.shutdown().await;
}
