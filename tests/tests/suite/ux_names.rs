//! Names as people type them: `tapis-cred`'s commands given to `tapis-agent`
//! point at `tapis-cred`, and a typo's suggestions come closest first.

use std::process::Command;
use tapis_agent::cli::CRED_COMMANDS;
use tapis_agent_tests::harness::bin_path;

fn run(program: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin_path(program))
        .args(args)
        .env_remove("TAPIS_AGENT_SOCK")
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tapis_cred_commands_given_to_tapis_agent_point_at_tapis_cred() {
    for name in [
        "login",
        "status",
        "token",
        "establish",
        "revoke",
        "check",
        "logout",
    ] {
        let (code, err) = run("tapis-agent", &[name, "stampede3"]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.starts_with(&format!(
                "tapis-agent: unknown command `{name}`; that is `tapis-cred {name}`\n"
            )),
            "{name}: {err}"
        );
    }
    let (code, err) = run("tapis-agent", &["estabish"]);
    assert_eq!(code, 2);
    assert!(err.contains("that is `tapis-cred establish`"), "{err}");
    // The agent's own commands are suggested as before.
    let (_, err) = run("tapis-agent", &["exce"]);
    assert!(err.contains("'exec'"), "{err}");
}

#[test]
fn the_list_of_tapis_cred_commands_is_tapis_creds() {
    let out = Command::new(bin_path("tapis-cred"))
        .arg("--help")
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for name in CRED_COMMANDS {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} "))),
            "tapis-cred has no command {name}:\n{help}"
        );
    }
}

#[test]
fn typos_suggest_the_closest_command_first() {
    for (typed, meant) in [
        ("estabish", "establish"),
        ("stauts", "status"),
        ("chekc", "check"),
    ] {
        let (code, err) = run("tapis-cred", &[typed]);
        assert_eq!(code, 2, "{err}");
        let tip = err
            .lines()
            .find(|l| l.contains("tip:"))
            .unwrap_or_else(|| panic!("no tip for {typed}: {err}"));
        let first = tip.split('\'').nth(1);
        assert_eq!(first, Some(meant), "{typed}: {tip}");
    }
}

#[test]
fn a_typo_under_json_carries_the_suggestion() {
    let out = Command::new(bin_path("tapis-cred"))
        .args(["--json", "estabish", "stampede3"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["error"]["hint"], "did you mean establish?", "{doc}");
}
