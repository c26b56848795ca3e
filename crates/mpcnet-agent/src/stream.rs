//! One MPyC connection as a stream of a link: pumped both ways over whichever carrier the
//! link has, taken up on the next carrier at the exact byte when one ends ([`crate::resume`]
//! keeps the positions; the bytes on the wire are in [`crate::wire`]). Each read is written on
//! at once, with no batching.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iroh::endpoint::{Connection, ReadError, ReadExactError, RecvStream, SendStream, WriteError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};

use crate::link::PeerLink;
use crate::lock;
use crate::resume::{Incoming, Outgoing, REPLAY_BOUND};
use crate::wire::{Position, RESET_LEG_ABANDONED, RESET_LOCAL_BROKE, StreamAnswer, StreamOpening};

/// The largest piece moved in one step.
const CHUNK: usize = 64 * 1024;
/// How long the receiver of a stream opening has to answer it.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an opener waits before trying again to open a stream on a carrier that lives.
const REOPEN_PAUSE: Duration = Duration::from_secs(1);

/// What each side keeps of a stream across carriers: the positions of both directions and the
/// bytes the peer has not confirmed.
#[derive(Debug)]
pub struct StreamState {
    outgoing: Mutex<Outgoing>,
    incoming: Mutex<Incoming>,
    /// Confirmations came: there may be room to read MPyC again, or the end is confirmed.
    confirmed: Notify,
}

impl Default for StreamState {
    fn default() -> Self {
        Self {
            outgoing: Mutex::new(Outgoing::new(REPLAY_BOUND)),
            incoming: Mutex::default(),
            confirmed: Notify::new(),
        }
    }
}

impl StreamState {
    /// The peer reports it has delivered up to `position` of this side's direction.
    pub fn confirm(&self, position: Position) -> Result<(), crate::resume::ResumeError> {
        lock(&self.outgoing).confirm(position)?;
        self.confirmed.notify_waiters();
        Ok(())
    }

    /// What this side has delivered of the peer's direction.
    pub fn delivered(&self) -> Position {
        lock(&self.incoming).position()
    }

    /// The delivery report to send now, if anything was delivered since the last one.
    pub fn take_report(&self) -> Option<Position> {
        let mut incoming = lock(&self.incoming);
        incoming.has_news().then(|| incoming.report())
    }

    /// Counts `bytes` handed to MPyC; true if the sender should hear of it now.
    pub(crate) fn delivered_more(&self, bytes: usize) -> bool {
        let mut incoming = lock(&self.incoming);
        incoming.delivered(bytes);
        incoming.report_due(REPLAY_BOUND)
    }

    /// Waits until MPyC's bytes may be taken again (the replay buffer has room); returns how
    /// many.
    async fn room(&self) -> usize {
        self.once_confirmed(|outgoing| Some(outgoing.room()).filter(|room| *room > 0))
            .await
    }

    /// Waits until the peer has confirmed this side's end.
    async fn end_confirmed(&self) {
        self.once_confirmed(|outgoing| outgoing.is_done().then_some(()))
            .await;
    }

    /// Waits until `ready` says yes of the outgoing side, looking again after each
    /// confirmation. The wake-up is enabled before each look: `notify_waiters` wakes only
    /// waiters that exist, so a confirmation between the look and the wait is not missed.
    async fn once_confirmed<T>(&self, ready: impl Fn(&Outgoing) -> Option<T>) -> T {
        loop {
            let confirmed = self.confirmed.notified();
            tokio::pin!(confirmed);
            confirmed.as_mut().enable();
            if let Some(value) = ready(&lock(&self.outgoing)) {
                return value;
            }
            confirmed.await;
        }
    }
}

/// A QUIC stream of one carrier for an MPyC stream, with what the peer has delivered of this
/// side's direction (this side sends from there).
#[derive(Debug)]
pub struct Leg {
    pub send: SendStream,
    pub recv: RecvStream,
    /// The carrier the leg is on.
    pub connection: Connection,
    pub peer_delivered: Position,
}

/// Which end of the stream this side is, and so how it gets the stream's next leg.
#[derive(Debug)]
pub enum End {
    /// The side that numbered the stream: it opens a leg on each new carrier.
    Opener,
    /// The other side: legs come from the link's acceptor, after it read their opening.
    Receiver(mpsc::Receiver<Leg>),
}

