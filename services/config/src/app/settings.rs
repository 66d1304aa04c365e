//! The config service's own settings: the `[config]` section of the settings file, or
//! `SALESTRAINER_CONFIG__*` environment variables.

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigSettings {
    /// Standard base64 of the 32-byte key that encrypts stored provider keys
    /// (`openssl rand -base64 32`). Empty: a key generated into `data_dir/credential-kek.key`
    /// on first start (embedded mode).
    pub credential_kek: String,
    /// How long the read cache (memberships, content rows) trusts an entry when no
    /// ConfigChanged says otherwise, in milliseconds; 0 turns the cache off.
    pub cache_ttl_ms: u64,
    /// Serve the browser console (`salestrainer-console`) at `/` beside the gRPC API, public,
    /// without development sign-in: on where the gateway routes `/` to this service
    /// (distributed mode). `salestrainer up` serves its own console and keeps this off.
    pub serve_console: bool,
    /// Distributed mode: when Redis is found to have lost its data (restarted without
    /// persistence), the outbox relay sends again the events it sent this many seconds back
    /// (consumers' inboxes drop the ones they had); 0 sends none.
    pub relay_replay_after_loss_secs: u64,
}

impl Default for ConfigSettings {
    fn default() -> Self {
        Self {
            credential_kek: String::new(),
            cache_ttl_ms: 30_000,
            serve_console: false,
            relay_replay_after_loss_secs: salestrainer_bus::REPLAY_AFTER_LOSS_SECS,
        }
    }
}

// By hand so the key never reaches a log line.
impl std::fmt::Debug for ConfigSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSettings")
            .field(
                "credential_kek_set",
                &!self.credential_kek.trim().is_empty(),
            )
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("serve_console", &self.serve_console)
            .field(
                "relay_replay_after_loss_secs",
                &self.relay_replay_after_loss_secs,
            )
            .finish()
    }
}
