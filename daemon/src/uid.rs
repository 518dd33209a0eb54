//! The effective uid of this process.

use std::sync::OnceLock;

/// Effective uid of the current process (asked once: the agent never
/// changes it, and every connection's peer check compares against it).
pub fn euid() -> u32 {
    static EUID: OnceLock<u32> = OnceLock::new();
    *EUID.get_or_init(geteuid)
}

#[allow(unsafe_code)]
fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}
