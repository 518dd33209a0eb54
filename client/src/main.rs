//! `tapis-cred`: the command-line client of tapis-agent (see the library).

fn main() -> std::process::ExitCode {
    tapis_cred::main()
}
