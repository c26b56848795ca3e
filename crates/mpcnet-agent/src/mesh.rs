//! Linking up with every other party: dial each higher-numbered peer, accept each lower-numbered
//! one (MPyC's own direction), and close any connection from a key outside the manifest before
//! it can open a stream. Once linked, a new connection from a lower-numbered peer is that
//! link's new carrier (the peer dialed again).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::Endpoint;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::endpoint::{ALPN, PathPolicy, RelayPlan, peer_addr};
use crate::link::{Peer, PeerLink};
use crate::wire::{CLOSE_NOT_A_PARTY, CLOSE_REPLACED, CLOSE_RUN_OVER};

/// How long a dialer waits for the peer's announcement before trying the relay alone.
const ANNOUNCEMENT_GRACE: Duration = Duration::from_secs(3);

/// Direct addresses of peers, as announced through the lobby (updated while linking).
pub type AddressBook = watch::Receiver<HashMap<iroh::PublicKey, Vec<SocketAddr>>>;

/// Some parties could not be linked before the deadline.
#[derive(Debug, thiserror::Error)]
#[error("could not link with {} within {waited:.1?}: {}", missing.len(), missing.join("; "))]
pub struct MeshError {
    /// One entry per missing party: who, and the last error seen.
    pub missing: Vec<String>,
    pub waited: Duration,
}

/// Who links with whom, and how.
#[derive(Debug, Clone, Copy)]
pub struct MeshPlan<'a> {
    pub endpoint: &'a Endpoint,
    pub me: u16,
    /// Every other party.
    pub peers: &'a [Peer],
    pub relay: &'a RelayPlan,
    pub policy: PathPolicy,
}

/// Every link of the run, and the task that keeps accepting connections for as long as this
/// lives: new carriers from linked peers, strangers refused.
#[derive(Debug)]
pub struct Mesh {
    pub links: Vec<PeerLink>,
    _refusing: AbortOnDropHandle<()>,
}

/// The run is over: every carrier closes saying so, and the peers end their links.
impl Drop for Mesh {
    fn drop(&mut self) {
        for link in &self.links {
            link.connection()
                .close(CLOSE_RUN_OVER.into(), b"this party's run is over");
        }
    }
}

/// Links with every peer, or fails at `deadline` naming the parties that did not link.
/// `on_link` is called as each link comes up.
pub async fn link_all(
    plan: MeshPlan<'_>,
    addresses: AddressBook,
    deadline: Instant,
    on_link: impl Fn(&PeerLink),
) -> Result<Mesh, MeshError> {
    let MeshPlan {
        endpoint,
        me,
        peers,
        relay,
        policy,
    } = plan;
    let started = Instant::now();
    let (sender, mut arrived) =
        mpsc::channel::<Result<PeerLink, (Peer, String)>>(peers.len().max(1));
    let lower: HashMap<iroh::PublicKey, Peer> = peers
        .iter()
        .filter(|peer| peer.index < me)
        .map(|peer| (peer.key, peer.clone()))
        .collect();
    let mut dialers = tokio::task::JoinSet::new();
    for peer in peers.iter().filter(|peer| peer.index > me).cloned() {
        let (endpoint, relay, addresses, sender) = (
            endpoint.clone(),
            relay.clone(),
            addresses.clone(),
            sender.clone(),
        );
        dialers.spawn(async move {
            let result = dial(&endpoint, &peer, &relay, policy, addresses, deadline).await;
            let _ = sender.send(result.map_err(|why| (peer, why))).await;
        });
    }
    drop(sender);

    let mut links: HashMap<u16, PeerLink> = HashMap::new();
    let mut errors: HashMap<u16, String> = HashMap::new();
    let linked: Linked = Arc::default();
    let (mut incoming, refusing) = accept_from(endpoint.clone(), lower, linked.clone());
    while links.len() < peers.len() {
        let link = tokio::select! {
            Some(result) = arrived.recv() => match result {
                Ok(link) => link,
                Err((peer, why)) => { errors.insert(peer.index, why); continue; }
            },
            Some(link) = incoming.recv() => link,
            () = tokio::time::sleep_until(deadline) => break,
        };
        on_link(&link);
        if let Some(replaced) = links.insert(link.peer.index, link) {
            replaced
                .connection()
                .close(CLOSE_REPLACED.into(), b"replaced by a newer connection");
        }
    }
    if links.len() == peers.len() {
        let mut links: Vec<PeerLink> = links.into_values().collect();
        *linked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = links
            .iter()
            .map(|link| (link.peer.key, link.clone()))
            .collect();
        links.sort_by_key(|link| link.peer.index);
        return Ok(Mesh {
            links,
            _refusing: refusing,
        });
    }
    let missing = peers
        .iter()
        .filter(|peer| !links.contains_key(&peer.index))
        .map(|peer| match errors.get(&peer.index) {
            Some(why) => format!("{peer}: {why}"),
            None if peer.index < me => {
                format!("{peer}: it never connected (is its `mpcnet run` started?)")
            }
            None => format!("{peer}: not reached"),
        })
        .collect();
    Err(MeshError {
        missing,
        waited: started.elapsed(),
    })
}

