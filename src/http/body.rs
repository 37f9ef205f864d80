//! The response body: one buffer for every ordinary answer (as cheap as `Full`: no box, no
//! channel), or a stream of chunks from a bounded channel for a download too large to hold
//! in memory (the audit export), written page by page as the client reads.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// Why a streamed body stopped early. Hyper then ends the response without its final chunk,
/// so the client sees a broken download rather than a short one that looks complete.
pub type StreamError = Box<dyn std::error::Error + Send + Sync>;

pub struct Body {
    kind: Kind,
}

enum Kind {
    /// The whole body; `None` once sent.
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Result<Bytes, StreamError>>),
}

/// Where a streamed body's chunks are sent from.
pub type Sender = mpsc::Sender<Result<Bytes, StreamError>>;

impl Body {
    /// A body streamed from the returned sender; at most `chunks` chunks wait in between, so
    /// the producer waits for a slow client instead of piling up memory. The body ends when
    /// the sender is dropped.
    pub fn channel(chunks: usize) -> (Sender, Body) {
        let (tx, rx) = mpsc::channel(chunks);
        (
            tx,
            Body {
                kind: Kind::Stream(rx),
            },
        )
    }
}

impl Default for Body {
    /// An empty body.
    fn default() -> Body {
        Body {
            kind: Kind::Full(None),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body {
            kind: Kind::Full((!b.is_empty()).then_some(b)),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::from(Bytes::from(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::from(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_whole_body_has_its_exact_size_and_a_stream_ends_with_its_sender() {
        use hyper::body::Body as _;
        let full = Body::from("abc");
        assert_eq!(full.size_hint().exact(), Some(3));
        assert_eq!(full.collect().await.unwrap().to_bytes(), "abc");
        assert!(Body::from(String::new()).is_end_stream());

        let (tx, body) = Body::channel(1);
        assert_eq!(body.size_hint().exact(), None);
        let producer = tokio::spawn(async move {
            for part in ["a", "b", "c"] {
                tx.send(Ok(Bytes::from(part))).await.unwrap();
            }
        });
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");
        producer.await.unwrap();

        let (tx, body) = Body::channel(1);
        tx.send(Err("page failed".into())).await.unwrap();
        assert!(body.collect().await.is_err(), "an error is not a clean end");
    }
}
