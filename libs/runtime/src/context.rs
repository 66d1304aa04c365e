//! What a mounted service gets from its process: settings, the event bus, the Redis pool,
//! service identity for calls to its peers, and the shutdown signal of background work.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use salestrainer_bus::{
    CancellationToken, InProcessOptions, InProcessTransport, RedisOptions, RedisStreamsTransport,
    Relay, RelayNotifier, RelayOptions, Transport,
};
use sea_orm::DatabaseConnection;
use tonic::{service::Interceptor, transport::Channel};

use crate::{Settings, auth::TokenMinter};

/// The services a peer call can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Config,
    Call,
    Grading,
    Analytics,
}

#[derive(Clone)]
pub struct Context {
    pub settings: Settings,
    pub bus: Arc<dyn Transport>,
    pub redis: Option<deadpool_redis::Pool>,
    pub minter: TokenMinter,
    /// Cancelled at shutdown: relays, consumers and workers stop on it.
    pub shutdown: CancellationToken,
    /// Where this process serves; peers without a configured endpoint are reached here.
    pub local_addr: SocketAddr,
    /// Stable consumer name for bus consumer groups (host name, else process id).
    pub consumer: String,
}

impl Context {
    /// Builds the bus from settings: Redis Streams when a Redis URL is set, else in-process.
    pub fn new(
        settings: Settings,
        minter: TokenMinter,
        local_addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let (bus, redis): (Arc<dyn Transport>, _) = match settings.redis_url() {
            Some(url) => {
                let transport = RedisStreamsTransport::from_url(url, RedisOptions::default())?;
                let pool = transport.pool().clone();
                (Arc::new(transport), Some(pool))
            }
            None => (
                Arc::new(InProcessTransport::new(InProcessOptions::default())),
                None,
            ),
        };
        let consumer = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("pid-{}", std::process::id()));
        Ok(Self {
            settings,
            bus,
            redis,
            minter,
            shutdown: CancellationToken::new(),
            local_addr,
            consumer,
        })
    }

    /// A lazily connected channel to `peer`: its configured endpoint, else this process.
    pub fn peer_channel(&self, peer: Peer) -> anyhow::Result<Channel> {
        let e = &self.settings.endpoints;
        let configured = match peer {
            Peer::Config => &e.config,
            Peer::Call => &e.call,
            Peer::Grading => &e.grading,
            Peer::Analytics => &e.analytics,
        };
        let uri = if configured.is_empty() {
            format!("http://{}", self.local_addr)
        } else {
            configured.clone()
        };
        Ok(Channel::from_shared(uri)?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .connect_lazy())
    }

    /// Interceptor that authenticates calls to peers as `service` and carries the trace.
    pub fn service_auth(&self, service: &'static str) -> ServiceAuth {
        ServiceAuth {
            minter: self.minter.clone(),
            service,
        }
    }

    /// Starts the outbox relay of `service`'s database; `replay_after_loss_secs` is the
    /// service's setting (see [`Context::relay_options`]).
    pub fn start_relay(
        &self,
        service: &str,
        db: DatabaseConnection,
        replay_after_loss_secs: u64,
    ) -> RelayNotifier {
        let (notifier, _handle) = Relay::start(
            db,
            self.bus.clone(),
            self.relay_options(service, replay_after_loss_secs),
            self.shutdown.clone(),
        );
        notifier
    }

    /// The relay options of `service`: it checks under the service's name that the bus kept
    /// what it published, and publishes again what a Redis restarted without persistence lost:
    /// the events sent within the last `replay_after_loss_secs` (0: none).
    pub fn relay_options(&self, service: &str, replay_after_loss_secs: u64) -> RelayOptions {
        RelayOptions {
            loss_marker: Some(format!("relay:{service}")),
            replay_after_loss: Duration::from_secs(replay_after_loss_secs),
            ..RelayOptions::default()
        }
    }
}

/// Adds a freshly minted service token and the current trace context to each peer call.
#[derive(Clone)]
pub struct ServiceAuth {
    minter: TokenMinter,
    service: &'static str,
}

impl Interceptor for ServiceAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let token = self
            .minter
            .service_token(self.service)
            .map_err(|_| tonic::Status::internal("cannot mint a service token"))?;
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| tonic::Status::internal("invalid service token"))?;
        req.metadata_mut().insert("authorization", value);
        crate::telemetry::inject_into_metadata(req.metadata_mut());
        Ok(req)
    }
}
