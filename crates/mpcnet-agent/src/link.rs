//! A link to one peer for the whole run: the carrier that carries it now (an authenticated QUIC
//! connection, replaced by a newer one when it ends while both agents live), the link's streams,
//! byte counters, its route, how long since the peer was last heard, and, once it is over, why.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use iroh::endpoint::Connection;
pub use mpcnet_proto::link_report::{LinkReport, Route};

use crate::endpoint::MAX_MPYC_STREAMS_PER_LINK;
use crate::lock;
use crate::resume::Position;
use crate::stream::StreamState;
use crate::wire::CLOSE_REPLACED;

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

/// Bytes moved between MPyC and a peer, counted by the forwards (each byte once, however many
/// carriers it crossed).
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// A link silent this long counts as unreachable: an idle link keeps hearing its peer's
/// acknowledgements of the keep-alive pings at least every [`crate::endpoint::LINK_KEEP_ALIVE`].
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(4);

/// The QUIC connection carrying a link now, and its number (0 for the first, counting up).
#[derive(Debug, Clone)]
pub struct Carrier {
    pub connection: Connection,
    pub number: u64,
}

/// A link: cheap to clone, every clone the same link.
#[derive(Debug, Clone)]
pub struct PeerLink {
    pub peer: Peer,
    pub counters: Arc<Counters>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    carrier: watch::Sender<Carrier>,
    heard: Mutex<Heard>,
    /// When the peer's agent last spoke on a control stream (any carrier).
    spoke: Mutex<Instant>,
    /// Why the link is over, once it is.
    ended: watch::Sender<Option<String>>,
    streams: Mutex<Streams>,
    /// Wakes the control sender: a delivery report is due now.
    report_due: Notify,
}

/// When the peer was last heard from: the carrier's count of received datagrams, and when it
/// last grew.
#[derive(Debug)]
struct Heard {
    carrier: u64,
    datagrams: u64,
    at: Instant,
}

/// The link's live streams by number, and the numbers given out so far.
#[derive(Debug, Default)]
pub struct Streams {
    pub live: HashMap<u32, Arc<StreamState>>,
    /// The next number this side gives out, or the lowest the peer has not used yet.
    pub next: u32,
    /// The peer's numbers below `next` not used yet: its streams' openings may arrive out of
    /// order (each stream is independent in QUIC).
    skipped: BTreeSet<u32>,
    /// The last delivery report of each stream that ended before the control sender took it:
    /// the peer's side of the stream waits for it (its end confirmed) before it is done.
    unsent_final_reports: Vec<(u32, Position)>,
}

impl Streams {
    /// Forgets the ended stream `number`, keeping its last delivery report, if not sent yet,
    /// for the control sender; true if there is one.
    pub fn forget(&mut self, number: u32, state: &StreamState) -> bool {
        self.live.remove(&number);
        let report = state.take_report();
        if let Some(delivered) = report {
            self.unsent_final_reports.push((number, delivered));
        }
        report.is_some()
    }

    /// The delivery reports due: those of ended streams, then those of live streams that
    /// delivered something since their last.
    pub fn take_reports(&mut self) -> Vec<(u32, Position)> {
        let mut reports = std::mem::take(&mut self.unsent_final_reports);
        reports.extend(self.live.iter().filter_map(|(number, state)| {
            state.take_report().map(|delivered| (*number, delivered))
        }));
        reports
    }

    /// Takes `number` as one of the peer's new streams: false if it was used already, or lies
    /// further ahead than the peer's streams can be.
    pub fn take_new(&mut self, number: u32) -> bool {
        if number < self.next {
            return self.skipped.remove(&number);
        }
        let limit = MAX_MPYC_STREAMS_PER_LINK as usize;
        if (number - self.next) as usize + self.skipped.len() > limit {
            return false;
        }
        self.skipped.extend(self.next..number);
        self.next = number + 1;
        true
    }

    /// Whether the peer used `number` already (the stream may be over).
    pub fn used(&self, number: u32) -> bool {
        number < self.next && !self.skipped.contains(&number)
    }
}

impl PeerLink {
    pub fn new(peer: Peer, connection: Connection) -> Self {
        let heard = Heard {
            carrier: 0,
            datagrams: connection.stats().udp_rx.datagrams,
            at: Instant::now(),
        };
        let (carrier, _) = watch::channel(Carrier {
            connection,
            number: 0,
        });
        let shared = Shared {
            carrier,
            heard: Mutex::new(heard),
            spoke: Mutex::new(Instant::now()),
            ended: watch::channel(None).0,
            streams: Mutex::default(),
            report_due: Notify::new(),
        };
        Self {
            peer,
            counters: Arc::default(),
            shared: Arc::new(shared),
        }
    }

    /// The connection carrying the link now.
    pub fn connection(&self) -> Connection {
        self.shared.carrier.borrow().connection.clone()
    }

    /// The carrier now, and a way to wait for the next.
    pub fn carriers(&self) -> watch::Receiver<Carrier> {
        self.shared.carrier.subscribe()
    }

