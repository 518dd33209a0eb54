//! `tapis-cred`: the command-line client of tapis-agent, as a library so that
//! other packages (the Python wheel) can ship the same program.
//!
//! Parse, run, print, exit. Every failure ends here as
//! `tapis-cred: <what failed>: <cause>` (or a JSON document with `--json`)
//! and an exit code from [`exit`]; nothing panics on bad input.

mod autostart;
mod cli;
mod commands;
mod completions;
mod conn;
mod direct;
mod doctor;
mod exit;
mod login;
mod render;
mod socket;
mod spinner;
mod time;
mod ui;
mod validate;

use clap::FromArgMatches;
use std::ffi::OsString;
use std::process::ExitCode;
use ui::Ui;

/// The whole program: what `tapis-cred`'s `main` runs.
pub fn main() -> ExitCode {
    let cli = match cli::command()
        .try_get_matches()
        .and_then(|m| cli::Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(parse_failure(e, std::env::args_os().skip(1))),
    };
    let ui = Ui {
        json: cli.global.json,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
        color: !cli.global.json && ui::color_stdout(),
    };
    if cli.global.direct {
        return match direct::run() {
            Ok(code) => ExitCode::from(code),
            Err(failure) => {
                ExitCode::from(render::failure(ui, cli.command.name(), &failure).emit())
            }
        };
    }
    let rendered = commands::run(&cli, ui)
        .unwrap_or_else(|failure| render::failure(ui, cli.command.name(), &failure));
    ExitCode::from(rendered.emit())
}

/// Help, version and usage errors. Clap prints its own, except that a usage
/// error under `--json` becomes a JSON document like every other failure.
fn parse_failure(e: clap::Error, args: impl Iterator<Item = OsString>) -> u8 {
    use clap::error::ErrorKind as K;
    let e = closest_first(e);
    let args: Vec<OsString> = args.take_while(|a| a != "--").collect();
    let informational = matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !args.iter().any(|a| a == "--json") {
        // Printing fails only when the stream is gone: nothing left to say.
        let _ = e.print();
        return u8::try_from(e.exit_code()).unwrap_or(2);
    }
    // Clap's first paragraph, on one line: "the following required arguments
    // were not provided: <SYSTEM>...".
    let text = e.render().to_string();
    let message = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_start_matches("error: ");
    let command = cli::command();
    let name = args
        .iter()
        .find_map(|a| {
            command
                .get_subcommands()
                .map(clap::Command::get_name)
                .find(|n| a == n)
        })
        .unwrap_or("tapis-cred");
    let ui = Ui {
        json: true,
        ..Ui::default()
    };
    let mut failure = exit::usage(message);
    if let Some(clap::error::ContextValue::Strings(near)) =
        e.get(clap::error::ContextKind::SuggestedSubcommand)
        && let Some(first) = near.first()
    {
        failure = failure.with_hint(format!("did you mean {first}?"));
    }
    render::failure(ui, name, &failure).emit()
}

/// An unknown subcommand's suggestions, closest first (clap ranks by Jaro
/// similarity, which put `status` before `establish` for `estabish`).
fn closest_first(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::InvalidSubcommand {
        return e;
    }
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand) else {
        return e;
    };
    let command = cli::command();
    let ranked: Vec<String> = tapis_agent_proto::suggest::closest(
        typed,
        command.get_subcommands().map(clap::Command::get_name),
    )
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Nothing close by our measure: clap's own suggestions, if any, stay.
    if !ranked.is_empty() {
        e.insert(
            ContextKind::SuggestedSubcommand,
            ContextValue::Strings(ranked),
        );
    }
    e
}
