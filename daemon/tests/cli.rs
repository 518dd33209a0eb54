//! The `tapis-agent` binary's own command line: help, bad input, clean errors.

use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tapis-agent"))
}

#[test]
fn help_teaches() {
    let out = agent().arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["--socket", "--base-url", "--config", "Example"] {
        assert!(text.contains(word), "help lacks {word}:\n{text}");
    }
}

#[test]
fn bad_config_is_a_clean_error_naming_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "cache_ttl_secs = 5\nbogus_key = 1\n").expect("write");
    let out = agent()
        .arg("--config")
        .arg(&cfg)
        .arg("--socket")
        .arg(dir.path().join("s/agent.sock"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("tapis-agent: "), "{err}");
    assert!(err.contains("bogus_key"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unusable_socket_path_is_a_clean_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let long = dir.path().join("x".repeat(120)).join("agent.sock");
    let out = agent()
        .arg("--socket")
        .arg(&long)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(dir.path().join("none.toml"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limit is 107"), "{err}");
}
