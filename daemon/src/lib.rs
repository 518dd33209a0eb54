//! tapis-agent: a per-user credential agent for Tapis v3.
//!
//! The daemon keeps the user's access token fresh, caches each system's
//! credential state, and answers `tapis-cred` over a Unix socket. Layers, one
//! module each: [`listener`] (socket) → [`connection`] (framing, peer check)
//! → [`dispatch`] → [`systems`] (per-system queues) → [`tapis`] (HTTP) ←
//! [`token`] (token manager); [`cache`] and [`store`] persist state.

pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod deploy;
pub mod dispatch;
pub mod errors;
pub mod host;
pub mod idle;
pub mod jwt;
pub mod listener;
pub mod multi;
pub mod nodump;
pub mod paths;
pub mod server;
pub mod store;
pub mod systemd;
pub mod systems;
pub mod tapis;
pub mod token;
pub mod tools;
pub mod uid;

pub use config::Config;
pub use server::{RunError, run};
