//! Prometheus metrics: a per-request layer (count, latency, in-flight, gRPC codes) and the
//! admin HTTP endpoint that serves them.

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, OnceLock, RwLock},
    task::{Context, Poll},
    time::Instant,
};

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

/// The `service` and `method` labels of a request path.
fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_owned();
    let method = parts.next().unwrap_or_default().to_owned();
    (service, method)
}

/// The `code` label of each gRPC status number, as `tonic::Code`'s `Debug` spells it.
const CODE_NAMES: [&str; 17] = [
    "Ok",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The gRPC status of a response as an index into [`CODE_NAMES`], if it is known yet; an
/// unknown number counts as `Unknown`, as `tonic::Code::from_i32` maps it.
fn grpc_code(headers: &http::HeaderMap) -> Option<usize> {
    let raw = headers.get("grpc-status")?.to_str().ok()?;
    let code = raw.parse::<i32>().ok()?;
    Some(
        usize::try_from(code)
            .ok()
            .filter(|c| *c < CODE_NAMES.len())
            .unwrap_or(2),
    )
}

/// One method's metric handles, registered once: looking a metric up by name and labels on
/// every request (hashing, label allocations, the registry's lock) cost more than recording.
struct MethodMetrics {
    service: String,
    method: String,
    in_flight: metrics::Gauge,
    duration: metrics::Histogram,
    codes: [OnceLock<metrics::Counter>; CODE_NAMES.len()],
}

impl MethodMetrics {
    fn new(path: &str) -> Self {
        let (service, method) = split_path(path);
        let labels = [("service", service.clone()), ("method", method.clone())];
        Self {
            in_flight: metrics::gauge!("grpc_server_in_flight", "service" => service.clone()),
            duration: metrics::histogram!("grpc_server_request_duration_seconds", &labels),
            codes: Default::default(),
            service,
            method,
        }
    }

    fn requests(&self, code: &str) -> metrics::Counter {
        metrics::counter!(
            "grpc_server_requests_total",
            "service" => self.service.clone(),
            "method" => self.method.clone(),
            "code" => code.to_owned()
        )
    }

    fn count(&self, code: Outcome) {
        match code {
            Outcome::Code(i) => self.codes[i]
                .get_or_init(|| self.requests(CODE_NAMES[i]))
                .increment(1),
            Outcome::Other(label) => self.requests(label).increment(1),
        }
    }
}

/// Handles by request path. Paths come from callers, so the table is bounded: past
/// [`MAX_CACHED_PATHS`] a path's handles are registered per request, as they used to be.
#[derive(Default)]
struct Handles {
    by_path: RwLock<HashMap<Box<str>, Arc<MethodMetrics>, crate::cache::FastHash>>,
}

const MAX_CACHED_PATHS: usize = 4096;

impl Handles {
    fn get(&self, path: &str) -> Arc<MethodMetrics> {
        let read = self.by_path.read().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = read.get(path) {
            return m.clone();
        }
        let full = read.len() >= MAX_CACHED_PATHS;
        drop(read);
        let m = Arc::new(MethodMetrics::new(path));
        if !full {
            let mut write = self.by_path.write().unwrap_or_else(|p| p.into_inner());
            return write.entry(path.into()).or_insert(m).clone();
        }
        m
    }
}

#[derive(Clone, Default)]
pub struct MetricsLayer {
    handles: Arc<Handles>,
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            handles: self.handles.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    handles: Arc<Handles>,
}

#[derive(Clone, Copy)]
enum Outcome {
    Code(usize),
    Other(&'static str),
}

struct Observation {
    metrics: Arc<MethodMetrics>,
    start: Instant,
    done: bool,
}

impl Observation {
    fn finish(&mut self, code: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        self.metrics.in_flight.decrement(1.0);
        self.metrics
            .duration
            .record(self.start.elapsed().as_secs_f64());
        self.metrics.count(code);
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        // A stream dropped before its trailers (client went away) still counts.
        self.finish(Outcome::Other("CANCELLED_OR_DROPPED"));
    }
}

impl<S, B> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let metrics = self.handles.get(req.uri().path());
        metrics.in_flight.increment(1.0);
        let obs = Observation {
            metrics,
            start: Instant::now(),
            done: false,
        };
        MetricsFuture {
            inner: self.inner.call(req),
            obs: Some(obs),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, observed; a named future, not a boxed one, as this runs on every
    /// call. Dropped before the response (client gone), its observation counts the call.
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        obs: Option<Observation>,
    }
}

impl<F, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = std::task::ready!(this.inner.poll(cx))?;
        let Some(mut obs) = this.obs.take() else {
            return Poll::Ready(Ok(resp));
        };
        if let Some(code) = grpc_code(resp.headers()) {
            // Trailers-only response: the outcome is known now.
            obs.finish(Outcome::Code(code));
            return Poll::Ready(Ok(resp));
        }
        let (parts, body) = resp.into_parts();
        let body = ObservedBody { inner: body, obs };
        Poll::Ready(Ok(http::Response::from_parts(
            parts,
            tonic::body::Body::new(body),
        )))
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
                    this.obs.finish(Outcome::Code(code));
                }
            }
            Poll::Ready(Some(Err(_))) => this.obs.finish(Outcome::Other("STREAM_ERROR")),
            Poll::Ready(None) => this.obs.finish(Outcome::Code(0)),
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

/// Counts `n` repairs of `kind` by a reconciler, in the one family every service's
/// reconciler shares: `reconciler_repaired_total{kind}`.
pub fn count_repaired(kind: &'static str, n: u64) {
    ::metrics::counter!("reconciler_repaired_total", "kind" => kind).increment(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_labels_match_tonic() {
        for (i, name) in CODE_NAMES.iter().enumerate() {
            let code = tonic::Code::from_i32(i32::try_from(i).unwrap());
            assert_eq!(format!("{code:?}"), *name);
        }
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(grpc_code(&h), Some(5));
        h.insert("grpc-status", http::HeaderValue::from_static("99"));
        assert_eq!(grpc_code(&h), Some(2), "unknown numbers count as Unknown");
    }

    #[test]
    fn handles_are_shared_per_path_and_bounded() {
        let handles = Handles::default();
        let a = handles.get("/pkg.Svc/A");
        assert!(Arc::ptr_eq(&a, &handles.get("/pkg.Svc/A")));
        assert_eq!((a.service.as_str(), a.method.as_str()), ("pkg.Svc", "A"));
        for i in 0..MAX_CACHED_PATHS + 10 {
            handles.get(&format!("/pkg.Svc/M{i}"));
        }
        assert_eq!(
            handles.by_path.read().unwrap().len(),
            MAX_CACHED_PATHS,
            "callers cannot grow the table without bound"
        );
    }
}
