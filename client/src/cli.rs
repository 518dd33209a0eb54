//! Command-line definitions. Behaviour lives elsewhere; this file only says
//! what can be typed and documents it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Help heading of the options every subcommand accepts.
const GLOBAL: &str = "Global options";

/// Default read timeout for the agent's answers, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// Longest accepted `--timeout`, in seconds (a day).
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Default of `token --min-valid`, in seconds.
pub const DEFAULT_MIN_VALID_SECS: u64 = 60;

/// The commands a new user needs, listed first in the help.
const START_HERE: [&str; 4] = ["login", "establish", "token", "status"];

/// The command line as `tapis-cred` parses it and shows its help: commands
/// grouped (start here, then the rest), and the global options shown once,
/// in the top-level help and page, not again under every command.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let groups = command_groups(&cmd);
    // A command's own (hidden) copy of each global option: clap then does
    // not add a visible one, and parses exactly as before.
    cmd.mut_subcommands(|sub| {
        let sub = globals
            .iter()
            .fold(sub, |sub, global| sub.arg(global.clone().hide(true)));
        let after = sub
            .get_after_help()
            .map(|h| format!("{h}\n\n"))
            .unwrap_or_default();
        sub.after_help(format!(
            "{after}Global options (--json, -q, -v, --timeout, ...): tapis-cred --help"
        ))
    })
    .help_template(format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}\n\
         Options:\n{{options}}{{after-help}}"
    ))
}

/// "Start here" and "More commands", each command with its one-line about,
/// aligned; from the definitions, so the list cannot miss a command.
fn command_groups(cmd: &clap::Command) -> String {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let width = subs.iter().map(|s| s.get_name().len()).max().unwrap_or(0);
    let line = |s: &&clap::Command| {
        let about = s.get_about().map(ToString::to_string).unwrap_or_default();
        // Braces would be read as template placeholders.
        let about = about.replace('{', "(").replace('}', ")");
        format!("  {:width$}  {about}\n", s.get_name())
    };
    let (start, more): (Vec<_>, Vec<_>) = subs
        .iter()
        .partition(|s| START_HERE.contains(&s.get_name()));
    let mut start = start;
    start.sort_by_key(|s: &&clap::Command| START_HERE.iter().position(|n| *n == s.get_name()));
    let mut text = String::from("Start here:\n");
    text.extend(start.iter().map(&line));
    text.push_str("\nMore commands:\n");
    text.extend(more.iter().map(line));
    text
}

/// Talk to tapis-agent: keep Tapis credentials and tokens at hand.
#[derive(Debug, Parser)]
#[command(
    name = "tapis-cred",
    version,
    about = "Establish or revoke Tapis TMS credentials and hand out tokens, via tapis-agent",
    long_about = None,
    after_help = "Exit codes: 0 ok, 1 other error, 2 usage, 3 not logged in, \
        4 system not found, 5 permission denied, 6 system does not use TMS_KEYS, \
        7 agent not reachable, 8 Tapis unreachable, 9 agent busy, 10 wrong password.\n\n\
        Example:\n  tapis-cred establish stampede3 ls6 && sbatch job.sh",
    arg_required_else_help = true
)]
pub struct Cli {
    /// Options accepted before or after the subcommand.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted anywhere on the command line.
#[derive(Debug, Args)]
pub struct Global {
    /// Print exactly one JSON document on stdout, also for errors
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Agent socket [env: TAPIS_AGENT_SOCK]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub socket: Option<PathBuf>,

    /// Use the agent's [profiles.NAME] (another tenant) [env: TAPIS_PROFILE]
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    pub profile: Option<String>,

    /// Print diagnostics on stderr
    #[arg(short, long, global = true, conflicts_with = "quiet", help_heading = GLOBAL)]
    pub verbose: bool,

    /// Print nothing on success except requested data (token, status)
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,

    /// Seconds to wait for the agent's answer
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        help_heading = GLOBAL,
        default_value_t = DEFAULT_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    pub timeout: u64,

    /// Run without an agent: a private one lives for this command only
    #[arg(long, global = true, conflicts_with = "socket", help_heading = GLOBAL)]
    pub direct: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make sure TMS credentials exist on each system (create them if needed)
    #[command(after_help = "Example:\n  tapis-cred establish stampede3 ls6\n  \
        stampede3: present (cached)\n  ls6: created")]
    Establish(Refreshable),

