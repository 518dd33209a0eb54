//! Fake Tapis server and test harness.

pub mod fake;
pub mod harness;
