//! Forwards between MPyC's TCP connections and QUIC streams on peer links.
//!
//! Each local TCP connection is one bidirectional QUIC stream, pumped in both directions with
//! no batching: every read is written on at once, with TCP_NODELAY on every local socket.
//! Outgoing: MPyC connects to a local forward port of a higher-numbered peer; the connection
//! is accepted only once the link exists (it does before MPyC starts) and held until the far
//! side delivers it. Incoming: a stream from a lower-numbered peer is delivered to MPyC's own
//! listening port, retrying until MPyC listens (parties start at slightly different times),
//! once its header has arrived: at most [`HEADER_TIMEOUT`] after the stream did.
//!
//! The bytes on a stream are described in [`crate::wire`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iroh::endpoint::{RecvStream, SendStream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::link::PeerLink;
use crate::wire::{MPYC_STREAM_OPENING, MpycHeader, RESET_LOCAL_BROKE, STOP_REFUSED};

/// How long a peer has to send a stream's header once the stream exists. The peer's agent
/// writes the kind byte as it opens the stream and MPyC sends its id as soon as it connects,
/// so the header follows within a round trip; a stream still without one holds a stream slot
/// and a task for nothing, and is refused.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest piece moved in one step.
const CHUNK: usize = 64 * 1024;
/// How often delivery retries while MPyC is not listening yet.
const DELIVERY_RETRY: Duration = Duration::from_millis(20);

/// Serves MPyC's connections to `link`'s peer: each TCP connection accepted on `listener`
/// becomes one stream. Runs until the link closes.
pub async fn serve_outgoing(listener: TcpListener, link: PeerLink, pumps: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = link.connection.closed() => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                tracing::warn!(peer = %link.peer, %error, "local accept failed");
                continue;
            }
        };
        let link = link.clone();
        pumps.spawn(async move {
            let opened = async {
                let (mut send, recv) = link.connection.open_bi().await?;
                send.write_all(&MPYC_STREAM_OPENING).await?;
                anyhow::Ok((send, recv))
            };
            match opened.await {
                Ok((send, recv)) => pump(tcp, send, recv, &link).await,
                Err(error) => tracing::warn!(peer = %link.peer, %error, "cannot open a stream"),
            }
        });
    }
}

/// Delivers `link`'s incoming streams to MPyC listening on 127.0.0.1:`mpyc_port`, each waiting
/// up to `patience` for MPyC to listen. Runs until the link closes.
///
/// MPyC learns who connects from the first two bytes of the connection (the party id, u16 LE)
/// and believes them. A stream is delivered only if those bytes name the peer at the other end
/// of this authenticated link, so no party can speak to MPyC as another.
pub async fn deliver_incoming(
    link: PeerLink,
    mpyc_port: u16,
    patience: Duration,
    pumps: TaskTracker,
) {
    while let Ok((send, mut recv)) = link.connection.accept_bi().await {
        let link = link.clone();
        pumps.spawn(async move {
            let Some(header) = read_header(&mut recv, &link).await else {
                let _ = recv.stop(STOP_REFUSED.into());
                return;
            };
            match connect_when_listening(mpyc_port, Instant::now() + patience).await {
                Ok(mut tcp) => {
                    if tcp.write_all(&header.mpyc_bytes()).await.is_ok() {
                        pump(tcp, send, recv, &link).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(peer = %link.peer, %error, "MPyC never listened on its port")
                }
            }
        });
    }
}

/// The stream's header, if it arrives within [`HEADER_TIMEOUT`], is an MPyC header, and names
/// the link's own peer; `None` (logged) otherwise.
async fn read_header(recv: &mut RecvStream, link: &PeerLink) -> Option<MpycHeader> {
    let mut bytes = [0u8; MpycHeader::LEN];
    match tokio::time::timeout(HEADER_TIMEOUT, recv.read_exact(&mut bytes)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(peer = %link.peer, %error, "dropped a stream without its header");
            return None;
        }
        Err(_) => {
            tracing::warn!(peer = %link.peer, "dropped a stream whose header did not come within {HEADER_TIMEOUT:?}");
            return None;
        }
    }
    match MpycHeader::parse(&bytes) {
        Ok(header) if header.claimed_party == link.peer.index => Some(header),
        Ok(header) => {
            tracing::warn!(peer = %link.peer, claimed = header.claimed_party, "refused a stream claiming another party's id");
            None
        }
        Err(error) => {
            tracing::warn!(peer = %link.peer, %error, "refused a stream with a malformed header");
            None
        }
    }
}

async fn connect_when_listening(port: u16, deadline: Instant) -> std::io::Result<TcpStream> {
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(tcp) => return Ok(tcp),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(DELIVERY_RETRY).await,
        }
    }
}

/// Moves bytes both ways until both directions have ended.
async fn pump(tcp: TcpStream, send: SendStream, recv: RecvStream, link: &PeerLink) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::warn!(%error, "cannot set TCP_NODELAY");
    }
    let (tcp_read, tcp_write) = tcp.into_split();
    let counters = link.counters.clone();
    let outbound = tcp_to_quic(tcp_read, send, &counters.sent);
    let inbound = quic_to_tcp(recv, tcp_write, &counters.received);
    let (outbound, inbound) = tokio::join!(outbound, inbound);
    for result in [outbound, inbound] {
        if let Err(error) = result {
            tracing::debug!(peer = %link.peer, %error, "forward ended with an error");
        }
    }
}

async fn tcp_to_quic(
    mut tcp: tokio::net::tcp::OwnedReadHalf,
    mut send: SendStream,
    sent: &AtomicU64,
) -> anyhow::Result<()> {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let read = match tcp.read(&mut buffer).await {
            Ok(read) => read,
            Err(error) => {
                // MPyC's connection broke: the peer must see an abort, not a clean end.
                let _ = send.reset(RESET_LOCAL_BROKE.into());
                return Err(error.into());
            }
        };
        if read == 0 {
            send.finish()?;
            return Ok(());
        }
        send.write_all(&buffer[..read]).await?;
        sent.fetch_add(read as u64, Ordering::Relaxed);
    }
}

async fn quic_to_tcp(
    mut recv: RecvStream,
    mut tcp: tokio::net::tcp::OwnedWriteHalf,
    received: &AtomicU64,
) -> anyhow::Result<()> {
    while let Some(chunk) = recv.read_chunk(CHUNK).await? {
        tcp.write_all(&chunk).await?;
        received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    tcp.shutdown().await?;
    Ok(())
}
