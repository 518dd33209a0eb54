//! The bench's blocking client: `tapis-cred`'s connection (the protocol's
//! own, [`Connection`]), one request in flight.

use anyhow::{Context as _, bail};
use std::path::Path;
use std::time::Duration;
use tapis_agent_proto::{Connection, CredState, Outcome, Request, Response, conn};

/// Longest wait for any answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection that has done the hello exchange.
#[derive(Debug)]
pub struct SyncClient {
    conn: Connection,
}

impl SyncClient {
    /// Connects and exchanges hellos.
    pub fn connect(socket: &Path) -> anyhow::Result<Self> {
        let stream = conn::connect(socket, ANSWER_TIMEOUT)
            .with_context(|| format!("connecting to {}", socket.display()))?;
        let conn = Connection::hello(stream, CLIENT_VERSION, None).context("the hello")?;
        Ok(SyncClient { conn })
    }

    /// Sends one request and reads its answer.
    pub fn call(&mut self, req: &Request) -> anyhow::Result<Response> {
        self.conn.call(req, drop).context("asking the agent")
    }

    /// Establish of `systems`; every outcome must be a success.
    pub fn establish(&mut self, systems: &[String], fresh: bool) -> anyhow::Result<Vec<Outcome>> {
        let resp = self.call(&establish(systems, fresh))?;
        let outcomes = outcomes(resp)?;
        if let Some(e) = outcomes.iter().find_map(|o| match o {
            Outcome::Err(e) => Some(e),
            Outcome::Ok(_) => None,
        }) {
            bail!("establish failed: {} ({:?})", e.message, e.kind);
        }
        Ok(outcomes)
    }
}

/// The client version the bench says in its hello.
pub const CLIENT_VERSION: &str = "bench";

/// An establish request for `systems` as the logged-in user.
pub fn establish(systems: &[String], fresh: bool) -> Request {
    Request::Establish {
        systems: systems.to_vec(),
        user: None,
        fresh,
    }
}

/// The per-system outcomes of an answer, or an error describing it.
pub fn outcomes(resp: Response) -> anyhow::Result<Vec<Outcome>> {
    match resp {
        Response::Systems(v) => Ok(v.into_iter().map(|o| o.outcome).collect()),
        Response::Error(e) => bail!("agent error: {} ({:?})", e.message, e.kind),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// True for one `present` outcome answered from the cache.
pub fn is_cached_present(resp: &Response) -> bool {
    matches!(resp, Response::Systems(v)
        if v.len() == 1 && v[0].cached && matches!(v[0].outcome, Outcome::Ok(CredState::Present)))
}

/// A short name for the answer to a one-system request: `created`,
/// `present`, `cached`, another state, or `error:KIND`.
pub fn answer_kind(resp: &Response) -> String {
    match resp {
        Response::Systems(v) if v.len() == 1 => match &v[0].outcome {
            Outcome::Ok(_) if v[0].cached => "cached".into(),
            Outcome::Ok(state) => format!("{state:?}").to_lowercase(),
            Outcome::Err(e) => format!("error:{:?}", e.kind).to_lowercase(),
        },
        Response::Error(e) => format!("error:{:?}", e.kind).to_lowercase(),
        other => format!("unexpected:{other:?}"),
    }
}
