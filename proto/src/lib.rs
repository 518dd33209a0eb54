//! Wire protocol between the `tapis-agent` daemon and the `tapis-cred` client.
//!
//! This crate holds data and the codec only: the [`Request`] and [`Response`]
//! enums, the error kinds that map to the client's exit codes, and the framing
//! (`u32` big-endian length followed by a bincode body), and [`suggest`], the
//! one rule both programs use to say "did you mean", and [`conn`], the
//! client side of the conversation (connect, hello, call) that every client
//! uses, [`paths`], where the agent's socket is (both programs' rule), and
//! [`limits`] with [`fit`], the sizes both sides hold to.
//! It contains no policy: what to do when no agent answers (start
//! one, what to tell the user) lives in the binaries.

mod codec;
pub mod conn;
mod error;
pub mod fit;
#[cfg(feature = "generate")]
pub mod generate;
pub mod limits;
mod message;
pub mod paths;
mod secret;
pub mod suggest;
pub mod tokenfile;

pub use codec::{
    CodecError, FRAME_HEADER_LEN, decode, encode_frame, encoded_len, read_answer, read_frame,
    write_frame,
};
#[cfg(feature = "tokio")]
pub use codec::{FrameReader, read_answer_async, read_frame_async, write_frame_async};
#[cfg(feature = "tokio")]
pub use conn::AsyncConnection;
pub use conn::{Connection, HelloError};
pub use error::{ErrorKind, ErrorReply};
pub use limits::MAX_FRAME_LEN;
pub use message::{
    AgentSettings, CredState, DeviceCode, LoginMethod, LoginState, Outcome, Pong, Request,
    Response, StateDirStatus, StatusInfo, SystemOutcome, SystemStatus, TokenGrant,
};
pub use secret::Secret;

/// Version of this protocol. Both sides send it in their first message and
/// refuse to go on when the versions differ.
///
/// A client may write requests right behind its hello, without waiting for
/// the answer (`tapis-cred` does, except for a login): answers come in
/// order, the hello's first. An agent that refuses the hello answers with an
/// error and closes the connection without acting on anything behind it.
///
/// A request that takes more than a second is answered by
/// [`Response::Progress`] frames first (protocol 3), then its answer.
/// A token file to import is named by its path, and read by the agent
/// (protocol 4).
pub const PROTOCOL_VERSION: u32 = 4;
