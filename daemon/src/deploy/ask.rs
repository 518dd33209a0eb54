//! A minimal client of the agent protocol, for `exec`'s checks: is an agent
//! there, and is it logged in.

use std::path::Path;
use std::time::Duration;
use tapis_agent_proto::{AsyncConnection, HelloError, Request, Response};
use tokio::net::UnixStream;

/// Whether an agent of ours accepts connections at `socket`. One run by
/// someone else is not used: credentials would go through it.
pub async fn answers(socket: &Path) -> bool {
    match tokio::time::timeout(Duration::from_secs(2), connect(socket)).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::debug!(socket = %socket.display(), error = %e, "no agent of ours there");
            false
        }
        Err(_) => false,
    }
}

/// Connects to `socket` and checks that the process listening there runs as
/// us (`SO_PEERCRED`, a property of the connection: a path swapped after
/// the connect changes nothing), before anything is written.
async fn connect(socket: &Path) -> Result<UnixStream, String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let me = crate::uid::euid();
    match stream.peer_cred().map(|c| c.uid()) {
        Ok(uid) if uid == me => Ok(stream),
        Ok(uid) => {
            tracing::warn!(socket = %socket.display(), peer_uid = uid, "the agent there runs as another user; ignoring it");
            Err(format!(
                "the process listening there runs as uid {uid}, not as you (uid {me})"
            ))
        }
        Err(e) => Err(format!("cannot tell who listens there: {e}")),
    }
}

/// Sends one request behind the hello and returns the answer, within
/// `limit`. Errors are short causes for a warning line.
pub async fn ask(socket: &Path, request: &Request, limit: Duration) -> Result<Response, String> {
    let exchange = async {
        let stream = connect(socket).await?;
        let mut conn = AsyncConnection::hello(stream, env!("CARGO_PKG_VERSION"), Some(request))
            .await
            .map_err(|e| match e {
                HelloError::Version(v) => format!("it speaks protocol {v}"),
                HelloError::Transport(e) => e.to_string(),
                HelloError::Refused(e) => e.message,
                HelloError::Unexpected(_) => "it did not answer the hello".into(),
            })?;
        conn.answer(drop).await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", limit.as_secs())))
}
