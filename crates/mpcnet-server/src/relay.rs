//! The embedded iroh relay: it forwards end-to-end encrypted packets between lobby members
//! that cannot reach each other directly, and QUIC address discovery tells each party its
//! public address. Only keys that joined a live lobby are admitted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use iroh_relay::KeyCache;
use iroh_relay::server::http_server::{Handlers, RelayService};
use iroh_relay::server::{Access, AccessControl, ClientRequest, QuicConfig, Server, ServerConfig};
use mpcnet_proto::PublicKey;

use crate::metrics::Metrics;
use crate::store::Store;

/// How many client keys the relay keeps parsed.
const KEY_CACHE_CAPACITY: usize = 1024;

/// Admits an endpoint to the relay only if its key is a member of a live lobby.
#[derive(Debug)]
pub struct MemberAccess {
    store: Store,
    metrics: Arc<Metrics>,
}

impl AccessControl for MemberAccess {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let endpoint = request.endpoint_id();
        let store = self.store.clone();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let member = tokio::task::spawn_blocking(move || {
            let key = PublicKey::from_bytes(endpoint.as_bytes()).ok()?;
            store.is_member(&key, now).ok()
        })
        .await
        .ok()
        .flatten();
        let (access, outcome) = match member {
            Some(true) => (Access::Allow, "admitted"),
            Some(false) => (
                Access::Deny {
                    reason: Some("not a member of a live mpcnet lobby".into()),
                },
                "refused",
            ),
            None => (
                Access::Deny {
                    reason: Some("membership check failed".into()),
                },
                "error",
            ),
        };
        Metrics::count(&self.metrics.relay_admissions, outcome);
        tracing::debug!(endpoint = %endpoint.fmt_short(), outcome, "relay connection");
        access
    }
}

/// The relay's HTTP service, to be mounted at `/relay` of the HTTPS listener.
pub fn relay_service(store: Store, metrics: Arc<Metrics>) -> RelayService {
    RelayService::new(
        Handlers::default(),
        http::HeaderMap::new(),
        None,
        KeyCache::new(KEY_CACHE_CAPACITY),
        Arc::new(MemberAccess { store, metrics }),
        Arc::new(iroh_relay::server::Metrics::default()),
    )
}

/// Starts QUIC address discovery on UDP `address`; the returned server stops when dropped.
pub async fn spawn_address_discovery(
    address: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Server, iroh_relay::server::SpawnError> {
    let mut quic = QuicConfig::new(address);
    quic.server_config = Some((*tls).clone());
    let mut config = ServerConfig::default();
    config.quic = Some(quic);
    Server::spawn(config).await
}
