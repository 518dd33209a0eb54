//! `tapis-cred --direct ...`: the same command without a running agent.
//!
//! The agent's logic lives in `tapis-agent`, and this client stays small and
//! blocking, so `--direct` runs the command again under
//! `tapis-agent exec --private`: a private agent in that process, on a
//! socket nobody else sees, for the life of this one command. Output and
//! exit codes are the command's own; the agent is gone when it ends.

use crate::autostart;
use crate::exit::{self, Failure};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// `tapis-agent exec` could not start the private agent (its exit code 125).
const EXEC_FAILED: i32 = 125;

/// Runs the command line of this process, minus `--direct`, under a private
/// agent and returns its exit code; `Err` when that cannot be done.
pub fn run() -> Result<u8, Failure> {
    let agent = autostart::agent_binary()
        .map_err(|why| autostart::missing_agent(format!("--direct needs tapis-agent: {why}")))?;
    let me = std::env::current_exe()
        .map_err(|e| exit::other(format!("--direct: cannot find tapis-cred itself: {e}")))?;
    let status = Command::new(&agent)
        .args(["exec", "--private", "--quiet", "--"])
        .arg(me)
        .args(without_direct(std::env::args_os().skip(1)))
        .status()
        .map_err(|e| {
            exit::agent_unreachable(format!("--direct: cannot run {}: {e}", agent.display()))
        })?;
    match (status.code(), status.signal()) {
        (Some(EXEC_FAILED), _) => Err(exit::agent_unreachable(
            "--direct: cannot start a private agent (tapis-agent said why on stderr)",
        )),
        (Some(code), _) => Ok(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => Ok(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => Ok(1),
    }
}

/// The arguments with every `--direct` before a `--` removed.
fn without_direct(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut after_dashes = false;
    args.filter(|a| {
        after_dashes |= a == "--";
        after_dashes || a != "--direct"
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_direct_flag_is_dropped() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            without_direct(
                args(&["--direct", "establish", "ls6", "--direct", "--json"]).into_iter()
            ),
            args(&["establish", "ls6", "--json"])
        );
        assert_eq!(
            without_direct(args(&["token", "--", "--direct"]).into_iter()),
            args(&["token", "--", "--direct"])
        );
    }
}
