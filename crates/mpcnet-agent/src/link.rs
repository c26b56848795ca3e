//! A live link to one peer: the authenticated QUIC connection, byte counters, and how it is
//! routed right now (direct or relayed, with RTT), for progress lines and `mpcnet status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iroh::endpoint::Connection;
pub use mpcnet_proto::link_report::{LinkReport, Route};

/// A party of the session other than this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub index: u16,
    pub name: String,
    pub key: iroh::PublicKey,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "party {} ({})", self.index, self.name)
    }
}

/// Bytes moved between MPyC and a peer, counted by the forwards.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// An established link.
#[derive(Debug, Clone)]
pub struct PeerLink {
    pub peer: Peer,
    pub connection: Connection,
    pub counters: Arc<Counters>,
}

impl PeerLink {
    /// The selected path and its RTT.
    pub fn route(&self) -> (Route, Option<Duration>) {
        let paths = self.connection.paths();
        let Some(path) = paths.iter().find(|path| path.is_selected()) else {
            return (Route::None, None);
        };
        let route = match path.remote_addr() {
            iroh::TransportAddr::Ip(address) => Route::Direct(address.to_string()),
            iroh::TransportAddr::Relay(url) => Route::Relay(url.to_string()),
            other => Route::Direct(other.to_string()),
        };
        (route, Some(path.rtt()))
    }

    /// The link as a status line.
    pub fn report(&self) -> LinkReport {
        let (route, rtt) = self.route();
        let state = match self.connection.close_reason() {
            Some(_) => "closed",
            None => "connected",
        };
        LinkReport {
            index: self.peer.index,
            name: self.peer.name.clone(),
            state: state.into(),
            route,
            rtt_ms: rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
            bytes_sent: self.counters.sent.load(Ordering::Relaxed),
            bytes_received: self.counters.received.load(Ordering::Relaxed),
        }
    }
}
