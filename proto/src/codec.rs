//! Framing and encoding: a `u32` big-endian body length, then a bincode body.
//!
//! bincode is used only in this module, so swapping the body encoding touches
//! nothing else. Lengths are checked against [`MAX_FRAME_LEN`] before any
//! buffer is allocated.

use crate::limits::MAX_FRAME_LEN;
use crate::message::Response;
use serde::{Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

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

/// What decoding one frame may allocate. bincode counts memory, not bytes
/// read: a list claims its element size times its length, so the 256
/// per-system results of a full answer (a frame of under 64 KiB) claim
/// more than the frame's length. The frame itself stays bounded by
/// [`MAX_FRAME_LEN`]; this bounds what it can make the reader allocate.
const DECODE_LIMIT: usize = 8 * MAX_FRAME_LEN;

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// The length of `msg`'s frame body, whether or not it fits in a frame
/// (`usize::MAX` when it cannot be encoded at all).
pub fn encoded_len<T: Serialize>(msg: &T) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match bincode::serde::encode_into_std_write(msg, &mut count, bincode::config::standard()) {
        Ok(_) => count.0,
        Err(_) => usize::MAX,
    }
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
    let (msg, used) = bincode::serde::decode_from_slice(body, decode_config())
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

/// Reads the answer to a request (blocking): the progress notes the agent
/// sends first go to `on_progress` (see [`Response::Progress`]), the answer
/// is returned. Frames are wiped after decoding (answers may hold a token).
pub fn read_answer<R: Read>(
    r: &mut R,
    mut on_progress: impl FnMut(Vec<String>),
) -> Result<Response, CodecError> {
    loop {
        let body = Zeroizing::new(read_frame(r)?);
        match decode(&body)? {
            Response::Progress(notes) => on_progress(notes),
            answer => return Ok(answer),
        }
    }
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

/// [`read_answer`] for an async reader.
#[cfg(feature = "tokio")]
pub async fn read_answer_async<R>(
    r: &mut R,
    mut on_progress: impl FnMut(Vec<String>),
) -> Result<Response, CodecError>
where
    R: tokio::io::AsyncRead + Unpin,
{
    loop {
        let body = Zeroizing::new(read_frame_async(r).await?);
        match decode(&body)? {
            Response::Progress(notes) => on_progress(notes),
            answer => return Ok(answer),
        }
    }
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

/// Size of [`FrameReader`]'s buffer: every request but a login, and most
/// answers, fit in one read.
#[cfg(feature = "tokio")]
const READ_CHUNK: usize = 1024;

/// Reads frames from one async stream through a buffer of its own: a frame
/// that has arrived whole (the usual case) takes one read instead of two,
/// and frames sent back to back (a request right behind the hello) come in
/// with one read. Consumed bytes are wiped at once and the buffer on drop:
/// frames may hold a password.
///
/// Cancel-safe: bytes read belong to the reader, not to the future, so a
/// `read_frame` dropped halfway (a timeout, a shutdown) loses nothing.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct FrameReader {
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
}

#[cfg(feature = "tokio")]
impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tokio")]
impl FrameReader {
    /// An empty reader.
    pub fn new() -> Self {
        FrameReader {
            buf: Zeroizing::new(vec![0; READ_CHUNK]),
            start: 0,
            end: 0,
        }
    }

    /// Whether a whole frame is buffered: the next [`read_frame`](Self::read_frame)
    /// returns without reading.
    pub fn has_frame(&self) -> bool {
        let pending = &self.buf[self.start..self.end];
        pending
            .first_chunk::<FRAME_HEADER_LEN>()
            .and_then(|header| body_len(*header).ok())
            .is_some_and(|len| pending.len() - FRAME_HEADER_LEN >= len)
    }

    /// Reads one frame body from `r`. A clean EOF before the header is
    /// [`CodecError::Closed`]; lengths are checked before the buffer grows.
    pub async fn read_frame<R>(&mut self, r: &mut R) -> Result<Vec<u8>, CodecError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        self.fill(r, FRAME_HEADER_LEN).await?;
        let mut header = [0u8; FRAME_HEADER_LEN];
        header.copy_from_slice(&self.buf[self.start..][..FRAME_HEADER_LEN]);
        let total = FRAME_HEADER_LEN + body_len(header)?;
        self.fill(r, total).await?;
        let frame = self.start..self.start + total;
        let body = self.buf[frame.start + FRAME_HEADER_LEN..frame.end].to_vec();
        self.buf[frame.clone()].fill(0);
        self.start = frame.end;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > READ_CHUNK {
                // Back to the small buffer after a large frame (wiped on drop).
                self.buf = Zeroizing::new(vec![0; READ_CHUNK]);
            }
        }
        Ok(body)
    }

    /// Reads until at least `need` bytes are buffered.
    async fn fill<R>(&mut self, r: &mut R, need: usize) -> Result<(), CodecError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        use tokio::io::AsyncReadExt;
        if self.end - self.start >= need {
            return Ok(());
        }
        if self.buf.len() - self.start < need {
            // Move what is pending to the front, wiping where it was.
            let pending = self.end - self.start;
            self.buf.copy_within(self.start..self.end, 0);
            self.buf[pending..self.end].fill(0);
            self.start = 0;
            self.end = pending;
            if self.buf.len() < need {
                let mut bigger = Zeroizing::new(vec![0; need]);
                bigger[..pending].copy_from_slice(&self.buf[..pending]);
                self.buf = bigger;
            }
        }
        while self.end - self.start < need {
            match r.read(&mut self.buf[self.end..]).await? {
                0 if self.end == self.start => return Err(CodecError::Closed),
                0 => return Err(CodecError::Truncated),
                n => self.end += n,
            }
        }
        Ok(())
    }
}
