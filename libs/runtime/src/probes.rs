//! Health checks go around the overload guards (load shedding, the concurrency limit) and
//! auth; the message limit, outside this split, still applies to them. Kubernetes' gRPC
//! probes and Envoy's active health checks call `grpc.health.v1.Health/Check` on the serving
//! port: if a saturated server shed them, readiness would pull the pod out of the Service
//! exactly when its peers need it most, and liveness would restart it mid-load. A probe is a
//! tiny public request answered from memory, so it has nothing to guard against.

use std::task::{Context, Poll};

use futures::{
    TryFutureExt,
    future::{Either, MapErr},
};

/// The path prefix of every health RPC (Check and Watch).
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Wraps the inner service twice: `guards` around it for every request, nothing for health.
#[derive(Clone)]
pub struct ProbesBypassLayer<L> {
    guards: L,
}

impl<L> ProbesBypassLayer<L> {
    pub fn new(guards: L) -> Self {
        Self { guards }
    }
}

impl<S: Clone, L: tower::Layer<S>> tower::Layer<S> for ProbesBypassLayer<L> {
    type Service = ProbesBypass<S, L::Service>;
    fn layer(&self, inner: S) -> Self::Service {
        ProbesBypass {
            probes: inner.clone(),
            guarded: self.guards.layer(inner),
        }
    }
}

#[derive(Clone)]
pub struct ProbesBypass<P, G> {
    probes: P,
    guarded: G,
}

impl<P, G, B> tower::Service<http::Request<B>> for ProbesBypass<P, G>
where
    P: tower::Service<http::Request<B>>,
    G: tower::Service<http::Request<B>, Response = P::Response>,
    P::Error: Into<tower::BoxError>,
    G::Error: Into<tower::BoxError>,
{
    type Response = P::Response;
    type Error = tower::BoxError;
    type Future = Either<
        MapErr<P::Future, fn(P::Error) -> tower::BoxError>,
        MapErr<G::Future, fn(G::Error) -> tower::BoxError>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both must be ready, whichever the next request takes. The guarded side sheds load
        // in `call` (it is always ready), and the routes are always ready.
        match self.guarded.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.probes.poll_ready(cx).map_err(Into::into),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path().starts_with(HEALTH_PREFIX) {
            Either::Left(self.probes.call(req).map_err(Into::into as fn(_) -> _))
        } else {
            Either::Right(self.guarded.call(req).map_err(Into::into as fn(_) -> _))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, Service, ServiceBuilder, ServiceExt};

    use super::*;

    async fn answer(req: http::Request<()>) -> Result<String, Infallible> {
        Ok(req.uri().path().to_owned())
    }

    #[tokio::test]
    async fn health_goes_around_a_full_guard_and_the_rest_is_shed() {
        // A concurrency limit of 0 is always full: every guarded request is shed.
        let guards = ServiceBuilder::new()
            .load_shed()
            .concurrency_limit(0)
            .into_inner();
        let mut svc = ProbesBypassLayer::new(guards).layer(tower::service_fn(answer));
        let req = |path: &str| http::Request::builder().uri(path).body(()).unwrap();

        let health = svc
            .ready()
            .await
            .unwrap()
            .call(req("/grpc.health.v1.Health/Check"))
            .await;
        assert_eq!(health.unwrap(), "/grpc.health.v1.Health/Check");
        let watch = svc
            .ready()
            .await
            .unwrap()
            .call(req("/grpc.health.v1.Health/Watch"))
            .await;
        assert!(watch.is_ok());

        for path in [
            "/salestrainer.config.v1.ConfigService/GetPersona",
            // Only the prefix with its slash: a look-alike service is guarded.
            "/grpc.health.v1.HealthX/Check",
            "/grpc.health.v1.Health",
        ] {
            let shed = svc.ready().await.unwrap().call(req(path)).await;
            let err = shed.expect_err(path);
            assert!(
                err.is::<tower::load_shed::error::Overloaded>(),
                "{path}: {err}"
            );
        }
    }
}
