//! The `tapis-agent` subcommands that help the user instead of running the
//! agent: `config show`, `completions`, `man`. The binary flattens [`Tool`]
//! into its own subcommands.

use crate::config::layers::{self, Flags};
use crate::config::show;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tapis_agent_proto::generate;

/// Helper subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Tool {
    /// Inspect the configuration
    #[command(
        subcommand,
        after_help = "Example:\n  tapis-agent config show   # every setting, its value and its source"
    )]
    Config(ConfigCmd),

    /// Print a shell completion script
    #[command(after_help = "Examples:\n  \
        tapis-agent completions bash > ~/.local/share/bash-completion/completions/tapis-agent\n  \
        tapis-agent completions zsh > \"${fpath[1]}/_tapis-agent\"\n  \
        tapis-agent completions fish > ~/.config/fish/completions/tapis-agent.fish")]
    Completions {
        /// Shell to complete for
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },

    /// Print the man page, or write one page per subcommand into DIR
    #[command(after_help = "Examples:\n  tapis-agent man | man -l -\n  \
        tapis-agent man ~/.local/share/man/man1")]
    Man {
        /// Directory to write tapis-agent.1 and tapis-agent-SUBCOMMAND.1 into
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCmd {
    /// Print each setting, its effective value and where it came from
    /// (flag > environment > config file > default); secrets are redacted
    #[command(after_help = "Examples:\n  tapis-agent config show\n  \
        tapis-agent config show --profile tacc\n  \
        tapis-agent --base-url https://tacc.tapis.io config show --json | jq .values.base_url")]
    Show {
        /// One JSON document on stdout
        #[arg(long)]
        json: bool,
        /// Show this `[profiles.NAME]` instead of the default profile
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
}

impl Tool {
    /// Runs the tool. `cmd` is the binary's clap definition (for completions
    /// and man pages); `flags` are its global flags (for `config show`).
    pub fn run(self, cmd: clap::Command, flags: &Flags) -> ExitCode {
        let mut out = std::io::stdout().lock();
        let result = match self {
            Tool::Config(ConfigCmd::Show { json, profile }) => {
                let all = match layers::resolve(flags, |v| std::env::var(v).ok()) {
                    Ok(all) => all,
                    Err(e) => return fail(&e),
                };
                let Some(e) = all.select(profile.as_deref()) else {
                    let name = profile.unwrap_or_default();
                    return fail(&format!(
                        "no [profiles.{name}] in {}",
                        all.config_file.display()
                    ));
                };
                if json {
                    writeln!(out, "{}", show::json(e, &all))
                } else {
                    out.write_all(show::human(e, &all).as_bytes())
                }
            }
            Tool::Completions { shell } => {
                // Generated in memory: clap_complete panics on write errors.
                let mut script = Vec::new();
                generate::completions(cmd, shell, &mut script);
                out.write_all(&script)
            }
            Tool::Man { dir: None } => generate::man_page(cmd, &mut out),
            Tool::Man { dir: Some(dir) } => generate::man_pages_to(cmd, &dir).and_then(|files| {
                files
                    .iter()
                    .try_for_each(|f| writeln!(out, "wrote {}", f.display()))
            }),
        };
        match result.and_then(|()| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("tapis-agent: {e}");
    ExitCode::FAILURE
}
