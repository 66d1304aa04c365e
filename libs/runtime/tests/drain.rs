//! SIGTERM: the server stops taking new calls, lets an in-flight call finish, and cuts a
//! stream still open at the drain deadline instead of hanging. One test per process: it
//! signals its own process.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use salestrainer_runtime::{
    Role, app,
    auth::{JwtVerifier, TokenMinter},
    server::{ServerBuilder, shutdown_signal},
    settings::ServerSettings,
};
use tonic::{Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse, health_client::HealthClient};
use tonic_prost::ProstCodec;

const SLOW_CALL: Duration = Duration::from_millis(1500);

/// A unary method that takes a while: the stand-in for any in-flight call.
#[derive(Clone)]
struct Slow;

impl tonic::server::NamedService for Slow {
    const NAME: &'static str = "test.Slow";
}

struct SlowCheck;

impl tonic::server::UnaryService<HealthCheckRequest> for SlowCheck {
    type Response = HealthCheckResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<HealthCheckResponse>, Status>>;
    fn call(&mut self, _req: tonic::Request<HealthCheckRequest>) -> Self::Future {
        Box::pin(async {
            tokio::time::sleep(SLOW_CALL).await;
            Ok(tonic::Response::new(HealthCheckResponse { status: 1 }))
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Slow {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
            Ok(grpc.unary(SlowCheck, req).await)
        })
    }
}

async fn slow_call(channel: Channel, token: String) -> Result<HealthCheckResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let path = http::uri::PathAndQuery::from_static("/test.Slow/Check");
    Ok(grpc
        .unary(req, path, ProstCodec::default())
        .await?
        .into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_calls_and_refuses_new_ones() {
    // Install the SIGTERM handler before anything can send the signal.
    let _guard = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();

    let secret = b"drain-test-secret";
    let verifier = Arc::new(JwtVerifier::new(Some(secret), &[], "").unwrap());
    let token = TokenMinter::new(secret, "")
        .mint("t", "o", Role::Admin, 600)
        .unwrap();
    let settings = ServerSettings {
        drain_deadline_ms: 2_000,
        ..ServerSettings::default()
    };
    let mut server = ServerBuilder::new(settings, verifier).await;
    server.add_service(Slow).await;
    let starter: app::Starter =
        Box::new(|readiness| Box::pin(async move { readiness.set_serving("test.Slow").await }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(app::run_until(
        server,
        vec![starter],
        listener,
        shutdown_signal(),
    ));

    let connect = || async move {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
    };
    let channel = connect().await.unwrap();
    let mut health = HealthClient::new(channel.clone());
    // Wait for SERVING.
    for _ in 0..200 {
        let r = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        if r.map(|r| r.into_inner().status == 1).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // An open stream that would never end on its own.
    let watch_channel = connect().await.unwrap();
    let mut watch = HealthClient::new(watch_channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(watch.message().await.unwrap().is_some());

    let in_flight = tokio::spawn(slow_call(channel.clone(), token.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // New connections are refused once draining has begun.
    assert!(
        connect().await.is_err(),
        "a new connection was accepted while draining"
    );

    // The call that was in flight completes normally.
    let answer = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("in-flight call hung")
        .unwrap()
        .expect("in-flight call failed during drain");
    assert_eq!(answer.status, 1);

    // The open stream does not hold shutdown beyond the drain deadline.
    let stopped = tokio::time::timeout(Duration::from_secs(6), server)
        .await
        .expect("server did not stop: an open stream held shutdown");
    stopped.unwrap().unwrap();
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_millis(4_500),
        "shutdown took {took:?}"
    );
    // The stream was ended by the server, not left dangling.
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = watch.message().await {}
    })
    .await;
    assert!(ended.is_ok(), "watch stream still open after shutdown");
}
