//! This host's name, as other hosts sharing the state directory see it.

use std::sync::OnceLock;

/// The kernel's host name, else `localhost`. Read once: it names every
/// temp file the agent writes.
pub fn hostname() -> String {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
    .clone()
}

/// Whether process `pid` of this host is running.
pub fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
