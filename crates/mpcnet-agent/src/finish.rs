//! The end of a run: each party tells every peer its MPyC exit code (and, if it stopped for
//! another party, which one) on a one-way stream and waits for theirs, so no party closes its
//! links while a peer may still have data in flight.

use std::collections::HashMap;
use std::time::Duration;

use iroh::endpoint::RecvStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::control;
use crate::link::PeerLink;
use crate::wire::{FinishedMessage, STOP_REFUSED, StreamKind};

/// How long a party waits for a peer to acknowledge its "finished" message.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a peer has to send the whole "finished" message once its stream exists (it is
/// written in one go, so this is generous); a stream silent that long is refused.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// One-way streams read at once per link. QUIC already limits how many a peer may open
/// (`endpoint::MAX_ONE_WAY_STREAMS_PER_LINK`); this bounds the readers even if that grows.
const READERS_PER_LINK: usize = 2;

/// What each peer said at the end, by party index.
pub type Finished = watch::Receiver<HashMap<u16, FinishedMessage>>;

/// Listens on every link for the peer's "finished" message while it lives.
#[derive(Debug)]
pub struct FinishListener {
    finished: Finished,
    _listeners: JoinSet<()>,
}

impl FinishListener {
    /// What the peers have said so far, and a way to wait for more.
    pub fn finished(&self) -> Finished {
        self.finished.clone()
    }
}

/// Listens on every link for the peer's "finished" message, until the returned listener drops.
pub fn listen(links: &[PeerLink]) -> FinishListener {
    let (sender, finished) = watch::channel(HashMap::new());
    let mut listeners = JoinSet::new();
    for link in links {
        listeners.spawn(listen_on(link.clone(), sender.clone()));
    }
    FinishListener {
        finished,
        _listeners: listeners,
    }
}

/// Reads `link`'s one-way streams on every carrier until the link ends: the peer's control
/// stream, one per carrier (read for the carrier's life by [`control::listen`]), and its
/// "finished" message, each in a task of its own (a silent stream must not hold up the real
/// message), at most [`READERS_PER_LINK`] at once.
async fn listen_on(link: PeerLink, sender: watch::Sender<HashMap<u16, FinishedMessage>>) {
    let mut carriers = link.carriers();
    'carriers: loop {
        let connection = carriers.borrow_and_update().connection.clone();
        let mut readers = JoinSet::new();
        let mut control: Option<JoinSet<()>> = None;
        loop {
            if readers.len() >= READERS_PER_LINK {
                if let Some(Ok(Some(stream))) = readers.join_next().await {
                    take_control(&mut control, stream, &link);
                }
                continue;
            }
            tokio::select! {
                accepted = connection.accept_uni() => match accepted {
                    Ok(stream) => {
                        readers.spawn(read_one_way(stream, link.clone(), sender.clone()));
                    }
                    // This carrier is over: wait for the next (it may be here already).
                    Err(_) => tokio::select! {
                        changed = carriers.changed() => match changed {
                            Ok(()) => break,
                            Err(_) => break 'carriers,
                        },
                        _ = link.ended() => break 'carriers,
                    },
                },
                Some(Ok(Some(stream))) = readers.join_next() => {
                    take_control(&mut control, stream, &link);
                }
                changed = carriers.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => break 'carriers,
                },
                _ = link.ended() => break 'carriers,
            }
        }
    }
    // The link is over: wake the waiters, who also count ended links as done.
    sender.send_modify(|_| {});
}

/// Reads a carrier's control stream for the carrier's life (in `control`), or refuses a second.
fn take_control(control: &mut Option<JoinSet<()>>, stream: RecvStream, link: &PeerLink) {
    match control {
        None => {
            let mut listening = JoinSet::new();
            listening.spawn(control::listen(link.clone(), stream));
            *control = Some(listening);
        }
        Some(_) => refuse(stream, link, "a second control stream"),
    }
}

/// Reads the kind of a one-way stream within [`MESSAGE_TIMEOUT`]: a "finished" message is
/// read whole and recorded; a control stream is handed back to be read for the carrier's life.
async fn read_one_way(
    mut stream: RecvStream,
    link: PeerLink,
    sender: watch::Sender<HashMap<u16, FinishedMessage>>,
) -> Option<RecvStream> {
    let mut kind = [0u8; 1];
    match tokio::time::timeout(MESSAGE_TIMEOUT, stream.read_exact(&mut kind)).await {
        Ok(Ok(())) => {}
        _ => {
            refuse(stream, &link, "no kind in time");
            return None;
        }
    }
    match StreamKind::from_byte(kind[0]) {
        Ok(StreamKind::Control) => return Some(stream),
        Ok(StreamKind::Finished) => {}
        _ => {
            refuse(stream, &link, "an unknown kind");
            return None;
        }
    }
    let read = tokio::time::timeout(
        MESSAGE_TIMEOUT,
        stream.read_to_end(FinishedMessage::LEN - 1),
    );
    let message = match read.await {
        Ok(Ok(rest)) => {
            FinishedMessage::parse(&[&kind[..], &rest].concat()).map_err(|error| error.to_string())
        }
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no message within {MESSAGE_TIMEOUT:?}")),
    };
    match message {
        Ok(message) => sender.send_modify(|finished| {
            finished.insert(link.peer.index, message);
        }),
        Err(why) => refuse(stream, &link, &why),
    }
    None
}

/// Refuses a one-way stream (logged).
fn refuse(mut stream: RecvStream, link: &PeerLink, why: &str) {
    tracing::warn!(peer = %link.peer, %why, "refused a one-way stream");
    let _ = stream.stop(STOP_REFUSED.into());
}

/// The code a party announces when it stops its run before its MPyC finished (a peer failed or
/// was lost, or it was interrupted).
pub const ABORTED: i32 = -1;

/// Tells every peer how this party's run ended, and waits (at most [`ACK_TIMEOUT`]) until each
/// has acknowledged it: closing a link abandons unacknowledged data.
async fn announce(links: &[PeerLink], ending: FinishedMessage) {
    let message = ending.to_bytes();
    let sends = links.iter().map(|link| async move {
        let sent = async {
            let mut stream = link.connection().open_uni().await?;
            stream.write_all(&message).await?;
            stream.finish()?;
            stream.stopped().await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(ACK_TIMEOUT, sent).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(peer = %link.peer, %error, "cannot tell the peer we finished")
            }
            Err(_) => {
                tracing::debug!(peer = %link.peer, "the peer did not acknowledge that we finished")
            }
        }
    });
    futures_util::future::join_all(sends).await;
}

/// Tells every peer how this party's run ended, then waits until every peer has said the same
/// or its link ended, at most `timeout`. Returns the peers that did not answer.
pub async fn announce_and_wait(
    links: &[PeerLink],
    ending: FinishedMessage,
    mut finished: Finished,
    timeout: Duration,
) -> Vec<String> {
    announce(links, ending).await;
    let everyone_done = |finished: &HashMap<u16, FinishedMessage>| {
        links
            .iter()
            .all(|link| finished.contains_key(&link.peer.index) || link.ended_for().is_some())
    };
    let _ = tokio::time::timeout(timeout, finished.wait_for(everyone_done)).await;
    let finished = finished.borrow();
    links
        .iter()
        .filter(|link| !finished.contains_key(&link.peer.index) && link.ended_for().is_none())
        .map(|link| link.peer.to_string())
        .collect()
}