/// How a stream's time on one carrier ended.
#[derive(Debug)]
enum LegEnd {
    /// Both directions ended and this side's end is confirmed.
    Done,
    /// MPyC's connection (here or at the peer) broke, or the peer broke the protocol.
    Broken,
    /// The carrier ended: go on with the next.
    CarrierLost,
}

/// Runs stream `number` of `link` for MPyC's connection `mpyc` (a socket of the run's
/// directory) over carrier after carrier, starting with `first` if given, until it is done or
/// broken or the link ends. Forgets it in the link then.
pub async fn run(
    link: PeerLink,
    number: u32,
    mpyc: UnixStream,
    state: Arc<StreamState>,
    mut end: End,
    first: Option<Leg>,
) {
    let (mut mpyc_read, mut mpyc_write) = mpyc.into_split();
    let mut next = first;
    loop {
        let leg = match next.take() {
            Some(leg) => leg,
            None => {
                let got = tokio::select! {
                    leg = next_leg(&link, number, &state, &mut end) => leg,
                    _ = link.ended() => None,
                };
                match got {
                    Some(leg) => leg,
                    None => break,
                }
            }
        };
        let Leg {
            mut send,
            mut recv,
            connection,
            peer_delivered,
        } = leg;
        tracing::debug!(
            peer = %link.peer, number, delivered = ?state.delivered(), ?peer_delivered,
            sent = ?lock(&state.outgoing).sent(), "a stream takes a new leg"
        );
        let ended = match replay(&mut send, &state, peer_delivered).await {
            Err(ended) => ended,
            Ok(()) => {
                let pumps = Pumps {
                    state: &state,
                    link: &link,
                    connection: &connection,
                };
                pumps
                    .run(&mut mpyc_read, &mut mpyc_write, &mut send, &mut recv)
                    .await
            }
        };
        tracing::debug!(peer = %link.peer, number, ?ended, "a stream's leg ended");
        match ended {
            LegEnd::Done => break,
            LegEnd::CarrierLost => {
                give_up(&mut send, &mut recv, RESET_LEG_ABANDONED);
                continue;
            }
            LegEnd::Broken => {
                give_up(&mut send, &mut recv, RESET_LOCAL_BROKE);
                break;
            }
        }
    }
    // The peer's side waits for this side's last report (its end confirmed): a stream that
    // ends before the control sender took it must not take it along.
    if link.streams().forget(number, &state) {
        link.report_soon();
    }
}

/// Gives a leg up both ways with `code`: [`RESET_LEG_ABANDONED`] (the stream goes on on
/// another leg) or [`RESET_LOCAL_BROKE`] (it broke). Never just dropped: a QUIC stream dropped
/// unreset finishes cleanly, which the peer would take for the end of MPyC's connection.
pub(crate) fn give_up(send: &mut SendStream, recv: &mut RecvStream, code: u32) {
    let _ = send.reset(code.into());
    let _ = recv.stop(code.into());
}

/// The stream's next leg: opened by this side (the opener), or handed over by the acceptor.
/// `None` if there will be none.
async fn next_leg(link: &PeerLink, number: u32, state: &StreamState, end: &mut End) -> Option<Leg> {
    let handed = match end {
        End::Receiver(legs) => legs.recv().await?,
        End::Opener => return open_leg(link, number, state).await,
    };
    let mut leg = handed;
    let answer = StreamAnswer {
        delivered: state.delivered(),
    };
    match leg.send.write_all(&answer.to_bytes()).await {
        Ok(()) => Some(leg),
        // The carrier ended under the answer: the next leg comes on the next carrier.
        Err(_) => {
            give_up(&mut leg.send, &mut leg.recv, RESET_LEG_ABANDONED);
            Box::pin(next_leg(link, number, state, end)).await
        }
    }
}

/// Opens the stream on the link's carrier, says what this side has delivered and reads what
/// the peer has; on a carrier that has closed it waits for the next one, and on a live one it
/// tries again after [`REOPEN_PAUSE`] (a leg can end while its carrier lives: the peer gave it
/// up, or never answered). `None` if the peer says the stream broke.
async fn open_leg(link: &PeerLink, number: u32, state: &StreamState) -> Option<Leg> {
    let mut carriers = link.carriers();
    loop {
        let carrier = carriers.borrow_and_update().clone();
        if carrier.connection.close_reason().is_some() {
            carriers.changed().await.ok()?;
            continue;
        }
        let opening = StreamOpening {
            stream: number,
            delivered: state.delivered(),
        };
        match open_on(&carrier.connection, opening).await {
            Opened::Leg(leg) => return Some(leg),
            Opened::Broken => return None,
            Opened::Failed(why) => {
                tracing::debug!(peer = %link.peer, number, %why, "cannot open the stream on this carrier");
            }
        }
        let _ = tokio::time::timeout(REOPEN_PAUSE, carriers.changed()).await;
    }
}

