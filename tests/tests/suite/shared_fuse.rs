//! Two hosts sharing a state directory through a filesystem whose `flock`
//! holds on each host alone: two FUSE (bindfs) mounts of one directory, one
//! agent process on each. `flock` taken through one mount does not exclude
//! a holder through the other, as on FUSE, BeeGFS, Lustre `localflock` or
//! NFS `local_lock` between nodes; the agents see a FUSE filesystem, use
//! lock files, and a burst of establishes on both costs one credential
//! check. Forced to `flock`, the same burst costs two.
//!
//! Needs root, `/dev/fuse` and `bindfs` (.ci/run installs it): built by
//! another user it is ignored (a skip the runner counts); as root, without
//! FUSE or bindfs it fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tapis_agent_proto::{LoginMethod, Request, Response, Secret};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis, Fault, FaultKind};
use tapis_agent_tests::harness::{PASSWORD, USER, cred_cmd};
use tapis_agent_tests::process::{AgentPaths, AgentProcess, ask};

const WAIT: Duration = Duration::from_secs(20);
/// How long Tapis takes over each credential check: long enough that the
/// two agents' establishes overlap.
const SLOW_CHECK: Duration = Duration::from_millis(1000);

/// FUSE mounts, unmounted when dropped (a failing test included).
struct Mounts(Vec<PathBuf>);

