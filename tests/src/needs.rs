//! What some tests need of the machine, said once: root (to act as another
//! uid) and tools beside the binaries (`script`, `systemd-analyze`, ...).
//!
//! CI runs as root and installs the tools (`.ci/run`), so neither is
//! skipped quietly: a test that needs root is marked
//! `#[cfg_attr(not(as_root), ignore = "needs root")]` (`tests/build.rs`;
//! the runner counts it as ignored elsewhere) and asserts [`root`]; a
//! missing tool fails the test, unless `TAPIS_TEST_SKIP_TOOLS` names it to
//! skip on purpose.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Names the tools (comma-separated) whose tests skip when they are missing.
pub const SKIP_TOOLS: &str = "TAPIS_TEST_SKIP_TOOLS";

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Asserts that this process runs as root, for a test that `ignore`s
/// itself elsewhere: one built as root but run as another user fails.
pub fn root(why: &str) {
    assert!(is_root(), "needs root: {why}");
}

/// The first executable `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The tool `name` on `PATH`. Missing, it fails the test, or with
/// `TAPIS_TEST_SKIP_TOOLS` naming it, is `None` and says so: the test
/// then returns, skipped on purpose.
pub fn tool(name: &str) -> Option<PathBuf> {
    if let Some(path) = which(name) {
        return Some(path);
    }
    let skip = std::env::var(SKIP_TOOLS).unwrap_or_default();
    if skip.split(',').any(|t| t.trim() == name) {
        eprintln!("skipped on purpose ({SKIP_TOOLS}={skip}): {name} is not installed");
        return None;
    }
    panic!(
        "{name} is not installed: install it (.ci/run does), or set {SKIP_TOOLS}={name} \
         to skip the tests that need it"
    );
}
