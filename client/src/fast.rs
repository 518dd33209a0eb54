//! The hot command lines, parsed without clap.
//!
//! Batch scripts and notebooks run `tapis-cred establish SYSTEM…`,
//! `tapis-cred check SYSTEM…` and `tapis-cred token` over and over; the
//! command itself is a single round trip to the agent. Building clap's whole
//! command tree (every subcommand, argument and help text) cost about a
//! third of such a run. So the plain forms of those three commands are read
//! here, into the same [`Cli`] clap would produce, and everything else (help,
//! errors, other commands, anything unusual) goes to clap as before.
//!
//! The rule is one-sided: [`parse`] returns `Some` only for a command line
//! clap accepts with exactly that meaning, and `None` whenever in doubt. The
//! tests check it against clap on every combination of a set of tricky
//! arguments.

use crate::cli::{
    Cli, Command, DEFAULT_MIN_VALID_SECS, DEFAULT_TIMEOUT_SECS, Global, MAX_TIMEOUT_SECS,
    Refreshable, Targets, TokenArgs,
};
use std::ffi::OsString;
use std::path::PathBuf;

/// Which hot subcommand is being read.
#[derive(Clone, Copy, PartialEq)]
enum Sub {
    Establish,
    Check,
    Token,
}

/// The command line (without the program name) as clap would read it, if it
/// is a plain `establish`, `check` or `token`; `None` sends it to clap.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Option<Cli> {
    let args: Vec<String> = args
        .into_iter()
        .map(OsString::into_string)
        .collect::<Result<_, _>>()
        .ok()?;
    let mut global = Global {
        json: false,
        socket: None,
        profile: None,
        verbose: false,
        quiet: false,
        timeout: DEFAULT_TIMEOUT_SECS,
        direct: false,
    };
    let mut timeout_set = false;
    let mut sub = None;
    let mut systems = Vec::new();
    let mut user = None;
    let mut fresh = false;
    let mut min_valid = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // `--name=value` or `--name value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).filter(|v| plain(v));
        match name.as_str() {
            "--json" => set(&mut global.json, inline.is_none())?,
            "-q" | "--quiet" => set(&mut global.quiet, inline.is_none())?,
            "-v" | "--verbose" => set(&mut global.verbose, inline.is_none())?,
            "--socket" => once(&mut global.socket, value().map(PathBuf::from))?,
            "--profile" => once(&mut global.profile, value())?,
            "--timeout" => {
                if std::mem::replace(&mut timeout_set, true) {
                    return None;
                }
                global.timeout = number(value()?).filter(|t| (1..=MAX_TIMEOUT_SECS).contains(t))?;
            }
            "--user" if matches!(sub, Some(Sub::Establish | Sub::Check)) => {
                once(&mut user, value())?;
            }
            "--fresh" if matches!(sub, Some(Sub::Establish | Sub::Check)) => {
                set(&mut fresh, inline.is_none())?;
            }
            "--min-valid" if sub == Some(Sub::Token) => {
                once(&mut min_valid, value().and_then(number))?;
            }
            _ if !plain(&name) || inline.is_some() => return None,
            _ => match sub {
                None => {
                    sub = Some(match name.as_str() {
                        "establish" => Sub::Establish,
                        "check" => Sub::Check,
                        "token" => Sub::Token,
                        _ => return None,
                    });
                }
                Some(Sub::Establish | Sub::Check) => systems.push(name),
                Some(Sub::Token) => return None,
            },
        }
    }
    if global.quiet && global.verbose {
        return None;
    }
    let command = match sub? {
        Sub::Token => Command::Token(TokenArgs {
            min_valid: min_valid.unwrap_or(DEFAULT_MIN_VALID_SECS),
        }),
        Sub::Establish | Sub::Check if systems.is_empty() => return None,
        s => {
            let r = Refreshable {
                targets: Targets { systems, user },
                fresh,
            };
            if s == Sub::Establish {
                Command::Establish(r)
            } else {
                Command::Check(r)
            }
        }
    };
    Some(Cli { global, command })
}

/// An ordinary word: not empty, not an option. (Clap reads some values that
/// start with `-` differently; those lines go to clap.)
fn plain(arg: &str) -> bool {
    !arg.is_empty() && !arg.starts_with('-')
}

