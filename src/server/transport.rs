//! What a viewer's bytes travel over: plain TCP, a WebSocket, TLS, or TLS started in the
//! middle of the RFB handshake (VeNCrypt). The viewer task sees them all as one boxed stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Any byte stream a viewer can be served over.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub type BoxedStream = Box<dyn Stream>;

/// A stream whose first bytes were already read by someone else (an HTTP request head, a TLS
/// ClientHello that arrived with the VeNCrypt choice): they are read again first.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self { prefix, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(left) = this.prefix.get(this.at..).filter(|left| !left.is_empty()) {
            let n = left.len().min(buf.remaining());
            buf.put_slice(&left[..n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn prefix_is_read_first_then_the_stream_and_writes_pass_through() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream = Prefixed::new(b"GET ".to_vec(), near);
        far.write_all(b"/ HTTP/1.1").await.unwrap();
        let mut first = [0u8; 2];
        stream.read_exact(&mut first).await.unwrap();
        let mut rest = [0u8; 12];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!([&first[..], &rest[..]].concat(), b"GET / HTTP/1.1");
        stream.write_all(b"ok").await.unwrap();
        let mut echoed = [0u8; 2];
        far.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ok");
    }
}
