//! The end-to-end tests, as one test binary: one link instead of thirty, and
//! `cargo test` runs every module's tests side by side. A module is one area
//! (its file says what it covers); `cargo test -p tapis-agent-tests --test
//! suite -- shared_state::` runs one, and test names (`module::function`) are
//! what docs/tapis-conformance.md and RELIABILITY.md cite.

/// The tests that load the whole machine (thousands of sockets, hundreds of
/// killed agents) take turns: the suite runs six tests at a time on two
/// cores, and their timing bounds must measure the agent, not each other.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod deploy_common;
mod fake_common;
mod reliability_common;

mod agent_establish;
mod agent_socket;
mod agent_token;
mod bench_smoke;
mod binaries_e2e;
mod conformance;
mod deploy_activation;
mod deploy_autostart;
mod deploy_exec;
mod deploy_units;
mod fake_binary;
mod fake_credentials;
mod fake_faults;
mod fake_tokens;
mod hardening;
mod login_lifecycle;
mod production;
mod reliability_clients;
mod reliability_local;
mod reliability_process;
mod reliability_upstream;
mod shared_fuse;
mod shared_state;
mod ux_doctor;
mod ux_json_schema;
mod ux_names;
mod ux_profiles;
mod ux_terminal;
