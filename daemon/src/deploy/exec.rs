//! `tapis-agent exec -- COMMAND...`: one command with an agent for its whole
//! life, like `k5start -- command`.
//!
//! An agent that already answers is shared; otherwise a private agent runs
//! in this process on a fresh socket. The command gets `TAPIS_AGENT_SOCK`
//! (and `TAPIS_TOKEN_FILE` from a private agent), receives the signals sent
//! to `exec`, and its exit status becomes `exec`'s.

use super::ask::{answers, ask};
use super::private::PrivateAgent;
use crate::config::effective::Effective;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tapis_agent_proto::{ErrorKind, Request, Response};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// `exec` itself failed: no agent could be had (as `env` and `nohup` use 125).
pub const EXIT_FAILED: u8 = 125;
/// The command exists but could not be run.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: u8 = 127;
/// Not logged in, as `tapis-cred` reports it.
const EXIT_LOGIN_REQUIRED: u8 = 3;

/// Longest wait for the login check; a slow Tapis only costs a warning.
const CHECK_LIMIT: Duration = Duration::from_secs(30);

/// Help text after the options.
pub const AFTER_HELP: &str = "\
If an agent answers on --socket ($TAPIS_AGENT_SOCK, else the default path), \
COMMAND uses it. Otherwise a private agent runs for the life of COMMAND on a \
fresh socket, with the stored login (log in once with `tapis-cred login`); \
COMMAND also gets TAPIS_TOKEN_FILE, a token file the private agent keeps fresh. \
Any number of agents, on any number of nodes sharing the home directory, may \
use one state directory: they take turns refreshing the token and share the \
credential cache, so every job keeps a valid token for its whole life.

SIGHUP, SIGINT, SIGTERM and SIGQUIT are passed on to COMMAND. The exit status \
is COMMAND's (128+N when signal N killed it); 125: no agent could be started, \
126: COMMAND cannot run, 127: COMMAND not found. Nothing is ever prompted for.

Examples:
  tapis-agent exec -- ./job.sh
  tapis-agent exec -- sh -c 'tapis-cred establish stampede3 && ./transfer.sh'";

/// Options of `exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Always start a private agent on the state directory, even if an agent
    /// answers
    #[arg(long)]
    pub private: bool,

    /// No warnings on stderr (such as a missing login)
    #[arg(short, long)]
    pub quiet: bool,

    /// The command to run, and its arguments
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// Runs `exec` to completion and returns the exit code.
pub fn run(args: ExecArgs, effective: Effective) -> u8 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let code = rt.block_on(exec(args, effective));
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn exec(args: ExecArgs, effective: Effective) -> u8 {
    // Before anything else: a signal from now on reaches the command (or
    // ends the wait for it) instead of killing exec with its agent.
    let mut signals = match Forwarded::install() {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot install signal handlers: {e}")),
    };
    let shared = !args.private && answers(&effective.socket).await;
    let private = if shared {
        tracing::debug!(socket = %effective.socket.display(), "using the running agent");
        None
    } else {
        match PrivateAgent::start(effective.config).await {
            Ok(agent) => Some(agent),
            Err(e) => return fail(&format!("cannot start a private agent: {e}")),
        }
    };
    let socket = private
        .as_ref()
        .map_or(effective.socket.as_path(), PrivateAgent::socket)
        .to_path_buf();
    let token_file = check_login(&socket, private.as_ref(), args.quiet).await;
    let code = run_command(&args.command, &socket, token_file.as_deref(), &mut signals).await;
    if let Some(agent) = private {
        agent.stop().await;
    }
    code
}