/// How opening a leg went.
enum Opened {
    Leg(Leg),
    /// The peer reset or stopped the stream: it broke on its side.
    Broken,
    Failed(String),
}

/// Opens a leg on `connection` with `opening` and reads the peer's answer (within
/// [`ANSWER_TIMEOUT`]; a leg given up is reset).
async fn open_on(connection: &Connection, opening: StreamOpening) -> Opened {
    let opened = tokio::time::timeout(ANSWER_TIMEOUT, connection.open_bi()).await;
    let (mut send, mut recv) = match opened {
        Ok(Ok(streams)) => streams,
        Ok(Err(error)) => return Opened::Failed(error.to_string()),
        Err(_) => return Opened::Failed("no stream slot in time".into()),
    };
    let mut answer = [0u8; StreamAnswer::LEN];
    let exchanged = tokio::time::timeout(ANSWER_TIMEOUT, async {
        send.write_all(&opening.to_bytes()).await?;
        recv.read_exact(&mut answer).await?;
        anyhow::Ok(())
    });
    let failure = match exchanged.await {
        Ok(Ok(())) => None,
        Ok(Err(error)) if refused_as_broken(&error) => return Opened::Broken,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some("no answer in time".into()),
    };
    if let Some(why) = failure {
        give_up(&mut send, &mut recv, RESET_LEG_ABANDONED);
        return Opened::Failed(why);
    }
    match StreamAnswer::parse(&answer) {
        Ok(answer) => Opened::Leg(Leg {
            send,
            recv,
            connection: connection.clone(),
            peer_delivered: answer.delivered,
        }),
        Err(error) => {
            tracing::warn!(%error, "a peer answered a stream opening with nonsense");
            Opened::Broken
        }
    }
}

/// Whether opening a leg failed because the peer stopped or reset it: the stream broke there.
fn refused_as_broken(error: &anyhow::Error) -> bool {
    let stopped = matches!(error.downcast_ref(), Some(WriteError::Stopped(_)));
    let reset = matches!(
        error.downcast_ref(),
        Some(ReadExactError::ReadError(ReadError::Reset(_)))
    );
    stopped || reset
}

/// Sends again, on a new leg, what the peer has not delivered of this side's direction
/// (and the end, if MPyC closed its side).
async fn replay(
    send: &mut SendStream,
    state: &StreamState,
    peer_delivered: Position,
) -> Result<(), LegEnd> {
    let (again, ended) = {
        let mut outgoing = lock(&state.outgoing);
        let again = outgoing.resume_from(peer_delivered).map_err(|error| {
            tracing::warn!(%error, "a peer resumed a stream from an impossible position");
            LegEnd::Broken
        })?;
        (again, outgoing.sent().ended)
    };
    state.confirmed.notify_waiters();
    for piece in again {
        send.write_chunk(piece).await.map_err(write_ended)?;
    }
    if ended {
        send.finish().map_err(|_| LegEnd::CarrierLost)?;
    }
    Ok(())
}

/// What a failed write on a leg means.
fn write_ended(error: WriteError) -> LegEnd {
    match error {
        WriteError::Stopped(code) if code == RESET_LEG_ABANDONED.into() => LegEnd::CarrierLost,
        WriteError::Stopped(_) => LegEnd::Broken,
        _ => LegEnd::CarrierLost,
    }
}

/// The two directions of a stream on one leg.
struct Pumps<'a> {
    state: &'a StreamState,
    link: &'a PeerLink,
    connection: &'a Connection,
}

