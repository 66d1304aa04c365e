//! Per-message size limit for gRPC requests. tonic's own limit answers OUT_OF_RANGE; gRPC
//! specifies RESOURCE_EXHAUSTED for an oversize message, so the frames are checked here first.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Buf;
use http_body::{Body as HttpBody, Frame};
use tonic::Status;

#[derive(Clone)]
pub struct MessageLimitLayer {
    limit: usize,
}

impl MessageLimitLayer {
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> tower::Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
    limit: usize,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for MessageLimit<S>
where
    S: tower::Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let is_grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if !is_grpc {
            return self.inner.call(req);
        }
        let (parts, body) = req.into_parts();
        let body = FrameLimited {
            inner: body,
            limit: self.limit,
            header: [0; 5],
            header_len: 0,
            remaining: 0,
        };
        self.inner.call(http::Request::from_parts(
            parts,
            tonic::body::Body::new(body),
        ))
    }
}

pin_project_lite::pin_project! {
    /// Follows the gRPC length-prefixed framing (1 flag byte + 4 length bytes + message)
    /// across data frames, failing as soon as a declared length exceeds the limit.
    struct FrameLimited {
        #[pin]
        inner: tonic::body::Body,
        limit: usize,
        header: [u8; 5],
        header_len: usize,
        remaining: usize,
    }
}

impl HttpBody for FrameLimited {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let mut chunk = data.clone();
            while chunk.has_remaining() {
                if *this.remaining > 0 {
                    let n = (*this.remaining).min(chunk.remaining());
                    chunk.advance(n);
                    *this.remaining -= n;
                    continue;
                }
                let need = 5 - *this.header_len;
                let n = need.min(chunk.remaining());
                this.header[*this.header_len..*this.header_len + n].copy_from_slice(&chunk[..n]);
                chunk.advance(n);
                *this.header_len += n;
                if *this.header_len == 5 {
                    let len = u32::from_be_bytes([
                        this.header[1],
                        this.header[2],
                        this.header[3],
                        this.header[4],
                    ]) as usize;
                    if len > *this.limit {
                        return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                            "message of {len} bytes exceeds the limit of {} bytes",
                            this.limit
                        )))));
                    }
                    *this.remaining = len;
                    *this.header_len = 0;
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
