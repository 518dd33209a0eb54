//! Completions and man pages are generated without error and mention every
//! subcommand; every subcommand's help carries an example.

use std::process::Command;

const SUBCOMMANDS: &[&str] = &[
    "establish",
    "revoke",
    "check",
    "token",
    "login",
    "logout",
    "status",
    "export-token-file",
    "doctor",
    "completions",
    "man",
];

fn cred(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tapis-cred"))
        .args(args)
        .env_remove("TAPIS_AGENT_SOCK")
        .output()
        .expect("run tapis-cred");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_mention_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, err) = cred(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(err.is_empty(), "{shell}: {err}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let (code, _, err) = cred(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn man_page_lists_every_subcommand() {
    let (code, page, err) = cred(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH tapis-cred 1"),
        "{page}"
    );
    for sub in SUBCOMMANDS {
        let roff = sub.replace('-', "\\-");
        assert!(page.contains(&roff), "man page lacks {sub}");
    }
}

#[test]
fn man_dir_gets_one_page_per_subcommand() {
    let dir = tempfile::tempdir().expect("tmp");
    let (code, out, err) = cred(&["man", dir.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("tapis-cred.1").is_file(), "{out}");
    for sub in SUBCOMMANDS {
        let page = dir.path().join(format!("tapis-cred-{sub}.1"));
        assert!(page.is_file(), "{} missing; wrote:\n{out}", page.display());
    }
    // The global options are on the main page only.
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect("page");
    let option = |name: &str| format!("\\fB\\-\\-{name}\\fR");
    assert!(read("tapis-cred.1").contains(&option("timeout")));
    let establish = read("tapis-cred-establish.1");
    assert!(establish.contains(&option("fresh")), "{establish}");
    assert!(!establish.contains(&option("timeout")), "{establish}");
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in SUBCOMMANDS {
        let (code, help, err) = cred(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub}: {err}");
        assert!(
            help.contains("Example"),
            "{sub} --help has no example:\n{help}"
        );
        // Its own options only; the global ones are one pointer away.
        for global in [
            "--socket <PATH>",
            "--timeout <SECS>",
            "--direct",
            "--profile <NAME>",
        ] {
            assert!(
                !help.contains(global),
                "{sub} --help repeats {global}:\n{help}"
            );
        }
        assert!(
            help.trim_end()
                .ends_with("Global options (--json, -q, -v, --timeout, ...): tapis-cred --help"),
            "{sub}:\n{help}"
        );
        assert!(
            !help.contains("testuser"),
            "{sub}: the fake's user in an example:\n{help}"
        );
    }
}

#[test]
fn top_level_help_starts_with_the_commands_a_new_user_needs() {
    let (code, help, err) = cred(&["--help"]);
    assert_eq!(code, 0, "{err}");
    let groups: Vec<&str> = help
        .split("Start here:\n")
        .nth(1)
        .and_then(|rest| rest.split("\nOptions:").next())
        .unwrap_or_else(|| panic!("no groups:\n{help}"))
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .collect();
    assert_eq!(
        groups[..4],
        ["login", "establish", "token", "status"],
        "{help}"
    );
    assert!(help.contains("\nMore commands:\n"), "{help}");
    let mut listed = groups.clone();
    listed.sort_unstable();
    let mut all = SUBCOMMANDS.to_vec();
    all.sort_unstable();
    assert_eq!(listed, all, "every command listed once:\n{help}");
    // The global options, once, at the top.
    for global in [
        "--json",
        "--socket <PATH>",
        "--timeout <SECS>",
        "-q, --quiet",
    ] {
        assert_eq!(help.matches(global).count(), 1, "{global}:\n{help}");
    }
}
