//! A write deadline for a connection: hyper 1.x has none for HTTP/1, and its header timeout
//! does not run while it writes, so a client that pipelines requests and never reads the
//! answers would hold its connection (and the answers buffered for it) for good. A write, flush
//! or shutdown that makes no progress for the deadline fails with `TimedOut`, which ends the
//! connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `T` with a deadline on writes that make no progress.
pub struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write found the connection unable to take more; reset by any progress.
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// Passes `polled` through, disarming the timer on progress; when it is pending, arms the
    /// timer (if not yet) and fails once it has run out.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            self.armed = true;
            self.timer.as_mut().reset(Instant::now() + self.limit);
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client took no data for {} s: write deadline",
                self.limit.as_secs_f64()
            ),
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_that_makes_no_progress_fails_after_the_deadline() {
        let limit = Duration::from_millis(400);
        // A pipe that holds 64 bytes, read by nobody.
        let (near, _far) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(near, limit);
        w.write_all(&[0; 64]).await.unwrap();
        let started = Instant::now();
        let err = w.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= limit);

        // A slow reader that keeps taking data keeps the writer going, longer than the
        // deadline in all.
        let (near, mut slow) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(near, limit);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            for _ in 0..16 {
                tokio::time::sleep(Duration::from_millis(40)).await;
                slow.read_exact(&mut buf).await.unwrap();
            }
        });
        let started = Instant::now();
        w.write_all(&[0; 1024]).await.expect("progress every 40 ms");
        w.flush().await.unwrap();
        reader.await.unwrap();
        assert!(started.elapsed() > limit);
    }
}