impl Mounts {
    /// `bindfs BACKING POINT` for each point, or why not.
    fn bind(backing: &Path, points: &[PathBuf]) -> Result<Self, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse is missing".into());
        }
        let mut mounts = Mounts(Vec::new());
        for point in points {
            std::fs::create_dir_all(point).map_err(|e| e.to_string())?;
            let out = Command::new("bindfs")
                .arg(backing)
                .arg(point)
                .output()
                .map_err(|e| format!("bindfs: {e} (apt-get install bindfs fuse3)"))?;
            if !out.status.success() {
                return Err(format!(
                    "bindfs {}: {}",
                    point.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            mounts.0.push(point.clone());
        }
        Ok(mounts)
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for point in &self.0 {
            let unmounted = ["fusermount3", "fusermount", "umount"].iter().any(|tool| {
                Command::new(tool)
                    .args(if *tool == "umount" { ["-l"] } else { ["-uz"] })
                    .arg(point)
                    .status()
                    .is_ok_and(|s| s.success())
            });
            if !unmounted {
                eprintln!("could not unmount {}", point.display());
            }
        }
    }
}

/// Agent processes, killed when dropped (a failing test included).
struct Agents(Vec<AgentProcess>);

impl Drop for Agents {
    fn drop(&mut self) {
        for agent in &mut self.0 {
            agent.kill9();
        }
    }
}

/// Host `name`: its own socket, config and log, its state directory
/// through `mount`.
fn host(dir: &Path, name: &str, mount: &Path, config: &str) -> AgentPaths {
    let own = dir.join(name);
    std::fs::create_dir_all(&own).expect("host dir");
    let paths = AgentPaths {
        socket: own.join("run/agent.sock"),
        state_dir: mount.join("state"),
        config: own.join("config.toml"),
        log: own.join("agent.log"),
    };
    std::fs::write(&paths.config, config).expect("config");
    paths
}

async fn start(hosts: &[AgentPaths], base: &str) -> Agents {
    let mut agents = Agents(Vec::new());
    for paths in hosts {
        agents
            .0
            .push(AgentProcess::start(paths, base, "info").await);
    }
    agents
}

/// `per_agent` establishes of `system` sent at once to every agent; all must
/// succeed.
async fn burst(agents: &Agents, system: &str, per_agent: usize) {
    let calls = agents.0.iter().flat_map(|a| {
        (0..per_agent).map(move |_| {
            let socket = a.socket.clone();
            let req = Request::Establish {
                systems: vec![system.into()],
                user: None,
                fresh: false,
            };
            tokio::spawn(async move { ask(&socket, &req, WAIT).await })
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let answer = call.await.expect("join");
        assert!(matches!(answer, Ok(Response::Systems(_))), "{answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(as_root), ignore = "needs root (FUSE mounts)")]
async fn two_fuse_hosts_use_lock_files_and_share_one_check() {
    let dir = tempfile::Builder::new()
        .prefix("tf")
        .tempdir_in("/tmp")
        .expect("dir");
    let backing = dir.path().join("back");
    std::fs::create_dir(&backing).expect("backing dir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mounts = match Mounts::bind(&backing, &[a.clone(), b.clone()]) {
        Ok(m) => m,
        Err(why) => panic!("FUSE unavailable: {why} (needs /dev/fuse and bindfs)"),
    };

    // What goes wrong with flock here: a holder through each mount at once,
    // while through one mount it excludes as usual.
    std::fs::write(backing.join("probe"), b"").expect("probe");
    let open = |p: &Path| {
        File::options()
            .read(true)
            .write(true)
            .open(p)
            .expect("open")
    };
    let via_a = open(&a.join("probe"));
    let via_b = open(&b.join("probe"));
    via_a.try_lock().expect("flock through a");
    assert!(
        open(&a.join("probe")).try_lock().is_err(),
        "flock excludes through one mount"
    );
    via_b
        .try_lock()
        .expect("flock through b is granted too: two holders at once");
    drop((via_a, via_b));

    let fake = FakeTapis::start(FakeConfig::default()).await.expect("fake");
    let base = fake.base_url();
    let hosts = [
        host(dir.path(), "hostA", &a, ""),
        host(dir.path(), "hostB", &b, ""),
    ];
    let agents = start(&hosts, &base).await;
    for agent in &agents.0 {
        let login = Request::Login(LoginMethod::Password {
            username: USER.into(),
            password: Secret::new(PASSWORD),
        });
        let answer = ask(&agent.socket, &login, WAIT).await;
        assert!(
            matches!(answer, Ok(Response::LoggedIn { .. })),
            "{answer:?}"
        );
        // What `tapis-cred --json status` shows.
        let out = cred_cmd(&agent.socket, &["--json", "status"], None);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
        let state = &status["state_dir"];
        assert_eq!(state["lock_method"], "lockfile", "{status}");
        assert!(
            state["filesystem"]
                .as_str()
                .unwrap_or_default()
                .starts_with("fuse"),
            "{status}"
        );
        assert!(
            state["lock_reason"]
                .as_str()
                .unwrap_or_default()
                .contains("FUSE"),
            "{status}"
        );
    }
    assert!(backing.join("state/locks/lockfile-mode").exists());

    fake.inject(Fault {
        times: 2,
        ..Fault::new("checkUserCredential", FaultKind::Delay(SLOW_CHECK))
    });
    burst(&agents, "stampede3", 5).await;
    assert_eq!(
        fake.calls("checkUserCredential"),
        1,
        "lock files: one check between the two hosts"
    );
    assert_eq!(fake.calls("createUserCredential"), 1);
    drop(agents);
    fake.clear_faults();

    // The same two hosts forced to flock: both hold the system's lock at
    // once, and each asks Tapis.
    let forced = [
        host(dir.path(), "hostA", &a, "state_lock = \"flock\"\n"),
        host(dir.path(), "hostB", &b, "state_lock = \"flock\"\n"),
    ];
    let agents = start(&forced, &base).await;
    let out = cred_cmd(&agents.0[0].socket, &["--json", "status"], None);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(status["state_dir"]["lock_method"], "flock", "{status}");
    let before = fake.calls("checkUserCredential");
    fake.inject(Fault {
        times: 2,
        ..Fault::new("checkUserCredential", FaultKind::Delay(SLOW_CHECK))
    });
    burst(&agents, "ls6", 5).await;
    assert_eq!(
        fake.calls("checkUserCredential") - before,
        2,
        "flock through two FUSE mounts: each host checks"
    );
    drop(agents);
    fake.shutdown().await;
    drop(mounts);
}
