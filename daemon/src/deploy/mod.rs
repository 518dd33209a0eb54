//! The `tapis-agent` subcommands that deploy the agent: `exec` (give one
//! command an agent for its whole life) and `install-units` /
//! `uninstall-units` (systemd user units). The binary flattens [`Deploy`]
//! into its own subcommands.

mod ask;
pub mod exec;
mod private;
pub use private::remove_stale as remove_stale_exec_dirs;
pub mod units;

use crate::config::layers::{self, Flags};
use std::process::ExitCode;

/// Deployment subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Deploy {
    /// Run a command with an agent: the running one, else a private one
    #[command(after_help = exec::AFTER_HELP)]
    Exec(exec::ExecArgs),

    /// Write the systemd user units (socket-activated agent at login)
    #[command(after_help = "Example:\n  tapis-agent install-units\n  \
        systemctl --user enable --now tapis-agent.socket")]
    InstallUnits(units::UnitsArgs),

    /// Remove the systemd user units written by install-units
    #[command(after_help = "Example:\n  tapis-agent uninstall-units\n  \
        systemctl --user stop tapis-agent.socket tapis-agent.service")]
    UninstallUnits(units::UnitsArgs),
}

impl Deploy {
    /// Runs the subcommand with the binary's global `flags`. `init_tracing`
    /// sets up logging at the given filter (only `exec` logs).
    pub fn run(self, flags: &Flags, init_tracing: fn(&str)) -> ExitCode {
        let effective = match layers::resolve(flags, |v| std::env::var(v).ok()) {
            Ok(effective) => effective,
            Err(e) => {
                eprintln!("tapis-agent: {e}");
                return match self {
                    Deploy::Exec(_) => ExitCode::from(exec::EXIT_FAILED),
                    _ => ExitCode::FAILURE,
                };
            }
        };
        match self {
            Deploy::Exec(args) => {
                // A wrapper stays quiet: the command's own output matters,
                // the agent's routine log lines do not.
                let level = match effective.source("log_level") {
                    crate::config::effective::Source::Default => "warn",
                    _ => effective.log_level.as_str(),
                };
                init_tracing(level);
                crate::nodump::log_problems();
                ExitCode::from(exec::run(args, effective))
            }
            Deploy::InstallUnits(args) => units::install(&args, &effective),
            Deploy::UninstallUnits(args) => units::uninstall(&args),
        }
    }
}
