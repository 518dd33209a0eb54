//! Connections that a fault can cut from inside a request handler.
//!
//! axum gives handlers no way to close the TCP connection they are answering on.
//! Faults such as `drop` need exactly that, so every accepted stream is wrapped in a
//! [`CuttableStream`] whose [`CutSwitch`] is handed to the handlers as connection info.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const RESET: u8 = 2;

/// Shared between a connection's stream and the requests served on it.
#[derive(Debug, Default)]
pub(crate) struct CutSwitch(AtomicU8);

impl CutSwitch {
    /// Every further read or write fails; the socket is closed with a FIN.
    pub(crate) fn close(&self) {
        let _ = self
            .0
            .compare_exchange(OPEN, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Like [`close`](Self::close), but the socket is closed with a TCP RST.
    pub(crate) fn reset(&self) {
        self.0.store(RESET, Ordering::SeqCst);
    }

    fn state(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Connection info for handlers: the peer and the switch that cuts this connection.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub(crate) peer: SocketAddr,
    pub(crate) switch: Arc<CutSwitch>,
}

impl Connected<IncomingStream<'_, CuttableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose streams can be cut by the handlers.
#[derive(Debug)]
pub(crate) struct CuttableListener(pub(crate) TcpListener);

impl axum::serve::Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    // Small answers and slow-drip bytes must leave at once.
                    let _ = stream.set_nodelay(true);
                    let switch = Arc::new(CutSwitch::default());
                    let io = CuttableStream {
                        inner: stream,
                        switch: switch.clone(),
                    };
                    return (io, Conn { peer, switch });
                }
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn {
            peer: self.0.local_addr()?,
            switch: Arc::new(CutSwitch::default()),
        })
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream that fails every operation once its switch is thrown.
#[derive(Debug)]
pub(crate) struct CuttableStream {
    inner: TcpStream,
    switch: Arc<CutSwitch>,
}

impl CuttableStream {
    fn check(&self) -> io::Result<()> {
        match self.switch.state() {
            OPEN => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection cut by an injected fault",
            )),
        }
    }
}

impl Drop for CuttableStream {
    fn drop(&mut self) {
        if self.switch.state() == RESET {
            // A zero linger turns the close into an RST.
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
