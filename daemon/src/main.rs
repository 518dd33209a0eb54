//! `tapis-agent`: runs the agent in the foreground (see [`tapis_agent::cli`]).

fn main() -> std::process::ExitCode {
    tapis_agent::cli::main()
}
