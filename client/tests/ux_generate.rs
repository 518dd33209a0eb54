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
    }
}