    /// Takes `connection` (from the link's peer) as the link's carrier and closes the one it
    /// replaces, so that every stream on it stops and resumes on the new one.
    pub fn replace_carrier(&self, connection: Connection) {
        let mut old = None;
        self.shared.carrier.send_modify(|carrier| {
            let number = carrier.number + 1;
            let previous = std::mem::replace(carrier, Carrier { connection, number });
            old = Some(previous.connection);
        });
        if let Some(old) = old {
            old.close(CLOSE_REPLACED.into(), b"replaced by a newer connection");
        }
    }

    /// How many times a newer carrier took the link over.
    pub fn reconnections(&self) -> u64 {
        self.shared.carrier.borrow().number
    }

    /// The peer's agent spoke on a control stream just now.
    pub fn peer_spoke(&self) {
        *lock(&self.shared.spoke) = Instant::now();
    }

    /// How long since the peer's agent last spoke on a control stream.
    pub fn quiet_for(&self) -> Duration {
        lock(&self.shared.spoke).elapsed()
    }

    /// Marks the link over for `reason` (the first reason given stays).
    pub fn end(&self, reason: String) {
        self.shared.ended.send_if_modified(|ended| {
            let first = ended.is_none();
            if first {
                *ended = Some(reason);
            }
            first
        });
    }

    /// Why the link is over, if it is.
    pub fn ended_for(&self) -> Option<String> {
        self.shared.ended.borrow().clone()
    }

    /// Waits until the link is over; returns why.
    pub async fn ended(&self) -> String {
        let mut ended = self.shared.ended.subscribe();
        let reason = ended
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    }

    /// The link's streams, locked.
    pub fn streams(&self) -> MutexGuard<'_, Streams> {
        lock(&self.shared.streams)
    }

    /// Asks the control sender to send delivery reports now rather than on its next beat.
    pub fn report_soon(&self) {
        self.shared.report_due.notify_one();
    }

    /// Resolves when [`Self::report_soon`] was asked.
    pub async fn report_asked(&self) {
        self.shared.report_due.notified().await;
    }

    /// How long since a datagram from the peer last arrived on the current carrier (as far as
    /// this call can tell: it looks at the count now).
    pub fn silence(&self) -> Duration {
        let carrier = self.shared.carrier.borrow().clone();
        let datagrams = carrier.connection.stats().udp_rx.datagrams;
        let mut heard = lock(&self.shared.heard);
        if carrier.number != heard.carrier || datagrams != heard.datagrams {
            *heard = Heard {
                carrier: carrier.number,
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

    /// The relay the carrier's selected path goes through, if it is relayed.
    pub fn relay(&self) -> Option<iroh::RelayUrl> {
        let connection = self.connection();
        let paths = connection.paths();
        let path = paths.iter().find(|path| path.is_selected())?;
        match path.remote_addr() {
            iroh::TransportAddr::Relay(url) => Some(url.clone()),
            _ => None,
        }
    }

    /// The selected path and its RTT.
    pub fn route(&self) -> (Route, Option<Duration>) {
        let connection = self.connection();
        let paths = connection.paths();
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

    /// Logs what the carrier moved: UDP datagrams and the frames in them (`--log
    /// mpcnet_agent::link=info`; `scripts/perf-breakdown.sh` counts them per MPyC message).
    pub fn log_traffic(&self) {
        let stats = self.connection().stats();
        tracing::info!(
            peer = %self.peer,
            datagrams_sent = stats.udp_tx.datagrams,
            datagrams_received = stats.udp_rx.datagrams,
            stream_frames_sent = stats.frame_tx.stream,
            ack_frames_sent = stats.frame_tx.acks + stats.frame_tx.path_acks,
            pings_sent = stats.frame_tx.ping,
            "the carrier's traffic"
        );
    }

    /// The link as a status line.
    pub fn report(&self) -> LinkReport {
        let (route, rtt) = self.route();
        let unreachable = self.unreachable_for();
        let state = match (self.ended_for(), unreachable) {
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
            reconnections: self.reconnections(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_stream_numbers_are_taken_once_in_any_order() {
        let mut streams = Streams::default();
        assert!(
            streams.take_new(2),
            "a number ahead, its openings overtaken"
        );
        assert!(!streams.used(0) && !streams.used(1) && streams.used(2));
        assert!(streams.take_new(0) && streams.take_new(1));
        assert!(!streams.take_new(0) && !streams.take_new(1) && !streams.take_new(2));
        assert!(streams.used(0) && streams.used(1));
        assert!(streams.take_new(3));
    }

    #[test]
    fn the_peer_cannot_make_the_skipped_numbers_grow_without_bound() {
        let mut streams = Streams::default();
        let limit = MAX_MPYC_STREAMS_PER_LINK;
        assert!(!streams.take_new(limit + 1), "a number too far ahead");
        assert!(streams.take_new(limit));
        assert!(
            !streams.take_new(limit + 2),
            "more skipped numbers than streams"
        );
        assert!(streams.take_new(limit + 1));
    }
}
