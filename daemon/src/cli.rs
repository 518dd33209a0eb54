//! The `tapis-agent` program: runs the agent in the foreground (systemd
//! style), or one of its subcommands. A library function so that other
//! packages (the Python wheel) can ship the same program.

use crate::config::effective::Effective;
use crate::config::layers::{self, Flags};
use crate::deploy::Deploy;
use crate::systemd;
use crate::tools::Tool;
use anyhow::Context as _;
use clap::{CommandFactory, Parser};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// Threads for blocking work (the state directory's lock attempts, name
/// lookups). Tokio's default, 512, let a burst of establishes for many
/// systems start hundreds of threads, each attempt a few file operations:
/// their stacks and malloc arenas held several MiB for seconds after the
/// burst, and they outnumbered two cores anyway.
const BLOCKING_THREADS: usize = 16;

/// Per-user credential agent for Tapis v3.
///
/// Keeps your Tapis access token fresh and caches which systems you have
/// TMS credentials on, so that `tapis-cred establish stampede3` in a job
/// script answers in milliseconds. Runs in the foreground; stop it with
/// SIGTERM or Ctrl-C.
///
/// You need not start it: tapis-cred starts an agent when none is running.
///
/// Example:
///   tapis-cred login               # once (starts the agent)
///   tapis-cred establish stampede3 ls6
///   tapis-agent config show        # effective settings and their sources
///   tapis-agent install-units      # start at login (systemd socket activation)
///   tapis-agent exec -- ./job.sh   # a batch job with its own agent
///
/// Settings: flag > environment > config file > default.
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// Socket to listen on [env: TAPIS_AGENT_SOCK] [default: $XDG_RUNTIME_DIR/tapis-agent/agent.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Config file [default: $XDG_CONFIG_HOME/tapis-agent/config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Tapis base URL [env: TAPIS_BASE_URL] [default: https://designsafe.tapis.io]
    #[arg(long, global = true, value_name = "URL")]
    base_url: Option<String>,
    /// State directory (tokens, cache) [env: TAPIS_AGENT_STATE_DIR] [default: $XDG_STATE_HOME/tapis-agent]
    #[arg(long, global = true, value_name = "PATH")]
    state_dir: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace); beats RUST_LOG and log_level
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Without a subcommand the agent runs.
    #[command(subcommand)]
    command: Option<Command>,
}

/// The subcommands, grouped by the module that implements them.
#[derive(Debug, clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Tool(Tool),
    #[command(flatten)]
    Deploy(Deploy),
}

impl Args {
    fn flags(&self) -> Flags {
        Flags {
            config: self.config.clone(),
            base_url: self.base_url.clone(),
            state_dir: self.state_dir.clone(),
            socket: self.socket.clone(),
            verbose: self.verbose,
        }
    }
}

/// The whole program: what `tapis-agent`'s `main` runs.
pub fn main() -> std::process::ExitCode {
    let mut args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return parse_failure(e),
    };
    // Before any secret is read (the client key file, the stored tokens):
    // the agent and exec's private agent write no core file.
    if matches!(args.command, None | Some(Command::Deploy(Deploy::Exec(_)))) {
        crate::nodump::forbid();
    }
    match args.command.take() {
        Some(Command::Tool(tool)) => return tool.run(Args::command(), &args.flags()),
        Some(Command::Deploy(deploy)) => return deploy.run(&args.flags(), init_tracing),
        None => {}
    }
    match layers::resolve(&args.flags(), |v| std::env::var(v).ok())
        .map_err(anyhow::Error::from)
        .and_then(|effective| {
            init_tracing(&effective.log_level);
            crate::nodump::log_problems();
            run(effective)
        }) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapis-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The commands of `tapis-cred`, which people type to `tapis-agent` after
/// installing "tapis-agent" (checked against `tapis-cred` by the tests).
pub const CRED_COMMANDS: [&str; 9] = [
    "login",
    "establish",
    "token",
    "status",
    "check",
    "revoke",
    "logout",
    "doctor",
    "export-token-file",
];

/// Clap's message, except for an unknown subcommand: one of `tapis-cred`'s
/// is pointed there, and the suggestions for a typo come closest first (clap
/// ranks by Jaro similarity, which put `status` before `establish` for
/// `estabish`).
fn parse_failure(mut e: clap::Error) -> std::process::ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::InvalidSubcommand
        && let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand)
    {
        let typed = typed.clone();
        let cmd = Args::command();
        let own = cmd.get_subcommands().map(clap::Command::get_name);
        let ranked = tapis_agent_proto::suggest::closest(&typed, own.chain(CRED_COMMANDS));
        let cred = |name: &str| CRED_COMMANDS.contains(&name);
        let meant = if cred(&typed) {
            Some(typed.as_str())
        } else {
            ranked.first().copied().filter(|n| cred(n))
        };
        if let Some(name) = meant {
            eprintln!(
                "tapis-agent: unknown command `{typed}`; that is `tapis-cred {name}`\n  \
                 hint: tapis-cred starts the agent when none is running; \
                 tapis-cred --help lists its commands"
            );
            return std::process::ExitCode::from(2);
        }
        // Nothing close by our measure: clap's own suggestions, if any, stay.
        if !ranked.is_empty() {
            let ranked = ranked.into_iter().map(str::to_owned).collect();
            e.insert(
                ContextKind::SuggestedSubcommand,
                ContextValue::Strings(ranked),
            );
        }
    }
    // Printing fails only when the stream is gone: nothing left to say.
    let _ = e.print();
    std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// `level` was validated by [`layers::resolve`].
fn init_tracing(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

fn run(effective: Effective) -> anyhow::Result<()> {
    let Effective {
        config,
        socket,
        profiles,
        ..
    } = effective;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    // The agent runs as a task on the workers, not on this thread: a new
    // connection is then accepted by the worker the socket woke and its task
    // starts there at once, instead of waking this thread and then a worker
    // (three thread wake-ups in a row before a hello was read).
    let main = rt.spawn(async move {
        let (listener, place) = systemd::listen_or_bind(&socket)?;
        tracing::info!(socket = %place, "listening");
        // `exec`s killed beside this socket left their directories (and
        // perhaps a live token file).
        if let Some(dir) = socket.parent() {
            crate::deploy::remove_stale_exec_dirs(dir);
        }
        let profiles = crate::multi::Profiles::start(profiles)?;
        let status = format!("serving on {place}");
        tokio::spawn(systemd::watchdog());
        let shutdown = async {
            shutdown_signal().await;
            systemd::notify_stopping();
        };
        crate::server::run_with_ready(listener, config, shutdown, || {
            systemd::notify_ready(&status);
        })
        .await?;
        profiles.stop().await?;
        anyhow::Ok(())
    });
    rt.block_on(main)
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the agent stopped unexpectedly: {e}")))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the agent with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