    /// Remove TMS credentials from each system (idempotent)
    #[command(after_help = "Example:\n  tapis-cred revoke ls6\n  ls6: revoked")]
    Revoke(Targets),

    /// Report each system's credential state without changing anything
    #[command(after_help = "Example:\n  tapis-cred check --fresh stampede3\n  \
        stampede3: present")]
    Check(Refreshable),

    /// Print a valid access token (only the token, on stdout)
    #[command(after_help = "Example:\n  \
        curl -H \"X-Tapis-Token: $(tapis-cred token --min-valid 600)\" \\\n    \
        https://designsafe.tapis.io/v3/systems")]
    Token(TokenArgs),

    /// Log in to Tapis through the agent
    #[command(
        after_help = "The agent uses the password once to obtain a refreshable token \
            and forgets it. There is deliberately no TAPIS_PASSWORD variable: environment \
            variables are inherited by every child process, are readable in /proc by the \
            same user's processes and end up in job logs and crash reports.\n\n\
            Examples:\n  tapis-cred login --username jdoe\n  \
            pass show tapis | tapis-cred login --username jdoe --password-stdin\n  \
            tapis-cred login --import-token-file      # adopt ~/.tapis_tokens.json\n  \
            tapis-cred login --device                 # approve in a browser"
    )]
    Login(LoginArgs),

    /// Forget the login (revoke and delete tokens, clear the cache)
    #[command(after_help = "Example:\n  tapis-cred logout")]
    Logout(LogoutArgs),

    /// Show the agent, the login, the token's expiry and cached systems
    #[command(after_help = "Example:\n  tapis-cred status --json | jq .login.expires_at")]
    Status,

    /// Write the token to an OpsUtils-style ~/.tapis_tokens.json
    #[command(after_help = "Example:\n  tapis-cred export-token-file\n  \
        wrote /home/jdoe/.tapis_tokens.json (valid until 2026-11-23 18:00 UTC)")]
    ExportTokenFile(ExportArgs),

    /// Check the setup step by step and say how to fix what is wrong
    #[command(
        after_help = "Checks, in order: config file, socket directory, agent and \
        protocol version, login and token expiry, Tapis reachable (and how fast), state \
        directory, systemd units (when systemd runs), exported token file.\n\n\
        Examples:\n  tapis-cred doctor\n  tapis-cred doctor --json | jq '.checks[] | select(.status == \"fail\")'"
    )]
    Doctor,

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "Examples:\n  \
        tapis-cred completions bash > ~/.local/share/bash-completion/completions/tapis-cred\n  \
        tapis-cred completions zsh > \"${fpath[1]}/_tapis-cred\"\n  \
        tapis-cred completions fish > ~/.config/fish/completions/tapis-cred.fish")]
    Completions(CompletionsArgs),

    /// Print the man page, or write one page per subcommand into DIR
    #[command(after_help = "Examples:\n  tapis-cred man | man -l -\n  \
        tapis-cred man ~/.local/share/man/man1 && man tapis-cred-establish")]
    Man(ManArgs),
}

impl Command {
    /// The subcommand's name as typed, used in messages and `--json`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Establish(_) => "establish",
            Command::Revoke(_) => "revoke",
            Command::Check(_) => "check",
            Command::Token(_) => "token",
            Command::Login(_) => "login",
            Command::Logout(_) => "logout",
            Command::Status => "status",
            Command::ExportTokenFile(_) => "export-token-file",
            Command::Doctor => "doctor",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }
}

/// Systems and the user to act for.
#[derive(Debug, Args)]
pub struct Targets {
    /// Tapis system ids, e.g. stampede3 ls6
    #[arg(value_name = "SYSTEM", required = true, num_args = 1..)]
    pub systems: Vec<String>,

    /// Tapis user [default: the user the token belongs to]
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
}

/// [`Targets`] plus the choice to bypass the agent's cache.
#[derive(Debug, Args)]
pub struct Refreshable {
    /// Systems and user.
    #[command(flatten)]
    pub targets: Targets,

    /// Ask Tapis even if the agent has a recent answer cached
    #[arg(long)]
    pub fresh: bool,
}

/// Options of `token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Minimum remaining lifetime of the token, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_MIN_VALID_SECS)]
    pub min_valid: u64,
}

