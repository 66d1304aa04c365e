//! The gRPC server every service runs on: health (NOT_SERVING until the service says it is
//! ready), reflection, gRPC-Web over HTTP/1.1, plain HTTP routes (webhooks), a default
//! deadline, a global concurrency limit with load shedding, a per-message size limit, JWT
//! auth (health checks go around the shedding, the limit and auth: `probes`), metrics,
//! tracing, and a graceful drain bounded by a deadline.

use std::{collections::HashSet, convert::Infallible, future::Future, sync::Arc, time::Duration};

use futures::TryStreamExt;
use tokio::{net::TcpListener, sync::Mutex};
use tonic::{
    body::Body,
    server::NamedService,
    service::{Routes, RoutesBuilder},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::ServiceBuilder;

use crate::{
    auth::{AuthLayer, AuthPolicy, JwtVerifier},
    conn::CoalescingStream,
    drain::DrainLayer,
    limits::MessageLimitLayer,
    metrics::MetricsLayer,
    probes::ProbesBypassLayer,
    settings::ServerSettings,
    telemetry::TraceLayer,
};

/// Tracks which services have finished starting; the overall health (`""`) turns SERVING
/// only when every one has.
#[derive(Clone)]
pub struct Readiness {
    reporter: HealthReporter,
    pending: Arc<Mutex<HashSet<String>>>,
    all: Arc<Vec<String>>,
    all_ready: tokio::sync::watch::Sender<bool>,
}

impl Readiness {
    pub async fn set_serving(&self, service: &str) {
        self.reporter
            .set_service_status(service, ServingStatus::Serving)
            .await;
        let mut pending = self.pending.lock().await;
        pending.remove(service);
        if pending.is_empty() {
            self.reporter
                .set_service_status("", ServingStatus::Serving)
                .await;
            self.all_ready.send_replace(true);
        }
    }

    /// Resolves once every service has reported SERVING.
    pub async fn wait_all(&self) {
        let mut rx = self.all_ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    async fn set_all_not_serving(&self) {
        self.reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for name in self.all.iter() {
            self.reporter
                .set_service_status(name.as_str(), ServingStatus::NotServing)
                .await;
        }
    }
}

pub struct ServerBuilder {
    settings: ServerSettings,
    routes: RoutesBuilder,
    http: axum::Router,
    policy: AuthPolicy,
    verifier: Arc<JwtVerifier>,
    reporter: HealthReporter,
    services: Vec<String>,
    descriptor_sets: Vec<&'static [u8]>,
    memberships: Option<Arc<dyn crate::access::Memberships>>,
}

impl ServerBuilder {
    pub async fn new(settings: ServerSettings, verifier: Arc<JwtVerifier>) -> Self {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        let mut routes = RoutesBuilder::default();
        routes.add_service(health);
        Self {
            settings,
            routes,
            http: axum::Router::new(),
            policy: AuthPolicy::new(),
            verifier,
            reporter,
            services: Vec::new(),
            descriptor_sets: vec![tonic_health::pb::FILE_DESCRIPTOR_SET],
            memberships: None,
        }
    }

    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// Adds a gRPC service; its health is NOT_SERVING until [`Readiness::set_serving`].
    pub async fn add_service<S>(&mut self, svc: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.reporter
            .set_service_status(S::NAME, ServingStatus::NotServing)
            .await;
        self.services.push(S::NAME.to_owned());
        self.routes.add_service(svc);
        self
    }

    /// Plain HTTP routes under `prefix` that authenticate themselves (webhook signatures).
    pub fn add_http_routes(&mut self, prefix: &str, router: axum::Router) -> &mut Self {
        self.policy.public_prefix(prefix);
        self.http = std::mem::take(&mut self.http).merge(router);
        self
    }

    /// Public plain HTTP routes (the console): `router` serves the exact `paths` and
    /// everything under `prefixes` without a token.
    pub fn add_public_http_routes(
        &mut self,
        paths: &[&str],
        prefixes: &[&str],
        router: axum::Router,
    ) -> &mut Self {
        for path in paths {
            self.policy.public_path(*path);
        }
        for prefix in prefixes {
            self.policy.public_prefix(*prefix);
        }
        self.http = std::mem::take(&mut self.http).merge(router);
        self
    }

    /// Where callers' roles come from: every user request is then checked against the stored
    /// membership (see [`crate::access`]). The first source set serves the whole process.
    pub fn memberships(&mut self, source: Arc<dyn crate::access::Memberships>) -> &mut Self {
        self.memberships.get_or_insert(source);
        self
    }

    /// Replaces the membership source, whichever was set: the membership store's own service
    /// (config) answers for the whole server.
    pub fn replace_memberships(
        &mut self,
        source: Arc<dyn crate::access::Memberships>,
    ) -> &mut Self {
        self.memberships = Some(source);
        self
    }

    pub fn has_memberships(&self) -> bool {
        self.memberships.is_some()
    }

    /// A `/package.Service/Method` path callable only with a service identity.
    pub fn internal_method(&mut self, path: &str) -> &mut Self {
        self.policy.internal_method(path);
        self
    }

    /// Adds an encoded `FileDescriptorSet` to what reflection serves.
    pub fn file_descriptor_set(&mut self, bytes: &'static [u8]) -> &mut Self {
        self.descriptor_sets.push(bytes);
        self
    }

    pub fn readiness(&self) -> Readiness {
        Readiness {
            reporter: self.reporter.clone(),
            pending: Arc::new(Mutex::new(self.services.iter().cloned().collect())),
            all: Arc::new(self.services.clone()),
            all_ready: tokio::sync::watch::Sender::new(self.services.is_empty()),
        }
    }

    /// Serves until `shutdown` resolves, then drains: health turns NOT_SERVING, the listener
    /// closes, in-flight calls finish, and anything still open after the drain deadline is cut.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        readiness: Readiness,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut reflection = tonic_reflection::server::Builder::configure();
        let mut reflection_alpha = tonic_reflection::server::Builder::configure();
        for set in &self.descriptor_sets {
            reflection = reflection.register_encoded_file_descriptor_set(set);
            reflection_alpha = reflection_alpha.register_encoded_file_descriptor_set(set);
        }
        self.routes.add_service(reflection.build_v1()?);
        self.routes.add_service(reflection_alpha.build_v1alpha()?);

        let router = self.routes.routes().into_axum_router().merge(self.http);
        let routes = Routes::from(router);

        let cut = tokio_util::sync::CancellationToken::new();
        let stack = ServiceBuilder::new()
            .map_request(plain_http1_passes_grpc_web)
            .layer(tonic_web::GrpcWebLayer::new())
            // A span per request only when spans are exported: otherwise it was created (and
            // formatted by the log layer at `info`) on every call for nobody.
            .option_layer(crate::telemetry::exporting().then_some(TraceLayer))
            .layer(MetricsLayer::default())
            .layer(DrainLayer::new(cut.clone()))
            .layer(MessageLimitLayer::new(self.settings.max_message_bytes))
            .layer(ProbesBypassLayer::new(
                ServiceBuilder::new()
                    .load_shed()
                    .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                        self.settings.concurrency_limit,
                    ))
                    .layer(AuthLayer::new(
                        self.verifier.clone(),
                        self.policy.clone(),
                        self.memberships.clone(),
                    ))
                    .into_inner(),
            ))
            .into_inner();

        let drain_deadline = self.settings.drain_deadline();
        let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: draining in-flight calls");
            readiness.set_all_not_serving().await;
            let _ = drain_tx.send(());
        };

        let serve = tonic::transport::Server::builder()
            .accept_http1(true)
            .timeout(self.settings.request_timeout())
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(stack)
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY a response's last small frame waits ~40 ms for the
                // peer's delayed ACK (Nagle), on every call.
                tonic::transport::server::TcpIncoming::from(listener)
                    .with_nodelay(Some(true))
                    .map_ok(CoalescingStream::new),
                signal,
            );
        tokio::pin!(serve);

        let deadline = async move {
            if drain_rx.await.is_ok() {
                tokio::time::sleep(drain_deadline).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = &mut serve => result?,
            () = deadline => {
                tracing::warn!(
                    deadline_ms = drain_deadline.as_millis() as u64,
                    "drain deadline passed; ending the streams still open"
                );
                cut.cancel();
                // Streams now end with UNAVAILABLE; give connections a moment to flush that.
                if tokio::time::timeout(Duration::from_secs(1), &mut serve).await.is_err() {
                    tracing::warn!("connections still open after the cut; closing them");
                }
            }
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// The gRPC-Web layer answers 400 to any HTTP/1.1 request that is not gRPC-Web, which would
/// make the plain HTTP routes (webhooks, sent over HTTP/1.1) unreachable. Marking such a
/// request as HTTP/2 makes the layer pass it through untouched; nothing downstream reads the
/// version, and the connection still answers in HTTP/1.1.
fn plain_http1_passes_grpc_web(mut req: http::Request<Body>) -> http::Request<Body> {
    let grpc_web = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc-web"));
    if req.version() != http::Version::HTTP_2 && !grpc_web {
        *req.version_mut() = http::Version::HTTP_2;
    }
    req
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
