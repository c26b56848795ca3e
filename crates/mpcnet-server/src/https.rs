//! The HTTPS listener: TLS, then HTTP/1.1 with upgrades; `/relay` goes to the embedded relay,
//! everything else to the lobby API. One TCP port serves both, so one firewall rule does.
//!
//! Bounded against exhaustion: at most [`ConnectionLimits::total`] connections at once (accepting
//! pauses beyond that), at most [`ConnectionLimits::per_ip`] from one address (more are closed at
//! once), time limits on the TLS handshake and request headers, and on each API request as a
//! whole (a slow body included). Relay connections are long-lived by design: each keeps its
//! [`ConnectionTicket`] (slot and count) until it closes, and the relay closes it through the
//! ticket when its handshake takes too long or its session ends (`relay`).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use iroh_relay::server::streams::MaybeTlsStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::limits::Rate;
use crate::quota::{ClientAddress, KeyedRate, OpenGuard, OpenPerAddress, counted_as};
use crate::relay::SessionRelays;

/// How long a client may take for its TLS handshake, and then for its request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the accept loop forgets the rate state of addresses that went quiet.
const FORGET_QUIET_PERIOD: Duration = Duration::from_secs(60);
/// How long one API request may take, its body included.
const API_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How many connections the listener holds at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_ip: usize,
    /// New connections one address may open, per second and at once: each costs a TLS
    /// handshake, so a client that reconnects as fast as it is refused is turned away before it.
    pub new_per_ip: Rate,
}

/// One accepted connection's place in the limits (its listener slot and its address's count),
/// held for as long as the connection lives, and a second handle on its socket to close it
/// from outside (an upgraded relay connection is owned by the relay's own task).
#[derive(Debug)]
pub struct ConnectionTicket {
    _slot: OwnedSemaphorePermit,
    _counted: OpenGuard<IpAddr>,
    socket: std::net::TcpStream,
}

impl ConnectionTicket {
    fn new(
        tcp: &TcpStream,
        slot: OwnedSemaphorePermit,
        counted: OpenGuard<IpAddr>,
    ) -> std::io::Result<Self> {
        let socket = std::net::TcpStream::from(std::os::fd::AsFd::as_fd(tcp).try_clone_to_owned()?);
        Ok(Self {
            _slot: slot,
            _counted: counted,
            socket,
        })
    }

    /// Ends the connection, whoever owns it: its reads and writes fail at once.
    pub fn close(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }

    /// Whether the client closed its side (its FIN or reset arrived), as opposed to going
    /// silent: the kernel's TCP state of the socket, which this ticket keeps open (a reset
    /// socket is in no table at all). Asked when the relay lets go of a connection.
    pub fn closed_by_client(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let inode = self
            .socket
            .try_clone()
            .map(|socket| std::fs::File::from(std::os::fd::OwnedFd::from(socket)))
            .and_then(|file| file.metadata())
            .map(|metadata| metadata.ino());
        let Ok(inode) = inode else {
            return false;
        };
        let tables: Vec<String> = ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(table).ok())
            .collect();
        if tables.is_empty() {
            return false;
        }
        // A socket this ticket holds open that no table lists was reset by the client (the
        // kernel drops a reset socket from the tables): its process died with unread data.
        tables
            .iter()
            .find_map(|table| tcp_state_of(table, inode))
            .is_none_or(|state| state == TCP_CLOSE_WAIT || state == TCP_CLOSE)
    }
}

/// Kernel TCP states (`include/net/tcp_states.h`): the peer's FIN arrived and we have not
/// closed yet; closed (a reset arrived).
const TCP_CLOSE_WAIT: u8 = 0x08;
const TCP_CLOSE: u8 = 0x07;

/// The state of the socket with `inode` in a `/proc/net/tcp` table (fields: `sl local remote
/// st tx:rx tr:when retrnsmt uid timeout inode ...`).
fn tcp_state_of(table: &str, inode: u64) -> Option<u8> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let matches = fields.get(9)?.parse::<u64>().ok()? == inode;
        matches
            .then(|| u8::from_str_radix(fields.get(3)?, 16).ok())
            .flatten()
    })
}

/// Accepts connections on `listener` until this future is dropped, which also ends every connection.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    relays: Arc<SessionRelays>,
    api: Router,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.total));
    let per_ip = Arc::new(OpenPerAddress::default());
    let new_per_ip = KeyedRate::new(limits.new_per_ip);
    let mut forgotten_at = tokio::time::Instant::now();
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        if forgotten_at.elapsed() > FORGET_QUIET_PERIOD {
            new_per_ip.forget_quiet();
            forgotten_at = tokio::time::Instant::now();
        }
        if !new_per_ip.allows(counted_as(peer.ip())) {
            tracing::debug!(%peer, "refused: this address opens connections too fast");
            continue;
        }
        let Some(counted) = per_ip.enter_from(peer.ip(), limits.per_ip) else {
            tracing::debug!(%peer, "refused: too many connections from this address");
            continue;
        };
        let ticket = match ConnectionTicket::new(&tcp, slot, counted) {
            Ok(ticket) => Arc::new(ticket),
            Err(error) => {
                tracing::warn!(%peer, %error, "cannot hold the connection; closing it");
                continue;
            }
        };
        let (acceptor, relays, api) = (acceptor.clone(), relays.clone(), api.clone());
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let io = TokioIo::new(MaybeTlsStream::Tls(tls));
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (relays, api, ticket) = (relays.clone(), api.clone(), ticket.clone());
                async move { Ok::<_, Infallible>(route(request, peer, &relays, ticket, api).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(io, service)
                .with_upgrades()
                .await;
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

async fn route(
    mut request: Request<Incoming>,
    peer: std::net::SocketAddr,
    relays: &Arc<SessionRelays>,
    ticket: Arc<ConnectionTicket>,
    api: Router,
) -> http::Response<Body> {
    if request.uri().path() != iroh_relay::http::RELAY_PATH {
        request.extensions_mut().insert(ClientAddress(peer.ip()));
        return match tokio::time::timeout(API_REQUEST_TIMEOUT, api.oneshot(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(infallible)) => match infallible {},
            Err(_) => crate::api::request_timed_out(),
        };
    }
    relays.serve(request, ticket).await
}

/// Errors after which accepting again can succeed (e.g. too many open files for a moment).
fn is_transient(error: &std::io::Error) -> bool {
    !matches!(
        error.kind(),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotConnected
    )
}
