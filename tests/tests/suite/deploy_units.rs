//! The systemd user units: `install-units` / `uninstall-units`, what
//! `systemd-analyze verify` says about the result, and the hardening score.
//! Tests that need `systemd-analyze` say so and pass when it is missing
//! (CI installs the `systemd` package).

use crate::deploy_common;

use deploy_common::{Sandbox, shipped_unit, systemd_analyze, text};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use tapis_agent_tests::harness::bin_path;

/// The exposure the service must not exceed.
const MAX_EXPOSURE: f64 = 2.0;

fn analyze(sandbox: &Sandbox, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let tool = systemd_analyze().expect("systemd-analyze");
    // --user needs a runtime directory even offline.
    Command::new(tool)
        .env("XDG_RUNTIME_DIR", sandbox.path("run"))
        .args(args)
        .output()
        .expect("run systemd-analyze")
}

#[test]
fn install_verify_uninstall() {
    let sandbox = Sandbox::new("http://127.0.0.1:9");
    let out = sandbox
        .command("tapis-agent")
        .args(["install-units", "--user"])
        .output()
        .expect("install-units");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("systemctl --user enable --now tapis-agent.socket"),
        "{stdout}"
    );

    let units = sandbox.path("cfg/systemd/user");
    let service = std::fs::read_to_string(units.join("tapis-agent.service")).expect("service");
    let socket = std::fs::read_to_string(units.join("tapis-agent.socket")).expect("socket");
    let exe = bin_path("tapis-agent").canonicalize().expect("exe");
    let state = sandbox.state_dir();
    assert!(
        service.contains(&format!(
            "\nExecStart={} --state-dir {}\n",
            exe.display(),
            state.display()
        )),
        "{service}"
    );
    assert!(service.contains(&format!("\nReadWritePaths=-{}\n", state.display())));
    assert_eq!(
        socket,
        std::fs::read_to_string(shipped_unit("tapis-agent.socket")).expect("shipped")
    );
    // The only writable path must exist before systemd sets up the sandbox.
    let mode = std::fs::metadata(&state)
        .expect("state dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    if systemd_analyze().is_some() {
        let out = analyze(
            &sandbox,
            &[
                "verify".as_ref(),
                "--user".as_ref(),
                units.join("tapis-agent.socket").as_os_str(),
                units.join("tapis-agent.service").as_os_str(),
            ],
        );
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("tapis-agent"),
            "verify warns: {}",
            text(&out.stderr)
        );
    }

    let out = sandbox
        .command("tapis-agent")
        .arg("uninstall-units")
        .output()
        .expect("uninstall-units");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!units.join("tapis-agent.service").exists());
    assert!(!units.join("tapis-agent.socket").exists());
    assert!(text(&out.stdout).contains("systemctl --user stop tapis-agent.socket"));
    let again = sandbox
        .command("tapis-agent")
        .arg("uninstall-units")
        .output()
        .expect("uninstall-units");
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("no tapis-agent units"));
}

#[test]
fn uninstall_removes_the_enablement_link() {
    let sandbox = Sandbox::new("http://127.0.0.1:9");
    let units = sandbox.path("cfg/systemd/user");
    let out = sandbox
        .command("tapis-agent")
        .arg("install-units")
        .output()
        .expect("install-units");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // What `systemctl --user enable tapis-agent.socket` leaves behind.
    let wants = units.join("sockets.target.wants");
    std::fs::create_dir_all(&wants).expect("wants dir");
    std::os::unix::fs::symlink(
        units.join("tapis-agent.socket"),
        wants.join("tapis-agent.socket"),
    )
    .expect("link");
    let out = sandbox
        .command("tapis-agent")
        .arg("uninstall-units")
        .output()
        .expect("uninstall-units");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(wants.join("tapis-agent.socket")).is_err());
}

#[test]
fn shipped_service_is_hardened() {
    if systemd_analyze().is_none() {
        return;
    }
    let sandbox = Sandbox::new("http://127.0.0.1:9");
    let out = analyze(
        &sandbox,
        &[
            "security".as_ref(),
            "--offline=true".as_ref(),
            "--user".as_ref(),
            shipped_unit("tapis-agent.service").as_os_str(),
        ],
    );
    let report = text(&out.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for tapis-agent.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{report}{}", text(&out.stderr)));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{report}"
    );
}

#[test]
fn paths_that_need_quoting_are_refused() {
    let sandbox = Sandbox::new("http://127.0.0.1:9");
    let out = sandbox
        .command("tapis-agent")
        .arg("install-units")
        .arg("--state-dir")
        .arg(sandbox.path("my state"))
        .output()
        .expect("install-units");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("spaces"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !sandbox
            .path("cfg/systemd/user/tapis-agent.service")
            .exists()
    );
}
