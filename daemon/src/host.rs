//! This host's name, as other hosts sharing the state directory see it.

pub use tapis_agent_proto::paths::hostname;

/// Whether process `pid` of this host is running.
pub fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
