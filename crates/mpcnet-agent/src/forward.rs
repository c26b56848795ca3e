//! Forwards between MPyC's connections (Unix sockets of the run's directory,
//! [`crate::sockets`]) and the streams of peer links ([`crate::stream`]).
//!
//! Outgoing: MPyC connects to the local forward socket of a higher-numbered peer; each connection
//! becomes a stream of the link, numbered by this side, opened on the link's carrier (the link
//! exists before MPyC starts) and on every carrier after it. Incoming: on each carrier of a link
//! from a lower-numbered peer, a stream opening either continues a stream this side already
//! has (handed to it) or starts a new one, which is delivered to MPyC's own listening socket
//! (retrying until MPyC listens: parties start at slightly different times) once its first two
//! bytes have arrived and name the peer: on the leg that started it, or on a later one if that
//! leg ends or brings nothing for [`HEADER_TIMEOUT`].
//!
//! The bytes on a stream are described in [`crate::wire`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{RecvStream, SendStream};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::endpoint::MAX_MPYC_STREAMS_PER_LINK;
use crate::link::PeerLink;
use crate::stream::{self, End, Leg, StreamState};
use crate::wire::{
    Position, RESET_LEG_ABANDONED, RESET_LOCAL_BROKE, STOP_REFUSED, StreamAnswer, StreamOpening,
};

/// How long a peer has to send a leg's opening, and MPyC's first two bytes after it on a new
/// stream's leg. The peer's agent writes the opening as it opens the leg and its MPyC sends its
/// id as soon as it connects, so they follow within a round trip. A leg still without its
/// opening holds a stream slot and a task for nothing, and is refused; one still without the
/// id after its opening is given up, and the id is read from the stream's next leg: a carrier
/// whose relay dies goes silent without closing, and the id comes again on the next carrier.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often delivery retries while MPyC is not listening yet.
const DELIVERY_RETRY: Duration = Duration::from_millis(20);

/// Serves MPyC's connections to `link`'s peer: each connection accepted on `listener` becomes
/// one stream of the link. Runs until the link ends.
pub async fn serve_outgoing(listener: UnixListener, link: PeerLink, pumps: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = link.ended() => return,
        };
        let mpyc = match accepted {
            Ok((mpyc, _)) => mpyc,
            Err(error) => {
                tracing::warn!(peer = %link.peer, %error, "local accept failed");
                continue;
            }
        };
        let state = Arc::new(StreamState::default());
        let number = {
            let mut streams = link.streams();
            let number = streams.next;
            streams.next += 1;
            streams.live.insert(number, state.clone());
            number
        };
        pumps.spawn(stream::run(
            link.clone(),
            number,
            mpyc,
            state,
            End::Opener,
            None,
        ));
    }
}

/// Delivers `link`'s incoming streams to MPyC listening on the socket `mpyc_socket`, each waiting
/// up to `patience` for MPyC to listen, on every carrier of the link until it ends.
///
/// MPyC learns who connects from the first two bytes of the connection (the party id, u16 LE)
/// and believes them. A stream is delivered only if those bytes name the peer at the other end
/// of this authenticated link, so no party can speak to MPyC as another.
pub async fn deliver_incoming(
    link: PeerLink,
    mpyc_socket: PathBuf,
    patience: Duration,
    pumps: TaskTracker,
) {
    let receiving = Receiving {
        link: link.clone(),
        mpyc_socket: Arc::from(mpyc_socket),
        patience,
        legs: Arc::default(),
    };
    let mut carriers = link.carriers();
    loop {
        let connection = carriers.borrow_and_update().connection.clone();
        loop {
            let accepted = tokio::select! {
                accepted = connection.accept_bi() => accepted,
                changed = carriers.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return,
                },
                _ = link.ended() => return,
            };
            let Ok((send, recv)) = accepted else {
                // This carrier is over: wait for the next.
                if carriers.changed().await.is_err() {
                    return;
                }
                break;
            };
            let receiving = receiving.clone();
            let connection = connection.clone();
            pumps.spawn(async move { receiving.take(send, recv, connection).await });
        }
    }
}