/// Warns when the agent has no usable login: every `tapis-cred` call of the
/// command would then exit 3. The command runs anyway; it may not need
/// Tapis, or may be `tapis-cred login` itself. A private agent is asked to
/// write its token file, which doubles as the check.
async fn check_login(
    socket: &Path,
    private: Option<&PrivateAgent>,
    quiet: bool,
) -> Option<PathBuf> {
    let request = match private {
        Some(agent) => Request::ExportTokenFile {
            path: Some(agent.token_file().to_string_lossy().into_owned()),
        },
        None => Request::Token { min_valid_secs: 60 },
    };
    let warn = |what: &str| {
        if !quiet {
            eprintln!("tapis-agent exec: warning: {what}");
        }
    };
    match ask(socket, &request, CHECK_LIMIT).await {
        Ok(Response::Exported { path, .. }) => Some(PathBuf::from(path)),
        Ok(Response::Token(_)) => None,
        Ok(Response::Error(e)) if e.kind == ErrorKind::LoginRequired => {
            warn(&format!(
                "not logged in ({}); tapis-cred will exit {EXIT_LOGIN_REQUIRED}. \
                 Log in once with: tapis-cred login",
                e.message
            ));
            None
        }
        Ok(Response::Error(e)) => {
            warn(&format!("the agent cannot get a token now: {}", e.message));
            None
        }
        Ok(_) => None,
        Err(e) => {
            warn(&format!(
                "the agent at {} did not answer: {e}",
                socket.display()
            ));
            None
        }
    }
}

async fn run_command(
    command: &[OsString],
    socket: &Path,
    token_file: Option<&Path>,
    signals: &mut Forwarded,
) -> u8 {
    let Some((program, rest)) = command.split_first() else {
        return fail("no command given");
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest).env("TAPIS_AGENT_SOCK", socket);
    give_back_core_limit(&mut cmd);
    if let Some(path) = token_file {
        cmd.env("TAPIS_TOKEN_FILE", path);
    }
    let name = Path::new(program).display();
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("tapis-agent exec: {name}: command not found");
            return EXIT_NOT_FOUND;
        }
        Err(e) => {
            eprintln!("tapis-agent exec: cannot run {name}: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    loop {
        let signal = tokio::select! {
            status = child.wait() => return match status {
                Ok(status) => exit_code(status),
                Err(e) => fail(&format!("cannot wait for {name}: {e}")),
            },
            signal = signals.recv() => signal,
        };
        // `id` is None once the child has been reaped, so the pid cannot
        // have been reused by another process.
        if let Some(pid) = child.id() {
            tracing::debug!(pid, signal, "passing the signal on");
            if let Err(e) = send_signal(pid, signal) {
                tracing::warn!(pid, signal, error = %e, "cannot pass the signal on");
            }
        }
    }
}

/// The shell's convention: the exit code, or 128+N for death by signal N.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(EXIT_FAILED),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(EXIT_FAILED),
        (None, None) => EXIT_FAILED,
    }
}

/// The signals passed on to the command.
struct Forwarded {
    streams: Vec<(libc::c_int, Signal)>,
}

impl Forwarded {
    fn install() -> std::io::Result<Self> {
        let kinds = [
            (libc::SIGHUP, SignalKind::hangup()),
            (libc::SIGINT, SignalKind::interrupt()),
            (libc::SIGTERM, SignalKind::terminate()),
            (libc::SIGQUIT, SignalKind::quit()),
        ];
        let streams = kinds
            .into_iter()
            .map(|(number, kind)| signal(kind).map(|s| (number, s)))
            .collect::<std::io::Result<_>>()?;
        Ok(Self { streams })
    }

    /// The next signal received, by number.
    async fn recv(&mut self) -> libc::c_int {
        std::future::poll_fn(|cx| {
            for (number, stream) in &mut self.streams {
                if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                    return std::task::Poll::Ready(*number);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// The command gets the core size limit `exec` started with (this process
/// set its own to 0: see [`crate::nodump`]).
#[allow(unsafe_code)]
fn give_back_core_limit(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs between fork and exec in the child; it only
    // reads a value set before any thread started and calls setrlimit,
    // which is async-signal-safe; it neither allocates nor takes a lock.
    unsafe {
        cmd.pre_exec(crate::nodump::restore_for_child);
    }
}

#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn fail(what: &str) -> u8 {
    eprintln!("tapis-agent exec: {what}");
    EXIT_FAILED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        use std::process::ExitStatus;
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(42 << 8)), 42);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }
}
