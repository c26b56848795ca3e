//! The end of a run: each party tells every peer its MPyC exit code on a one-way stream and
//! waits for theirs, so no party closes its links while a peer may still have data in flight.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;

use crate::link::PeerLink;

/// How long a party waits for a peer to acknowledge its "finished" message.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The first byte of a one-way stream that says "my MPyC has exited", followed by its code (i32 LE).
const FINISHED: u8 = 2;

/// What each peer said at the end: its MPyC exit code.
pub type Finished = watch::Receiver<HashMap<u16, i32>>;

/// Listens on every link for the peer's "finished" message.
pub fn listen(links: &[PeerLink]) -> Finished {
    let (sender, receiver) = watch::channel(HashMap::new());
    for link in links {
        let (link, sender) = (link.clone(), sender.clone());
        tokio::spawn(async move {
            while let Ok(mut stream) = link.connection.accept_uni().await {
                let mut message = [0u8; 5];
                if stream.read_exact(&mut message).await.is_ok() && message[0] == FINISHED {
                    let code = i32::from_le_bytes([message[1], message[2], message[3], message[4]]);
                    sender.send_modify(|finished| {
                        finished.insert(link.peer.index, code);
                    });
                }
            }
            // The link closed: wake the waiters, who also count closed links as done.
            sender.send_modify(|_| {});
        });
    }
    receiver
}

/// The code a party announces when it stops its run before its MPyC finished (a peer failed or
/// was lost, or it was interrupted).
pub const ABORTED: i32 = -1;

/// Tells every peer this party's MPyC exited with `code` (or [`ABORTED`]), and waits (at most
/// [`ACK_TIMEOUT`]) until each has acknowledged it: closing a link abandons unacknowledged data.
pub async fn announce(links: &[PeerLink], code: i32) {
    let mut message = vec![FINISHED];
    message.extend_from_slice(&code.to_le_bytes());
    let sends = links.iter().map(|link| {
        let message = message.clone();
        async move {
            let sent = async {
                let mut stream = link.connection.open_uni().await?;
                stream.write_all(&message).await?;
                stream.finish()?;
                stream.stopped().await?;
                anyhow::Ok(())
            };
            match tokio::time::timeout(ACK_TIMEOUT, sent).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(peer = %link.peer, %error, "cannot tell the peer we finished"),
                Err(_) => tracing::debug!(peer = %link.peer, "the peer did not acknowledge that we finished"),
            }
        }
    });
    futures_util::future::join_all(sends).await;
}

/// Tells every peer this party's MPyC exited with `code`, then waits until every peer has said
/// the same or closed its link, at most `timeout`. Returns the peers that did not answer.
pub async fn announce_and_wait(
    links: &[PeerLink],
    code: i32,
    mut finished: Finished,
    timeout: Duration,
) -> Vec<String> {
    announce(links, code).await;
    let everyone_done = |finished: &HashMap<u16, i32>| {
        links.iter().all(|link| {
            finished.contains_key(&link.peer.index) || link.connection.close_reason().is_some()
        })
    };
    let _ = tokio::time::timeout(timeout, finished.wait_for(everyone_done)).await;
    let finished = finished.borrow();
    links
        .iter()
        .filter(|link| {
            !finished.contains_key(&link.peer.index) && link.connection.close_reason().is_none()
        })
        .map(|link| link.peer.to_string())
        .collect()
}
