//! The accepted TCP connection as the HTTP/2 codec sees it.
//!
//! h2 buffers a DATA frame into its 16 KiB write buffer only below a threshold: 256 bytes when
//! the connection says it has vectored writes, 1 KiB when it does not. A frame above it is
//! chained and must be written out before the next frame is taken, so with vectored writes
//! every reply of a few hundred bytes (a persona, a session) cost a `writev` of its own, even
//! when dozens of replies were ready on the connection at once. Saying "no vectored writes"
//! lets replies up to 1 KiB share one write; a larger frame costs two writes instead of one.
//! Measured in bench/README.md ("Fourth set").

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A TCP connection whose writes h2 coalesces (see the module's documentation).
#[derive(Debug)]
pub struct CoalescingStream(TcpStream);

impl CoalescingStream {
    pub fn new(stream: TcpStream) -> Self {
        Self(stream)
    }
}

impl AsyncRead for CoalescingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for CoalescingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    // The point of the type: h2 then copies small DATA frames into its buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl Connected for CoalescingStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn passes_bytes_and_addresses_through_without_vectored_writes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"ping").await.unwrap();
            let mut back = [0u8; 4];
            c.read_exact(&mut back).await.unwrap();
            (c.local_addr().unwrap(), back)
        });
        let (accepted, _) = listener.accept().await.unwrap();
        let mut s = CoalescingStream::new(accepted);
        assert!(!s.is_write_vectored());
        let info = s.connect_info();
        assert_eq!(info.local_addr(), Some(addr));
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        s.write_all(b"pong").await.unwrap();
        s.flush().await.unwrap();
        let (client_addr, back) = client.await.unwrap();
        assert_eq!((&got, &back), (b"ping", b"pong"));
        assert_eq!(info.remote_addr(), Some(client_addr));
    }
}
