//! A live link to one peer: the authenticated QUIC connection, byte counters, how it is routed
//! right now (direct or relayed, with RTT) and how long since the peer was last heard, for
//! progress lines and `mpcnet status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

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

/// A link silent this long counts as unreachable: an idle link keeps hearing its peer's
/// acknowledgements of the keep-alive pings at least every [`crate::endpoint::LINK_KEEP_ALIVE`].
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(4);

/// An established link.
#[derive(Debug, Clone)]
pub struct PeerLink {
    pub peer: Peer,
    pub connection: Connection,
    pub counters: Arc<Counters>,
    heard: Arc<Mutex<Heard>>,
}

/// When the peer was last heard from: the link's count of received datagrams, and when it
/// last grew.
#[derive(Debug)]
struct Heard {
    datagrams: u64,
    at: Instant,
}

impl PeerLink {
    pub fn new(peer: Peer, connection: Connection) -> Self {
        let heard = Heard {
            datagrams: connection.stats().udp_rx.datagrams,
            at: Instant::now(),
        };
        Self {
            peer,
            connection,
            counters: Arc::default(),
            heard: Arc::new(Mutex::new(heard)),
        }
    }

    /// How long since a datagram from the peer last arrived (as far as this call can tell:
    /// it looks at the count now).
    pub fn silence(&self) -> Duration {
        let datagrams = self.connection.stats().udp_rx.datagrams;
        let mut heard = self
            .heard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if datagrams != heard.datagrams {
            *heard = Heard {
                datagrams,
                at: Instant::now(),
            };
        }
        heard.at.elapsed()
    }

    /// How long the peer has been unreachable, if it is (silent [`UNREACHABLE_AFTER`] or more).
    pub fn unreachable_for(&self) -> Option<Duration> {
        Some(self.silence()).filter(|silence| *silence >= UNREACHABLE_AFTER)
    }

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
        let unreachable = self.unreachable_for();
        let state = match (self.connection.close_reason(), unreachable) {
            (Some(_), _) => "closed",
            (None, Some(_)) => "unreachable",
            (None, None) => "connected",
        };
        LinkReport {
            index: self.peer.index,
            name: self.peer.name.clone(),
            state: state.into(),
            route,
            rtt_ms: rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
            bytes_sent: self.counters.sent.load(Ordering::Relaxed),
            bytes_received: self.counters.received.load(Ordering::Relaxed),
            unreachable_s: unreachable.map(|silence| silence.as_secs()),
        }
    }
}
