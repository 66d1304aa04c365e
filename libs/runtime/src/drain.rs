//! Ends response streams that are still open when the drain deadline passes, with a proper
//! UNAVAILABLE status, so a watch stream cannot hold a shutting-down server (or its
//! connection tasks) open.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body as HttpBody, Frame};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

#[derive(Clone)]
pub struct DrainLayer {
    cut: CancellationToken,
}

impl DrainLayer {
    pub fn new(cut: CancellationToken) -> Self {
        Self { cut }
    }
}

impl<S> tower::Layer<S> for DrainLayer {
    type Service = Drain<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Drain {
            inner,
            cut: self.cut.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Drain<S> {
    inner: S,
    cut: CancellationToken,
}

impl<S, B> tower::Service<http::Request<B>> for Drain<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = DrainFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        DrainFuture {
            inner: self.inner.call(req),
            cut: Some(self.cut.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response with its body made cuttable; a named future, not a boxed one, as
    /// this runs on every call.
    pub struct DrainFuture<F> {
        #[pin]
        inner: F,
        cut: Option<CancellationToken>,
    }
}

impl<F, E> Future for DrainFuture<F>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = std::task::ready!(this.inner.poll(cx))?;
        let cut = this.cut.take().unwrap_or_default();
        let (parts, body) = resp.into_parts();
        let body = CuttableBody {
            inner: body,
            cut,
            waiting: None,
            done: false,
        };
        Poll::Ready(Ok(http::Response::from_parts(
            parts,
            tonic::body::Body::new(body),
        )))
    }
}

pin_project_lite::pin_project! {
    struct CuttableBody {
        #[pin]
        inner: tonic::body::Body,
        cut: CancellationToken,
        // Registered only once the body waits: a unary reply is ready at once and never
        // pays for a waiter.
        waiting: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
        done: bool,
    }
}

impl HttpBody for CuttableBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Pending => {}
            Poll::Ready(None) => {
                *this.done = true;
                return Poll::Ready(None);
            }
            ready => return ready,
        }
        let waiting = this
            .waiting
            .get_or_insert_with(|| Box::pin(this.cut.clone().cancelled_owned()));
        if waiting.as_mut().poll(cx).is_ready() {
            *this.done = true;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
            trailers.insert(
                "grpc-message",
                http::HeaderValue::from_static("server%20is%20shutting%20down"),
            );
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
