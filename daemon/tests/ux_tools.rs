//! `tapis-agent config show`, `completions` and `man`, as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

const SUBCOMMANDS: &[&str] = &["config", "completions", "man"];

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapis-agent"));
    for var in [
        "TAPIS_BASE_URL",
        "TAPIS_TENANT",
        "TAPIS_USERNAME",
        "TAPIS_AGENT_STATE_DIR",
        "TAPIS_AGENT_SOCK",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, body: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, body).expect("write");
    path.display().to_string()
}

#[test]
fn config_show_reports_values_and_sources() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write_config(
        dir.path(),
        "tenant = \"tacc\"\nusername = \"jdoe\"\nretries = 1\nlog_level = \"warn\"\n",
    );
    let out = agent(
        &["--config", &cfg, "-v", "config", "show", "--json"],
        &[("TAPIS_USERNAME", "fromenv")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let v = &doc["values"];
    assert_eq!(v["base_url"]["value"], "https://tacc.tapis.io");
    assert_eq!(v["base_url"]["source"], "from tenant");
    assert_eq!(v["tenant"]["source"], "file, line 1");
    assert_eq!(v["username"]["value"], "fromenv");
    assert_eq!(v["username"]["source"], "env TAPIS_USERNAME");
    assert_eq!(v["retries"]["value"], 1);
    assert_eq!(v["log_level"]["value"], "debug");
    assert_eq!(v["log_level"]["source"], "flag -v");
    assert_eq!(v["cache_ttl_secs"]["source"], "default");
    assert_eq!(doc["config_file_found"], true);

    let human = agent(
        &[
            "config",
            "show",
            "--config",
            &cfg,
            "--base-url",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    let human = text(&human.stdout);
    assert!(
        human.contains("http://127.0.0.1:9") && human.contains("# flag --base-url"),
        "{human}"
    );
}

#[test]
fn config_errors_name_key_line_and_type() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write_config(dir.path(), "retries = 2\nhttp_timeout_secs = \"30s\"\n");
    let out = agent(&["--config", &cfg, "config", "show"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 2: `http_timeout_secs` must be a whole number of seconds"),
        "{err}"
    );
    let cfg = write_config(dir.path(), "\nbase_ulr = \"https://x\"\n");
    let err = text(&agent(&["--config", &cfg, "config", "show"], &[]).stderr);
    assert!(
        err.contains("line 2: unknown key `base_ulr` (did you mean `base_url`?)"),
        "{err}"
    );
}

#[test]
fn completions_and_man_mention_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = agent(&["completions", shell], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let page = text(&agent(&["man"], &[]).stdout);
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "man page lacks {sub}");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let out = agent(&["man", dir.path().to_str().expect("utf-8")], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "tapis-agent.1",
        "tapis-agent-config.1",
        "tapis-agent-config-show.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page} missing");
    }
}

#[test]
fn every_subcommand_help_has_an_example() {
    for args in [
        &["config", "show"][..],
        &["completions"],
        &["man"],
        &["config"],
    ] {
        let mut all = args.to_vec();
        all.push("--help");
        let help = text(&agent(&all, &[]).stdout);
        assert!(help.contains("Example"), "{args:?} --help:\n{help}");
    }
}