/// Sets a flag that was not given before and has no `=value`.
fn set(flag: &mut bool, bare: bool) -> Option<()> {
    (bare && !std::mem::replace(flag, true)).then_some(())
}

/// Sets a value that was not given before.
fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

/// Decimal digits only (clap accepts a few more spellings; those go to clap).
fn number(text: String) -> Option<u64> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn clap(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tapis-cred").chain(args.iter().copied()))
    }

    /// Fast-path result must be exactly clap's, whenever there is one.
    fn agrees(args: &[&str]) -> bool {
        match parse(os(args)) {
            None => true,
            Some(fast) => match clap(args) {
                Ok(slow) => format!("{fast:?}") == format!("{slow:?}"),
                Err(e) => panic!("fast path accepted {args:?}, clap refused: {e}"),
            },
        }
    }

    #[test]
    fn the_usual_lines_take_the_fast_path() {
        for args in [
            &["establish", "stampede3", "ls6", "frontera"][..],
            &["establish", "--fresh", "ls6", "--user", "u"],
            &["--json", "check", "stampede3", "--fresh"],
            &["token"],
            &["token", "--min-valid", "600"],
            &["token", "--min-valid=600", "-q"],
            &["--socket", "/run/a.sock", "--timeout=5", "token"],
            &["--profile", "tacc", "establish", "ls6", "--json", "-v"],
        ] {
            let fast = parse(os(args)).unwrap_or_else(|| panic!("{args:?} went to clap"));
            assert_eq!(format!("{fast:?}"), format!("{:?}", clap(args).unwrap()));
        }
    }

    #[test]
    fn anything_unusual_goes_to_clap() {
        for args in [
            &[][..],
            &["establish"],
            &["token", "x"],
            &["revoke", "ls6"],
            &["status"],
            &["establish", "-h"],
            &["--help"],
            &["--version"],
            &["token", "-qv"],
            &["token", "-q", "-v"],
            &["--json", "--json", "token"],
            &["token", "--min-valid", "+5"],
            &["token", "--min-valid", "-1"],
            &["token", "--timeout", "0"],
            &["token", "--timeout", "86401"],
            &["--fresh", "establish", "ls6"],
            &["token", "--user", "u"],
            &["establish", "ls6", "--", "x"],
            &["establish", "--user", "", "ls6"],
            &["establish", "--user=", "ls6"],
            &["--json=yes", "token"],
            &["--direct", "token"],
            &["establish", "--socket"],
        ] {
            assert!(parse(os(args)).is_none(), "{args:?} took the fast path");
        }
        let not_utf8 = {
            use std::os::unix::ffi::OsStringExt;
            OsString::from_vec(vec![0xff])
        };
        assert!(parse([OsString::from("establish"), not_utf8]).is_none());
    }

    /// Every line of up to four words from a vocabulary of awkward ones:
    /// the fast path either declines or agrees with clap.
    #[test]
    fn agrees_with_clap_on_every_short_line() {
        const WORDS: [&str; 24] = [
            "establish",
            "check",
            "token",
            "revoke",
            "ls6",
            "--json",
            "-q",
            "-v",
            "--socket",
            "--socket=/s",
            "--profile",
            "--timeout",
            "7",
            "0",
            "--user",
            "--user=u",
            "--fresh",
            "--min-valid",
            "--min-valid=9",
            "--",
            "-",
            "",
            "--direct",
            "--help",
        ];
        let mut fast = 0;
        let mut line = Vec::new();
        let mut lines = 0;
        fn each(
            depth: usize,
            line: &mut Vec<&'static str>,
            visit: &mut dyn FnMut(&[&'static str]),
        ) {
            visit(line);
            if depth == 0 {
                return;
            }
            for w in WORDS {
                line.push(w);
                each(depth - 1, line, visit);
                line.pop();
            }
        }
        each(4, &mut line, &mut |args| {
            lines += 1;
            assert!(agrees(args), "{args:?}");
            fast += usize::from(parse(os(args)).is_some());
        });
        assert_eq!(lines, 1 + 24 + 24 * 24 + 24 * 24 * 24 + 24 * 24 * 24 * 24);
        // The comparison means something only if many lines take the path.
        assert!(fast > 1000, "only {fast} lines took the fast path");
    }
}
