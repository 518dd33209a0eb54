//! No core file and no same-user `ptrace` of the agent: its memory holds the
//! access and refresh tokens and the OAuth client key, which a core file
//! would write to disk, readable wherever the kernel puts cores. ssh-agent
//! and rbw-agent do the same. A command run by `tapis-agent exec` gets the
//! core limit it would have had (see [`restore_for_child`]); the dumpable
//! flag comes back by itself when the child calls `execve`.

use std::sync::OnceLock;

/// `RLIMIT_CORE` as the process started, for its children.
static ORIGINAL: OnceLock<Option<libc::rlimit>> = OnceLock::new();
/// What [`forbid`] could not do, for [`log_problems`].
static PROBLEMS: OnceLock<Vec<String>> = OnceLock::new();

/// Clears the dumpable flag and sets the soft core limit to 0 (the hard one
/// stays, so that [`restore_for_child`] can give it back). Call it first
/// thing. A refusal (a seccomp filter, as systemd's `@resources`) is logged
/// by [`log_problems`] once tracing is up: the unit sets `LimitCORE=0` for
/// that case.
pub fn forbid() {
    let mut problems = Vec::new();
    if let Err(e) = set_not_dumpable() {
        problems.push(format!("cannot clear the dumpable flag: {e}"));
    }
    let original = get_core_limit().ok();
    let _ = ORIGINAL.set(original);
    match original {
        // Already 0 (systemd's LimitCORE=0, whose seccomp filter would
        // refuse the call anyway).
        Some(lim) if lim.rlim_cur == 0 => {}
        Some(lim) => {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: lim.rlim_max,
            };
            if let Err(e) = set_core_limit(&zero) {
                problems.push(format!("cannot set the core size limit to 0: {e}"));
            }
        }
        None => problems.push("cannot read the core size limit".into()),
    }
    let _ = PROBLEMS.set(problems);
}

/// Logs what [`forbid`] could not do.
pub fn log_problems() {
    for problem in PROBLEMS.get().into_iter().flatten() {
        tracing::warn!("{problem}; a core file of this process could hold secrets");
    }
}

/// Gives a child the core limit this process started with: called between
/// `fork` and `exec` (see `exec`'s `run_command`), where only
/// async-signal-safe calls are allowed; `setrlimit` is one.
pub fn restore_for_child() -> std::io::Result<()> {
    match ORIGINAL.get() {
        Some(Some(lim)) => set_core_limit(lim),
        _ => Ok(()),
    }
}

#[allow(unsafe_code)]
fn set_not_dumpable() -> std::io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory
    // of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn get_core_limit() -> std::io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct passed in, which lives here.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) } == 0 {
        Ok(lim)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn set_core_limit(lim: &libc::rlimit) -> std::io::Result<()> {
    // SAFETY: setrlimit only reads the struct passed in.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, lim) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_round_trips() {
        let lim = get_core_limit().unwrap();
        set_core_limit(&lim).unwrap();
        assert_eq!(get_core_limit().unwrap().rlim_cur, lim.rlim_cur);
    }
}
