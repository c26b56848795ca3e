//! Keeping a link alive across carriers: on each carrier, a control stream each way (heartbeats
//! and delivery reports, [`crate::wire::ControlMessage`]); on the dialing side, a new carrier
//! dialed when the old one ends or stops carrying (no control message for [`WEDGED_AFTER`]
//! while the link lives); and the end of the link once the peer has said nothing for the
//! patience, or closed the carrier itself.

use std::time::Duration;

use iroh::endpoint::{Connection, ConnectionError, Endpoint, RecvStream, VarInt};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::endpoint::{ALPN, PathPolicy, RECOVERY_ALLOWANCE, RelayPlan, peer_addr};
use crate::failover::GoneRelays;
use crate::link::PeerLink;
use crate::mesh::AddressBook;
use crate::wire::{CLOSE_RELAY_GONE, CLOSE_RUN_OVER, CONTROL_STREAM_OPENING, ControlMessage};

/// How often each side speaks on its control stream when it has nothing else to say.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A carrier on which the peer has said nothing for this long has stopped carrying (a path
/// that came back can leave a QUIC connection stuck), so the dialing side dials a new one
/// while the old one may still recover.
pub const WEDGED_AFTER: Duration = Duration::from_secs(5);
/// How long one dial of a new carrier may take before the next begins.
const DIAL_ATTEMPT: Duration = Duration::from_secs(5);
/// The pause between two dials of a new carrier.
const DIAL_PAUSE: Duration = Duration::from_millis(250);

/// How the dialing side of a link reaches its peer again.
#[derive(Debug, Clone)]
pub struct Redial {
    pub endpoint: Endpoint,
    pub relay: RelayPlan,
    /// The relays this party gave up on: dials leave them out.
    pub gone: GoneRelays,
    pub policy: PathPolicy,
    pub addresses: AddressBook,
}

/// Keeps `link` until the returned handle drops: speaks on every carrier's control stream,
/// dials new carriers if `redial` is given (the dialing side), and ends the link once nothing
/// was heard from the peer for `patience` and the [`RECOVERY_ALLOWANCE`] after it (an outage
/// as long as the patience is ridden out).
pub fn keep(link: PeerLink, redial: Option<Redial>, patience: Duration) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(keep_link(link, redial, patience)))
}

async fn keep_link(link: PeerLink, redial: Option<Redial>, patience: Duration) {
    let mut carriers = link.carriers();
    let mut dialing: Option<AbortOnDropHandle<()>> = None;
    loop {
        let carrier = carriers.borrow_and_update().clone();
        let _speaking = AbortOnDropHandle::new(tokio::spawn(speak(
            link.clone(),
            carrier.connection.clone(),
        )));
        let closed = carrier.connection.closed();
        tokio::pin!(closed);
        let mut carrier_over = false;
        let carried_since = Instant::now();
        let mut ticker = tokio::time::interval(HEARTBEAT);
        loop {
            let wants_carrier = tokio::select! {
                changed = carriers.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    dialing = None;
                    break;
                }
                reason = &mut closed, if !carrier_over => {
                    carrier_over = true;
                    if let Some(why) = ending(&reason) {
                        link.end(why);
                        return;
                    }
                    true
                }
                _ = ticker.tick() => {
                    if link.quiet_for() > patience + RECOVERY_ALLOWANCE {
                        link.end("nothing was heard from it for longer than the patience".into());
                        return;
                    }
                    // A new carrier has its own time to carry before it counts as stuck.
                    link.quiet_for().min(carried_since.elapsed()) > WEDGED_AFTER
                }
            };
            // A carrier closed because a newer one replaced it needs no dialing.
            let replaced = carriers.has_changed().unwrap_or(true);
            if wants_carrier && dialing.is_none() && !replaced {
                dialing = redial
                    .clone()
                    .map(|redial| dial_again(link.clone(), redial));
            }
        }
    }
}

/// Why the link is over, if the carrier's end says so: the peer's agent closed it because its
/// run is over. Every other end (a timeout, a reset, an error of the QUIC stack, a handle
/// dropped) calls for a new carrier.
fn ending(reason: &ConnectionError) -> Option<String> {
    match reason {
        ConnectionError::ApplicationClosed(close)
            if close.error_code == VarInt::from_u32(CLOSE_RUN_OVER) =>
        {
            Some("its run is over (it closed the link)".into())
        }
        _ => None,
    }
}

