//! Helpers shared by the reliability tests: the agent binary as a child
//! process, a protocol client that reports failures instead of panicking
//! (both from the library), temp dirs and open-file limits.

#![allow(dead_code)] // not every helper is used

#[allow(unused_imports)]
pub use tapis_agent_tests::process::*;

/// A private temp dir under /tmp (short paths keep socket names legal).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("temp dir")
}

/// Raises the soft open-file limit to the hard limit, for tests that hold
/// thousands of sockets. Returns the new soft limit.
#[allow(unsafe_code)]
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
    }
    lim.rlim_cur
}
