//! Prometheus metrics: a per-request layer (count, latency, in-flight, gRPC codes) and the
//! admin HTTP endpoint that serves them.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (e.g. in tests); rendering then shows
        // only what this one saw, which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Serves `/metrics` (Prometheus text format) on the admin port until `shutdown` resolves.
pub async fn serve_admin(
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let handle = prometheus();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || async move { handle.render() }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %err, "admin server stopped");
        }
    });
    Ok(local)
}

fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_owned();
    let method = parts.next().unwrap_or_default().to_owned();
    (service, method)
}

/// The gRPC status of a response as a code name (`Ok`, `NotFound`, …), if it is known yet.
fn grpc_code(headers: &http::HeaderMap) -> Option<String> {
    let raw = headers.get("grpc-status")?.to_str().ok()?;
    let code = raw.parse::<i32>().map(tonic::Code::from_i32).ok()?;
    Some(format!("{code:?}"))
}

#[derive(Clone, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
}

struct Observation {
    service: String,
    method: String,
    start: Instant,
    done: bool,
}

impl Observation {
    fn finish(&mut self, code: &str) {
        if self.done {
            return;
        }
        self.done = true;
        let labels = [
            ("service", self.service.clone()),
            ("method", self.method.clone()),
        ];
        metrics::gauge!("grpc_server_in_flight", "service" => self.service.clone()).decrement(1.0);
        metrics::histogram!("grpc_server_request_duration_seconds", &labels)
            .record(self.start.elapsed().as_secs_f64());
        metrics::counter!(
            "grpc_server_requests_total",
            "service" => self.service.clone(),
            "method" => self.method.clone(),
            "code" => code.to_owned()
        )
        .increment(1);
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        // A stream dropped before its trailers (client went away) still counts.
        self.finish("CANCELLED_OR_DROPPED");
    }
}

impl<S, B> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(req.uri().path());
        metrics::gauge!("grpc_server_in_flight", "service" => service.clone()).increment(1.0);
        let mut obs = Observation {
            service,
            method,
            start: Instant::now(),
            done: false,
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let resp = inner.call(req).await?;
            if let Some(code) = grpc_code(resp.headers()) {
                // Trailers-only response: the outcome is known now.
                obs.finish(&code);
                return Ok(resp);
            }
            let (parts, body) = resp.into_parts();
            let body = ObservedBody { inner: body, obs };
            Ok(http::Response::from_parts(
                parts,
                tonic::body::Body::new(body),
            ))
        })
    }
}

pin_project_lite::pin_project! {
    struct ObservedBody {
        #[pin]
        inner: tonic::body::Body,
        obs: Observation,
    }
}

impl HttpBody for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    this.obs.finish(&code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.obs.finish("STREAM_ERROR"),
            Poll::Ready(None) => this.obs.finish("Ok"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
