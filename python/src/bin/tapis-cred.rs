//! `tapis-cred`, as shipped in the Python wheel.

fn main() -> std::process::ExitCode {
    tapis_cred::main()
}
