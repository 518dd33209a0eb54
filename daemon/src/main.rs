//! `tapis-agent`: runs the agent in the foreground (systemd style).

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use tapis_agent::config::{Config, ConfigFile, DEFAULT_BASE_URL};
use tapis_agent::{listener, paths};
use tracing_subscriber::EnvFilter;

/// Per-user credential agent for Tapis v3.
///
/// Keeps your Tapis access token fresh and caches which systems you have
/// TMS credentials on, so that `tapis-cred establish stampede3` in a job
/// script answers in milliseconds. Runs in the foreground; stop it with
/// SIGTERM or Ctrl-C.
///
/// Example:
///   tapis-agent &                  # start for this login session
///   tapis-cred login               # once
///   tapis-cred establish stampede3 ls6
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// Socket to listen on [default: $XDG_RUNTIME_DIR/tapis-agent/agent.sock]
    #[arg(long, env = "TAPIS_AGENT_SOCK", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Config file [default: $XDG_CONFIG_HOME/tapis-agent/config.toml]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Tapis base URL (overrides the config file)
    #[arg(long, env = "TAPIS_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// State directory (tokens, cache) [default: $XDG_STATE_HOME/tapis-agent]
    #[arg(long, env = "TAPIS_AGENT_STATE_DIR", value_name = "PATH")]
    state_dir: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_tracing(args.verbose);
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapis-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

fn build_config(args: &Args) -> anyhow::Result<Config> {
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(paths::default_state_dir);
    let mut config = Config::new(DEFAULT_BASE_URL, state_dir);
    let file = args
        .config
        .clone()
        .unwrap_or_else(paths::default_config_file);
    ConfigFile::load(&file)?.apply(&mut config, &file, &paths::home())?;
    if let Some(url) = &args.base_url {
        config.base_url = url.trim_end_matches('/').to_owned();
    }
    Ok(config)
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = build_config(&args)?;
    let socket = args.socket.clone().unwrap_or_else(paths::default_socket);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async {
        let listener = listener::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        tracing::info!(socket = %socket.display(), "listening");
        tapis_agent::run(listener, config, shutdown_signal()).await?;
        Ok(())
    })
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