/// Where the legs of the receiving side's live streams go, by stream number.
type Legs = std::collections::HashMap<u32, mpsc::Sender<Leg>>;

/// What the receiving side of a link needs to take a stream opening.
#[derive(Clone)]
struct Receiving {
    link: PeerLink,
    mpyc_socket: Arc<Path>,
    patience: Duration,
    /// Where the legs of this side's live streams go, by stream number.
    legs: Arc<std::sync::Mutex<Legs>>,
}

impl Receiving {
    /// Reads a stream opening and hands the leg to its stream, or starts a new stream, or
    /// refuses it.
    async fn take(
        &self,
        send: SendStream,
        mut recv: RecvStream,
        connection: iroh::endpoint::Connection,
    ) {
        let Some(opening) = read_opening(&mut recv, &self.link).await else {
            let _ = recv.stop(STOP_REFUSED.into());
            return;
        };
        let mut leg = Leg {
            send,
            recv,
            connection,
            peer_delivered: opening.delivered,
        };
        let handed = self.legs_mut().get(&opening.stream).cloned();
        if let Some(legs) = handed {
            let _ = legs.send(leg).await;
            return;
        }
        if self.link.streams().used(opening.stream) {
            // A stream this side had, now over: it broke (a finished one is never resumed).
            stream::give_up(&mut leg.send, &mut leg.recv, RESET_LOCAL_BROKE);
            return;
        }
        self.start(opening.stream, leg).await;
    }

    /// A new stream: answers that nothing is delivered yet, checks MPyC's first two bytes,
    /// connects to MPyC and runs the stream. Its later legs find it from the moment it is
    /// admitted: a carrier may end while MPyC is not listening yet.
    async fn start(&self, number: u32, mut leg: Leg) {
        let link = &self.link;
        let admitted = (leg.peer_delivered == Position::default())
            .then(|| self.admit(number))
            .flatten();
        let Some((_registered, mut handed)) = admitted else {
            tracing::warn!(peer = %link.peer, number, "refused a stream opening out of place");
            let _ = leg.recv.stop(STOP_REFUSED.into());
            return;
        };
        let Some(id) = self.party_id(&mut leg, &mut handed).await else {
            return;
        };
        let deadline = Instant::now() + self.patience;
        let mut mpyc = match connect_when_listening(&self.mpyc_socket, deadline).await {
            Ok(mpyc) => mpyc,
            Err(error) => {
                tracing::warn!(peer = %link.peer, %error, "MPyC never listened on its socket");
                return;
            }
        };
        if mpyc.write_all(&id).await.is_err() {
            return;
        }
        let state = Arc::new(StreamState::default());
        state.delivered_more(id.len());
        link.streams().live.insert(number, state.clone());
        let end = End::Receiver(handed);
        stream::run(link.clone(), number, mpyc, state, end, Some(leg)).await;
    }

    /// Answers `leg` that nothing is delivered yet and reads MPyC's first two bytes from it,
    /// checked; if the leg brings nothing (its carrier ended, or went silent), gives it up and
    /// reads them from the stream's next leg.
    async fn party_id(&self, leg: &mut Leg, handed: &mut mpsc::Receiver<Leg>) -> Option<[u8; 2]> {
        let answer = StreamAnswer {
            delivered: Position::default(),
        };
        loop {
            if leg.send.write_all(&answer.to_bytes()).await.is_ok() {
                match read_party_id(&mut leg.recv, &self.link).await {
                    Ok(id) => return Some(id),
                    Err(HeaderFailure::LegLost) => {}
                    Err(HeaderFailure::Refused) => {
                        let _ = leg.recv.stop(STOP_REFUSED.into());
                        return None;
                    }
                }
            }
            stream::give_up(&mut leg.send, &mut leg.recv, RESET_LEG_ABANDONED);
            let next = tokio::time::timeout(self.patience, handed.recv()).await;
            *leg = next.ok().flatten()?;
        }
    }

