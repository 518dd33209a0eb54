//! Fake Tapis server, test harness and benchmarks.

pub mod bench;
pub mod fake;
pub mod fleet;
pub mod harness;
pub mod needs;
pub mod process;
pub mod procs;
pub mod sandbox;