/// Dials the link's peer until a new carrier is up, and hands it to the link. Each attempt
/// names only the relays not given up, after closing a carrier relayed through one that was:
/// iroh sends a new connection's first packets on the path the peer's open connections use.
fn dial_again(link: PeerLink, redial: Redial) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        let started = Instant::now();
        loop {
            if link
                .relay()
                .is_some_and(|relay| redial.gone.contains(&relay))
            {
                tracing::info!(peer = %link.peer, "closing the carrier relayed through a relay given up");
                link.connection()
                    .close(CLOSE_RELAY_GONE.into(), b"its relay is gone");
            }
            let direct = redial
                .addresses
                .borrow()
                .get(&link.peer.key)
                .cloned()
                .unwrap_or_default();
            let relays = redial.gone.remaining(&redial.relay);
            let addr = peer_addr(link.peer.key, &relays, &direct, redial.policy);
            let dialed = tokio::time::timeout(DIAL_ATTEMPT, redial.endpoint.connect(addr, ALPN));
            match dialed.await {
                Ok(Ok(connection)) => {
                    tracing::info!(peer = %link.peer, after = ?started.elapsed(), "a new connection carries the link");
                    link.replace_carrier(connection);
                    return;
                }
                Ok(Err(error)) => {
                    tracing::debug!(peer = %link.peer, %error, "dialing again failed")
                }
                Err(_) => tracing::debug!(peer = %link.peer, "dialing again: no answer yet"),
            }
            tokio::time::sleep(DIAL_PAUSE).await;
        }
    }))
}

/// Speaks on `connection`'s control stream: a heartbeat every [`HEARTBEAT`], and the delivery
/// reports of the link's streams when due, until the carrier ends.
async fn speak(link: PeerLink, connection: Connection) {
    let Err(error) = speak_until_it_fails(&link, &connection).await;
    tracing::debug!(peer = %link.peer, %error, "a control stream ended");
}

async fn speak_until_it_fails(
    link: &PeerLink,
    connection: &Connection,
) -> anyhow::Result<std::convert::Infallible> {
    let mut stream = connection.open_uni().await?;
    stream.write_all(&CONTROL_STREAM_OPENING).await?;
    loop {
        let mut messages = vec![ControlMessage::Heartbeat];
        messages.extend(delivery_reports(link));
        let bytes: Vec<u8> = messages.iter().flat_map(|m| m.to_bytes()).collect();
        stream.write_all(&bytes).await?;
        let _ = tokio::time::timeout(HEARTBEAT, link.report_asked()).await;
    }
}

/// The delivery reports due: every ended stream's last, and one for every live stream that
/// delivered something since its last.
fn delivery_reports(link: &PeerLink) -> Vec<ControlMessage> {
    link.streams()
        .take_reports()
        .into_iter()
        .map(|(stream, delivered)| ControlMessage::Delivered { stream, delivered })
        .collect()
}

/// Reads the peer's control stream (its kind byte already read) until it ends: every message
/// counts as the peer speaking; delivery reports confirm bytes of the link's streams. A
/// malformed message or an impossible report ends the stream (logged).
pub async fn listen(link: PeerLink, mut stream: RecvStream) {
    let mut bytes = [0u8; ControlMessage::LEN];
    while stream.read_exact(&mut bytes).await.is_ok() {
        let message = match ControlMessage::parse(&bytes) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(peer = %link.peer, %error, "refused a malformed control message");
                break;
            }
        };
        link.peer_spoke();
        let ControlMessage::Delivered {
            stream: number,
            delivered,
        } = message
        else {
            continue;
        };
        let state = link.streams().live.get(&number).cloned();
        if let Some(state) = state
            && let Err(error) = state.confirm(delivered)
        {
            tracing::warn!(peer = %link.peer, number, %error, "refused an impossible delivery report");
            break;
        }
    }
    let _ = stream.stop(crate::wire::STOP_REFUSED.into());
}
