//! `cfg(as_root)` when the tests are built as root, which is how they run
//! (CI runs as root): tests that need another uid (through `setpriv`) are
//! then compiled in, and elsewhere marked `#[ignore = "needs root"]`.

use std::os::unix::fs::MetadataExt;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(as_root)");
    println!("cargo::rerun-if-changed=build.rs");
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        println!("cargo::rustc-cfg=as_root");
    }
}
