//! `noop`: does nothing. The benchmark's floor for a client process: what
//! creating and reaping a Rust process of the same build profile costs.

fn main() {}