/// Dials `peer` until it answers or `deadline` passes; returns the last error on failure.
///
/// Except in relay-only mode the first attempt waits until the peer has announced its direct
/// addresses (at most [`ANNOUNCEMENT_GRACE`]): before that its endpoint may not exist yet, and a
/// handshake sent into the void is only retried after QUIC's retransmission timeout. New
/// addresses also cut a pause between attempts short.
async fn dial(
    endpoint: &Endpoint,
    peer: &Peer,
    relay: &RelayPlan,
    policy: PathPolicy,
    mut addresses: AddressBook,
    deadline: Instant,
) -> Result<PeerLink, String> {
    let announced = |book: &HashMap<iroh::PublicKey, Vec<SocketAddr>>| book.contains_key(&peer.key);
    if policy != PathPolicy::RelayOnly {
        let grace = ANNOUNCEMENT_GRACE.min(deadline.saturating_duration_since(Instant::now()));
        let _ = tokio::time::timeout(grace, addresses.wait_for(announced)).await;
    }
    let mut last_error = String::from("no answer");
    let mut pause = Duration::from_millis(50);
    while Instant::now() < deadline {
        let direct = addresses
            .borrow_and_update()
            .get(&peer.key)
            .cloned()
            .unwrap_or_default();
        if policy == PathPolicy::DirectOnly && direct.is_empty() {
            last_error = "its direct addresses are not announced yet".into();
        } else {
            let addr = peer_addr(peer.key, relay, &direct, policy);
            let attempt = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(10));
            match tokio::time::timeout(attempt, endpoint.connect(addr, ALPN)).await {
                Ok(Ok(connection)) => return Ok(PeerLink::new(peer.clone(), connection)),
                Ok(Err(error)) => last_error = error.to_string(),
                Err(_) => last_error = format!("no answer within {attempt:.1?}"),
            }
        }
        let sleep = pause.min(deadline.saturating_duration_since(Instant::now()));
        let _ = tokio::time::timeout(sleep, addresses.changed()).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
    Err(last_error)
}

/// The links of a linked mesh by peer key (empty while linking).
type Linked = Arc<std::sync::Mutex<HashMap<iroh::PublicKey, PeerLink>>>;

/// Accepts connections until the returned task is dropped. Those from `expected` keys become
/// new carriers of their `linked` link once there is one, and are sent on the returned channel
/// before; every other connection is closed at once, before any stream. Each handshake runs in
/// a task of the accepting task's own.
fn accept_from(
    endpoint: Endpoint,
    expected: HashMap<iroh::PublicKey, Peer>,
    linked: Linked,
) -> (mpsc::Receiver<PeerLink>, AbortOnDropHandle<()>) {
    let (sender, receiver) = mpsc::channel(expected.len().max(1));
    let accepting = tokio::spawn(async move {
        let expected = Arc::new(expected);
        let mut handshakes = tokio::task::JoinSet::new();
        while let Some(incoming) = endpoint.accept().await {
            while handshakes.try_join_next().is_some() {}
            let (expected, sender, linked) = (expected.clone(), sender.clone(), linked.clone());
            handshakes.spawn(async move {
                let connection = match incoming.await {
                    Ok(connection) => connection,
                    Err(error) => {
                        tracing::debug!(%error, "incoming connection failed its handshake");
                        return;
                    }
                };
                let remote = connection.remote_id();
                let link = crate::lock(&linked).get(&remote).cloned();
                match (expected.get(&remote), link) {
                    (Some(_), Some(link)) => {
                        tracing::info!(peer = %link.peer, "the peer dialed again: a new connection carries the link");
                        link.replace_carrier(connection);
                    }
                    (Some(peer), None) => {
                        let _ = sender.send(PeerLink::new(peer.clone(), connection)).await;
                    }
                    (None, _) => {
                        tracing::warn!(key = %remote.fmt_short(), "refused a connection from a key that is not a party of this session");
                        connection.close(CLOSE_NOT_A_PARTY.into(), b"not a party of this session");
                    }
                }
            });
        }
    });
    (receiver, AbortOnDropHandle::new(accepting))
}