/// Options of `login`: at most one credential source.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Tapis username [default: the agent's configured username, else asked]
    #[arg(long, value_name = "U", conflicts_with_all = ["import_token_file", "device"])]
    pub username: Option<String>,

    /// Read the password from the first line of stdin
    #[arg(long, group = "source")]
    pub password_stdin: bool,

    /// Read the password from a file only you can read (mode 0600)
    #[arg(long, value_name = "PATH", group = "source")]
    pub password_file: Option<PathBuf>,

    /// Adopt the token in an OpsUtils token file [default: ~/.tapis_tokens.json]
    #[arg(long, value_name = "PATH", num_args = 0..=1, group = "source")]
    pub import_token_file: Option<Option<PathBuf>>,

    /// Log in in a browser with a device code
    #[arg(long, group = "source")]
    pub device: bool,
}

/// Options of `logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Also delete the agent's registered OAuth client
    #[arg(long)]
    pub forget_client: bool,
}

/// Options of `export-token-file`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Destination [default: the agent's configured path, else ~/.tapis_tokens.json]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// Options of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to complete for
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Options of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write tapis-cred.1 and tapis-cred-SUBCOMMAND.1 into
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    /// `--help`'s "Exit codes:" line names every code of
    /// [`tapis_agent_proto::ErrorKind::exit_code`], in order, and no other.
    #[test]
    fn help_lists_the_exit_codes_error_kind_defines() {
        let help = Cli::command().render_help().to_string();
        let line = help
            .split_once("Exit codes:")
            .expect("help has the exit codes")
            .1;
        let line = &line[..line.find('.').expect("the list ends with a period")];
        let codes: Vec<u8> = line
            .split(',')
            .map(|item| {
                let digits: String = item
                    .trim()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().expect("each item starts with its code")
            })
            .collect();
        let mut ours: Vec<u8> = tapis_agent_proto::ErrorKind::ALL
            .iter()
            .map(|k| k.exit_code())
            .collect();
        ours.insert(0, 0);
        assert_eq!(codes, ours);
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        use clap::FromArgMatches;
        let matches = command()
            .try_get_matches_from(std::iter::once("tapis-cred").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&matches)
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    #[test]
    fn globals_go_before_or_after_the_subcommand() {
        let before = parse(&["--json", "--socket", "/s", "-q", "token"]).unwrap();
        let after = parse(&["token", "--json", "--socket", "/s", "-q"]).unwrap();
        for cli in [before, after] {
            assert!(cli.global.json && cli.global.quiet);
            assert_eq!(
                cli.global.socket.as_deref(),
                Some(std::path::Path::new("/s"))
            );
            assert_eq!(cli.global.timeout, DEFAULT_TIMEOUT_SECS);
        }
    }

    #[test]
    fn establish_takes_systems_user_and_fresh() {
        let cli = parse(&["establish", "a", "b", "--user", "u", "--fresh"]).unwrap();
        let Command::Establish(r) = cli.command else {
            panic!("not establish")
        };
        assert_eq!(r.targets.systems, ["a", "b"]);
        assert_eq!(r.targets.user.as_deref(), Some("u"));
        assert!(r.fresh);
    }

    #[test]
    fn usage_errors() {
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        assert_eq!(kind(&["establish"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            kind(&["revoke", "a", "--fresh"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(kind(&["token", "-v", "-q"]), ErrorKind::ArgumentConflict);
        assert_eq!(
            kind(&["status", "--timeout", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["login", "--password-stdin", "--device"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["login", "--device", "--username", "u"]),
            ErrorKind::ArgumentConflict
        );
        assert!(parse(&["status", "--json"]).is_ok());
    }

    #[test]
    fn import_token_file_path_is_optional() {
        let login = |args: &[&str]| match parse(args).unwrap().command {
            Command::Login(l) => l,
            other => panic!("{other:?}"),
        };
        assert_eq!(login(&["login"]).import_token_file, None);
        assert_eq!(
            login(&["login", "--import-token-file"]).import_token_file,
            Some(None)
        );
        assert_eq!(
            login(&["login", "--import-token-file", "/t.json"]).import_token_file,
            Some(Some(PathBuf::from("/t.json")))
        );
    }

    #[test]
    fn top_level_help_fits_a_screen() {
        let help = |flag| parse(&[flag]).unwrap_err().render().to_string();
        let short = help("-h");
        assert!(short.lines().count() <= 40, "{short}");
        assert_eq!(short, help("--help"), "--help stays as compact as -h");
    }
}
