//! A minimal client of the agent protocol, for `exec`'s checks: is an agent
//! there, and is it logged in.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;
use tapis_agent_proto::{
    PROTOCOL_VERSION, Request, Response, read_answer_async, write_frame_async,
};
use tokio::net::UnixStream;

/// Whether an agent of ours accepts connections at `socket`. A socket owned
/// by someone else is not used: credentials would go through it.
pub async fn answers(socket: &Path) -> bool {
    match std::fs::metadata(socket) {
        Ok(meta) if meta.uid() == crate::uid::euid() => {}
        Ok(_) => {
            tracing::warn!(socket = %socket.display(), "socket belongs to another user; ignoring it");
            return false;
        }
        Err(_) => return false,
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(socket)).await,
        Ok(Ok(_))
    )
}

/// Sends one request after the hello exchange and returns the answer,
/// within `limit`. Errors are short causes for a warning line.
pub async fn ask(socket: &Path, request: &Request, limit: Duration) -> Result<Response, String> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        let hello = Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        match call(&mut stream, &hello).await? {
            Response::Hello {
                protocol_version, ..
            } if protocol_version == PROTOCOL_VERSION => {}
            Response::Hello {
                protocol_version, ..
            } => return Err(format!("it speaks protocol {protocol_version}")),
            _ => return Err("it did not answer the hello".into()),
        }
        call(&mut stream, request).await
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", limit.as_secs())))
}

async fn call(stream: &mut UnixStream, request: &Request) -> Result<Response, String> {
    write_frame_async(stream, request)
        .await
        .map_err(|e| e.to_string())?;
    read_answer_async(stream, drop)
        .await
        .map_err(|e| e.to_string())
}
