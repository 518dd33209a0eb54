//! `fake-tapis`: a stand-in Tapis v3 server for tests, benchmarks and demos.

use std::{io::Write, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use clap::{ArgAction, Parser};
use tapis_agent_tests::fake::{FakeConfig, FakeTapis};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// Serve a fake Tapis v3 (Authenticator, Tenants, Systems credentials, Files
/// upload) on loopback.
///
/// The first line on stdout is `listening on http://ADDR`; point clients at that
/// URL (tapis-agent `--base-url`, or tapipy `Tapis(base_url=...)`). Runs until
/// SIGTERM or SIGINT, then exits 0.
///
/// Fixture: tenant `designsafe`; systems stampede3, ls6, frontera and
/// designsafe.storage.default (TMS_KEYS) and corral.pki (PKI_KEYS); no
/// credentials stored.
#[derive(Debug, Parser)]
#[command(name = "fake-tapis", version, after_long_help = CONTROL_HELP)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Lifetime of access tokens in seconds (14400 = 4 hours; 3 works too).
    #[arg(long, value_name = "SECS", default_value_t = 4 * 3600)]
    token_ttl: u64,

    /// Lifetime of refresh tokens in seconds (31536000 = 1 year).
    #[arg(long, value_name = "SECS", default_value_t = 365 * 24 * 3600)]
    refresh_ttl: u64,

    /// A user who can log in with a password; repeat for more. Replaces the default
    /// testuser:testpass.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    users: Vec<(String, String)>,

    /// Add N more TMS_KEYS systems named sys0000, sys0001, ... (load tests).
    #[arg(long, value_name = "N", default_value_t = 0)]
    extra_tms_systems: usize,

    /// Refuse a refresh token once it has been used (stricter than Tapis, which
    /// keeps it valid until it expires).
    #[arg(long)]
    rotate_refresh_tokens: bool,

    /// Refuse revoked tokens as production's proxy does: 500 "Token is
    /// revoked." in front of every service (the services themselves never
    /// look revocations up).
    #[arg(long)]
    enforce_revocation: bool,

    /// Log to stderr: -v injected faults, -vv every request.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
}

const CONTROL_HELP: &str = "\
Control API (JSON bodies; not counted in the stats):
  GET    /_fake/stats        call counts per operationId:
         {\"calls\": {\"checkUserCredential\": 3}, \"rejected_token\": 0,
          \"expired_token\": 0}
  DELETE /_fake/stats        zero the counters
  POST   /_fake/faults       break the next calls of an operation:
         {\"operation\": \"checkUserCredential\", \"kind\": {\"status\": 503},
          \"times\": 2, \"system\": \"ls6\"}
  GET    /_fake/faults       pending faults;  DELETE clears them
  POST   /_fake/credentials  {\"user\": \"testuser\", \"system\": \"ls6\",
                              \"state\": \"present|rejected|conn_fail|incomplete|
                                        not_supported|absent\"}
  GET    /_fake/credentials  stored credentials
  POST   /_fake/device/approve  {\"user_code\": \"ABCD1234\", \"username\": \"testuser\"}
  POST   /_fake/revoke_refresh_tokens  invalidate every refresh token
  POST   /_fake/forbid       {\"user\": \"testuser\", \"system\": \"ls6\"}: the system is
                             unreadable (getSystem 403, credential calls 500
                             SYSAPI_CHECK_ERROR ... SYSLIB_UNAUTH)
  POST   /_fake/tokens       {\"username\": \"testuser\", \"ttl_secs\": 60}
                             -> {\"access_token\": \"...\"}
  POST   /_fake/reset        back to the start state

Fault kinds: {\"status\": N}, {\"status\": 429, \"retry_after\": SECS},
  {\"delay_ms\": MS}, {\"slow_drip_ms\": MS}, \"drop\" (close, no answer),
  \"reset_mid_body\", \"html_502\", \"truncated_json\", \"hang\" (never answer),
  \"slow_drip\" (one byte per 200 ms), \"non_json\". Operation \"*\" matches all.

Examples:
  fake-tapis --token-ttl 5 --user alice:secret --extra-tms-systems 1000
  curl -s localhost:PORT/_fake/stats
  curl -s -d '{\"operation\": \"create_token\", \"kind\": \"drop\"}' \\
       localhost:PORT/_fake/faults";

fn parse_user(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((name, password)) if !name.is_empty() => Ok((name.into(), password.into())),
        _ => Err("expected NAME:PASSWORD".into()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(format!("tapis_agent_tests={level},warn"))),
        )
        .with_writer(std::io::stderr)
        .init();

    let defaults = FakeConfig::default();
    let config = FakeConfig {
        token_ttl: Duration::from_secs(args.token_ttl),
        refresh_ttl: Duration::from_secs(args.refresh_ttl),
        users: if args.users.is_empty() {
            defaults.users.clone()
        } else {
            args.users
        },
        extra_tms_systems: args.extra_tms_systems,
        rotate_refresh_tokens: args.rotate_refresh_tokens,
        enforce_revocation: args.enforce_revocation,
        ..defaults
    };
    // Signal handlers go in before the readiness line, so a SIGTERM sent right after
    // reading it is handled gracefully.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let fake = FakeTapis::start_on(args.listen, config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", fake.base_url()).context("writing to stdout")?;
    stdout.flush().context("flushing stdout")?;
    drop(stdout);

    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    fake.shutdown().await;
    Ok(())
}