    /// Takes `number` as one of the peer's new streams if it is one and there is room for it
    /// (streams count from their admission), and registers where its later legs go until the
    /// returned registration drops.
    fn admit(&self, number: u32) -> Option<(Registered, mpsc::Receiver<Leg>)> {
        let mut legs = self.legs_mut();
        let room = legs.len() < MAX_MPYC_STREAMS_PER_LINK as usize;
        if !room || !self.link.streams().take_new(number) {
            return None;
        }
        let (leg_sender, handed) = mpsc::channel(1);
        legs.insert(number, leg_sender);
        drop(legs);
        let registered = Registered {
            legs: self.legs.clone(),
            number,
        };
        Some((registered, handed))
    }

    fn legs_mut(&self) -> std::sync::MutexGuard<'_, Legs> {
        crate::lock(&self.legs)
    }
}

/// A receiving stream's entry in [`Receiving::legs`], removed when the stream is over (or never
/// got going): its legs have nowhere to go then.
struct Registered {
    legs: Arc<std::sync::Mutex<Legs>>,
    number: u32,
}

impl Drop for Registered {
    fn drop(&mut self) {
        crate::lock(&self.legs).remove(&self.number);
    }
}

/// Why a stream's first bytes were not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderFailure {
    /// The leg brought nothing more: it ended (its carrier did, or the peer reset it), or
    /// nothing came for [`HEADER_TIMEOUT`] (its carrier may have gone silent).
    LegLost,
    /// Not what it must be: the stream is refused.
    Refused,
}

/// The stream's opening, if it arrives within [`HEADER_TIMEOUT`] and is one; `None` (logged)
/// otherwise.
async fn read_opening(recv: &mut RecvStream, link: &PeerLink) -> Option<StreamOpening> {
    let mut bytes = [0u8; StreamOpening::LEN];
    let bytes = read_within(recv, &mut bytes, link).await.ok()?;
    match StreamOpening::parse(bytes) {
        Ok(opening) => Some(opening),
        Err(error) => {
            tracing::warn!(peer = %link.peer, %error, "refused a stream with a malformed opening");
            None
        }
    }
}

/// MPyC's first two bytes on a new stream's leg, if they come within [`HEADER_TIMEOUT`] and
/// name the link's own peer; why not (logged) otherwise.
async fn read_party_id(recv: &mut RecvStream, link: &PeerLink) -> Result<[u8; 2], HeaderFailure> {
    let mut bytes = [0u8; 2];
    let bytes = *read_within(recv, &mut bytes, link).await?;
    let claimed = u16::from_le_bytes(bytes);
    if claimed != link.peer.index {
        tracing::warn!(peer = %link.peer, claimed, "refused a stream claiming another party's id");
        return Err(HeaderFailure::Refused);
    }
    Ok(bytes)
}

/// Fills `bytes` from `recv` within [`HEADER_TIMEOUT`] (failures logged).
async fn read_within<'a, const N: usize>(
    recv: &mut RecvStream,
    bytes: &'a mut [u8; N],
    link: &PeerLink,
) -> Result<&'a [u8; N], HeaderFailure> {
    match tokio::time::timeout(HEADER_TIMEOUT, recv.read_exact(bytes)).await {
        Ok(Ok(())) => Ok(bytes),
        Ok(Err(error)) => {
            tracing::warn!(peer = %link.peer, %error, "a stream's leg ended before its first bytes");
            Err(HeaderFailure::LegLost)
        }
        Err(_) => {
            tracing::warn!(peer = %link.peer, "a stream's leg brought no first bytes within {HEADER_TIMEOUT:?}");
            Err(HeaderFailure::LegLost)
        }
    }
}

async fn connect_when_listening(socket: &Path, deadline: Instant) -> std::io::Result<UnixStream> {
    loop {
        match UnixStream::connect(socket).await {
            Ok(mpyc) => return Ok(mpyc),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(DELIVERY_RETRY).await,
        }
    }
}
