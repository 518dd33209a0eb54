//! Framing and encoding: a `u32` big-endian body length, then a bincode body.
//!
//! bincode is used only in this module, so swapping the body encoding touches
//! nothing else. Lengths are checked against [`MAX_FRAME_LEN`] before any
//! buffer is allocated.

use serde::{Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// Largest accepted frame body, in bytes.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Length of the frame header (the big-endian body length).
pub const FRAME_HEADER_LEN: usize = 4;

/// Why a frame could not be read, written, encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer closed the connection cleanly between frames.
    #[error("connection closed")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The announced or encoded body is larger than [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge {
        /// The offending length.
        len: usize,
    },
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The body is not a valid message.
    #[error("cannot decode message: {0}")]
    Decode(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_LEN>()
}

/// Encodes `msg` as a complete frame: header followed by body.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    bincode::serde::encode_into_std_write(msg, &mut frame, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    let len = frame.len() - FRAME_HEADER_LEN;
    if len > MAX_FRAME_LEN {
        return Err(CodecError::TooLarge { len });
    }
    let header = u32::try_from(len).map_err(|_| CodecError::TooLarge { len })?;
    frame[..FRAME_HEADER_LEN].copy_from_slice(&header.to_be_bytes());
    Ok(frame)
}

/// Decodes a frame body. Trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(CodecError::TooLarge { len: body.len() });
    }
    let (msg, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Decode(format!(
            "{} trailing bytes after the message",
            body.len() - used
        )));
    }
    Ok(msg)
}

/// Checks a header and returns the body length it announces.
fn body_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(CodecError::TooLarge { len });
    }
    Ok(len)
}

/// Maps an EOF inside a frame to [`CodecError::Truncated`].
fn truncated(e: io::Error) -> CodecError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        CodecError::Truncated
    } else {
        CodecError::Io(e)
    }
}

/// Reads one frame body (blocking). A clean EOF before the header is
/// [`CodecError::Closed`].
pub fn read_frame<R: Read>(r: &mut R) -> Result<Vec<u8>, CodecError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut got = 0;
    while got < FRAME_HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(CodecError::Closed),
            Ok(0) => return Err(CodecError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CodecError::Io(e)),
        }
    }
    let mut body = vec![0u8; body_len(header)?];
    r.read_exact(&mut body).map_err(truncated)?;
    Ok(body)
}

/// Encodes and writes one message as a frame (blocking), then flushes.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), CodecError> {
    // Frames may carry secrets (passwords, tokens): wipe the buffer after use.
    let frame = Zeroizing::new(encode_frame(msg)?);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame body from an async reader. A clean EOF before the header
/// is [`CodecError::Closed`].
#[cfg(feature = "tokio")]
pub async fn read_frame_async<R>(r: &mut R) -> Result<Vec<u8>, CodecError>
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut got = 0;
    while got < FRAME_HEADER_LEN {
        match r.read(&mut header[got..]).await? {
            0 if got == 0 => return Err(CodecError::Closed),
            0 => return Err(CodecError::Truncated),
            n => got += n,
        }
    }
    let mut body = vec![0u8; body_len(header)?];
    r.read_exact(&mut body).await.map_err(truncated)?;
    Ok(body)
}

/// Encodes and writes one message as a frame to an async writer, then flushes.
#[cfg(feature = "tokio")]
pub async fn write_frame_async<W, T>(w: &mut W, msg: &T) -> Result<(), CodecError>
where
    W: tokio::io::AsyncWrite + Unpin,
    T: Serialize,
{
    use tokio::io::AsyncWriteExt;
    let frame = Zeroizing::new(encode_frame(msg)?);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}
