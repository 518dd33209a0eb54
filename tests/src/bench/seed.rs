//! The seed path: `python3` with the official tapipy running the DesignSafe
//! OpsUtils `establish_tms_credentials` (verbatim) against the bench's fake.

use anyhow::{Context as _, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a seed run (or the venv check) may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest the venv creation plus `pip install tapipy` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The script: the seed's warm path. `connect_tapis` loads a still-valid token
/// from an OpsUtils token file (no password prompt, no login call); then
/// `establish_tms_credentials` runs as published, once per system.
const SCRIPT: &str = r#"
import datetime, json, sys

from tapipy.tapis import Tapis


def connect_tapis(base_url, token_file):
    # OpsUtils' warm path: the cached token is still valid, so no login.
    with open(token_file) as f:
        saved = json.load(f)
    expires_at = datetime.datetime.fromisoformat(saved["expires_at"].replace("Z", "+00:00"))
    if expires_at <= datetime.datetime.now(datetime.timezone.utc):
        sys.exit("token expired")
    print(" Token loaded from file. Token is still valid!")
    return Tapis(base_url=base_url, access_token=saved["access_token"])


# Verbatim from OpsUtils/Tapis/establish_tms_credentials.py (Silvia Mazzoni, 2025),
# docstring left out.
def establish_tms_credentials(tapis, system_id: str, username: str):
    print(" -- TMS User Credentials --")
    from tapipy.errors import UnauthorizedError
    print('username:',username)
    print('system_id:',system_id)
    try:
        tapis.systems.checkUserCredential(systemId=system_id, userName=username)
        print(f"Found {username}'s system credentials.")
        return
    except UnauthorizedError:
        print(f"User {username} is missing system credentials.")
        print(f"Establishing new credentials")
        system_def = tapis.systems.getSystem(systemId=system_id)
        if system_def.get("defaultAuthnMethod") == "TMS_KEYS":
            tapis.systems.createUserCredential(
                systemId=system_id,
                userName=username,
                createTmsKeys=True,
            )
        print(f"Established {username}'s system credentials.")
    print('-- CREDENTIALS ESTABLISHED SUCCESSFULLY!!! --')


base_url, token_file, username = sys.argv[1:4]
t = connect_tapis(base_url, token_file)
for system_id in sys.argv[4:]:
    establish_tms_credentials(t, system_id, username)
"#;

/// A Python interpreter that can import tapipy, and the files a run needs.
#[derive(Debug)]
pub struct Seed {
    python: PathBuf,
    script: PathBuf,
    token_file: PathBuf,
    /// tapipy's version.
    pub tapipy_version: String,
}

/// Where the Python comes from.
#[derive(Debug, Clone)]
pub enum PythonSource {
    /// This interpreter (must import tapipy).
    Given(PathBuf),
    /// The venv at this path; created with `pip install tapipy` when missing
    /// and `install` is true.
    Venv {
        /// The venv directory.
        dir: PathBuf,
        /// Whether to create it.
        install: bool,
    },
    /// Do not run the seed path.
    Off,
}

impl Seed {
    /// Prepares the seed run in `work` with a token file holding
    /// `access_token`; `Err` says why the seed path cannot run.
    pub fn prepare(
        source: &PythonSource,
        work: &Path,
        access_token: &str,
        expires_at: &str,
    ) -> anyhow::Result<Self> {
        let python = match source {
            PythonSource::Off => bail!("disabled (--no-seed)"),
            PythonSource::Given(p) => p.clone(),
            PythonSource::Venv { dir, install } => {
                let python = dir.join("bin/python3");
                if !python.exists() {
                    ensure!(
                        *install,
                        "no tapipy venv at {} (`bench -- all` creates it, or pass --python)",
                        dir.display()
                    );
                    install_venv(dir)?;
                }
                python
            }
        };
        // The first import after an install compiles and caches a lot: give
        // it the install's time budget, so the timed runs find a warm cache.
        let mut probe = Command::new(&python);
        probe.args([
            "-c",
            "import tapipy.tapis, importlib.metadata as m; print(m.version('tapipy'))",
        ]);
        let (status, out) = run_captured(&mut probe, INSTALL_TIMEOUT)?;
        ensure!(
            status.success(),
            "{} cannot import tapipy",
            python.display()
        );
        let script = work.join("seed_establish.py");
        std::fs::write(&script, SCRIPT)?;
        let token_file = work.join("tapis_tokens.json");
        let saved = serde_json::json!({ "access_token": access_token, "expires_at": expires_at });
        std::fs::write(&token_file, saved.to_string())?;
        Ok(Seed {
            python,
            script,
            token_file,
            tapipy_version: out.trim().to_owned(),
        })
    }

    /// One run for `systems`: its wall time.
    pub fn run(&self, base_url: &str, user: &str, systems: &[&str]) -> anyhow::Result<Duration> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .arg(base_url)
            .arg(&self.token_file)
            .arg(user)
            .args(systems)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let status = wait_bounded(cmd.spawn()?, start, RUN_TIMEOUT)?;
        let took = start.elapsed();
        if !status.success() {
            // Run again with the output kept, to say why.
            let (_, out) = run_captured(&mut cmd, RUN_TIMEOUT)?;
            let tail: Vec<&str> = out.lines().rev().take(5).collect();
            bail!("the seed script failed ({status}): {}", tail.join(" | "));
        }
        Ok(took)
    }
}

fn install_venv(dir: &Path) -> anyhow::Result<()> {
    println!(
        "setting up the seed path: python3 -m venv {} && pip install tapipy",
        dir.display()
    );
    let mut venv = Command::new("python3");
    venv.arg("-m").arg("venv").arg(dir);
    let (status, _) = run_captured(&mut venv, RUN_TIMEOUT)?;
    ensure!(status.success(), "python3 -m venv failed");
    let mut pip = Command::new(dir.join("bin/pip"));
    pip.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "tapipy",
    ]);
    let (status, _) = run_captured(&mut pip, INSTALL_TIMEOUT)?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(dir);
        bail!("pip install tapipy failed (no access to PyPI?)");
    }
    Ok(())
}

/// Runs `cmd` with stdout captured, killing it after `timeout`.
fn run_captured(cmd: &mut Command, timeout: Duration) -> anyhow::Result<(ExitStatus, String)> {
    let out = tempfile::tempfile()?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out.try_clone()?)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let status = wait_bounded(child, Instant::now(), timeout)?;
    use std::io::{Read, Seek};
    let mut text = String::new();
    let mut out = out;
    out.rewind()?;
    out.read_to_string(&mut text)?;
    Ok((status, text))
}

/// Waits for `child`, polling every millisecond; kills it once `timeout` has
/// passed since `start`.
fn wait_bounded(
    mut child: std::process::Child,
    start: Instant,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("killed after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
