//! Running the fake from synchronous tests: its own runtime on its own thread.

use std::{fmt, ops::Deref, sync::mpsc, thread};

use anyhow::Context as _;
use tokio::sync::oneshot;

use super::{FakeConfig, FakeControl, FakeTapis};

/// A fake served by a background thread; stops when dropped or on
/// [`shutdown`](Self::shutdown). Derefs to [`FakeControl`].
pub struct BlockingFakeTapis {
    control: FakeControl,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeTapis {
    /// Starts a fake on `127.0.0.1` with a free port, on a new thread with its own
    /// tokio runtime, for tests that are not async.
    pub fn spawn_blocking_thread(config: FakeConfig) -> anyhow::Result<BlockingFakeTapis> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("fake-tapis".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match FakeTapis::start(config).await {
                        Ok(fake) => {
                            let _ = ready_tx.send(Ok(fake.control()));
                            // A dropped sender also means stop.
                            let _ = stop_rx.await;
                            fake.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .context("spawning the fake-tapis thread")?;
        let control = ready_rx
            .recv()
            .context("the fake-tapis thread ended before starting")??;
        Ok(BlockingFakeTapis {
            control,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl BlockingFakeTapis {
    /// Stops the server and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BlockingFakeTapis {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl Deref for BlockingFakeTapis {
    type Target = FakeControl;

    fn deref(&self) -> &FakeControl {
        &self.control
    }
}

impl fmt::Debug for BlockingFakeTapis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingFakeTapis")
            .field("addr", &self.control.addr())
            .finish_non_exhaustive()
    }
}