impl Pumps<'_> {
    /// Pumps both ways until both directions ended and this side's end is confirmed, or the
    /// stream broke, or the carrier ended.
    async fn run(
        &self,
        mpyc_read: &mut OwnedReadHalf,
        mpyc_write: &mut OwnedWriteHalf,
        send: &mut SendStream,
        recv: &mut RecvStream,
    ) -> LegEnd {
        let outbound = self.outbound(mpyc_read, send);
        let inbound = self.inbound(recv, mpyc_write);
        tokio::pin!(outbound, inbound);
        let (mut out_done, mut in_done) = (false, false);
        while !(out_done && in_done) {
            let ended = tokio::select! {
                ended = &mut outbound, if !out_done => { out_done = true; ended }
                ended = &mut inbound, if !in_done => { in_done = true; ended }
            };
            if !matches!(ended, LegEnd::Done) {
                return ended;
            }
        }
        tokio::select! {
            () = self.state.end_confirmed() => LegEnd::Done,
            _ = self.connection.closed() => LegEnd::CarrierLost,
        }
    }

    /// MPyC's bytes to the peer, each held until confirmed.
    async fn outbound(&self, mpyc: &mut OwnedReadHalf, send: &mut SendStream) -> LegEnd {
        if lock(&self.state.outgoing).sent().ended {
            return LegEnd::Done;
        }
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let room = self.state.room().await.min(CHUNK);
            let read = match mpyc.read(&mut buffer[..room]).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::debug!(peer = %self.link.peer, %error, "MPyC's connection broke");
                    return LegEnd::Broken;
                }
            };
            if read == 0 {
                lock(&self.state.outgoing).end();
                return match send.finish() {
                    Ok(()) => LegEnd::Done,
                    Err(_) => LegEnd::CarrierLost,
                };
            }
            let piece = Bytes::copy_from_slice(&buffer[..read]);
            lock(&self.state.outgoing).push(piece.clone());
            let counters = &self.link.counters;
            counters.sent.fetch_add(read as u64, Ordering::Relaxed);
            if let Err(error) = send.write_chunk(piece).await {
                return write_ended(error);
            }
        }
    }

    /// The peer's bytes to MPyC, counted as each write lands so a new leg starts at the byte.
    async fn inbound(&self, recv: &mut RecvStream, mpyc: &mut OwnedWriteHalf) -> LegEnd {
        if self.state.delivered().ended {
            return LegEnd::Done;
        }
        loop {
            let chunk = match recv.read_chunk(CHUNK).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    if mpyc.shutdown().await.is_err() {
                        return LegEnd::Broken;
                    }
                    lock(&self.state.incoming).ended();
                    self.link.report_soon();
                    return LegEnd::Done;
                }
                Err(ReadError::Reset(code)) if code == RESET_LEG_ABANDONED.into() => {
                    return LegEnd::CarrierLost;
                }
                Err(ReadError::Reset(_)) => return LegEnd::Broken,
                Err(_) => return LegEnd::CarrierLost,
            };
            let mut written = 0;
            while written < chunk.len() {
                let wrote = match mpyc.write(&chunk[written..]).await {
                    Ok(0) | Err(_) => return LegEnd::Broken,
                    Ok(wrote) => wrote,
                };
                written += wrote;
                self.link
                    .counters
                    .received
                    .fetch_add(wrote as u64, Ordering::Relaxed);
                if self.state.delivered_more(wrote) {
                    self.link.report_soon();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Streams;

    /// A link's streams holding stream `number`, which handed `bytes` and then its end to MPyC.
    fn ended_stream(number: u32, bytes: usize) -> (Streams, Arc<StreamState>) {
        let state = Arc::new(StreamState::default());
        let mut streams = Streams::default();
        streams.live.insert(number, state.clone());
        state.delivered_more(bytes);
        lock(&state.incoming).ended();
        (streams, state)
    }

    #[test]
    fn a_stream_that_ends_before_its_last_report_is_sent_leaves_the_report_behind() {
        let (mut streams, state) = ended_stream(3, 5);
        assert!(streams.forget(3, &state), "the end was not reported yet");
        assert!(streams.live.is_empty());
        let last = Position {
            bytes: 5,
            ended: true,
        };
        assert_eq!(streams.take_reports(), vec![(3, last)]);
        assert!(streams.take_reports().is_empty(), "sent once");
    }

    #[test]
    fn a_stream_whose_last_report_was_sent_leaves_nothing() {
        let (mut streams, state) = ended_stream(4, 7);
        assert_eq!(streams.take_reports().len(), 1);
        assert!(!streams.forget(4, &state));
        assert!(streams.take_reports().is_empty());
    }
}
