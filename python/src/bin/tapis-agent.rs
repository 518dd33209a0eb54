//! `tapis-agent`, as shipped in the Python wheel.

fn main() -> std::process::ExitCode {
    tapis_agent::cli::main()
}
