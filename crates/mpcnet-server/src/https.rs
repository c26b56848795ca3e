//! The HTTPS listener: TLS, then HTTP/1.1 with upgrades; `/relay` goes to the embedded relay,
//! everything else to the lobby API. One TCP port serves both, so one firewall rule does.
//!
//! Bounded against exhaustion: at most [`ConnectionLimits::total`] connections at once (accepting
//! pauses beyond that), at most [`ConnectionLimits::per_ip`] from one address (more are closed at
//! once), time limits on the TLS handshake and request headers, and on each API request as a
//! whole (a slow body included). Relay connections are long-lived by design and have no total time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::Request;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use iroh_relay::server::http_server::{HyperError, RelayService, RelayServiceWithNotify};
use iroh_relay::server::streams::MaybeTlsStream;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::quota::{ClientAddress, OpenPerAddress};

/// How long a client may take for its TLS handshake, and then for its request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one API request may take, its body included.
const API_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How many connections the listener holds at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_ip: usize,
}

/// Accepts connections on `listener` until this future is dropped, which also ends every connection.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    relay: RelayService,
    api: Router,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.total));
    let per_ip = Arc::new(OpenPerAddress::default());
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
        let Some(counted) = per_ip.enter(peer.ip(), limits.per_ip) else {
            tracing::debug!(%peer, "refused: too many connections from this address");
            continue;
        };
        let (acceptor, relay, api) = (acceptor.clone(), relay.clone(), api.clone());
        connections.spawn(async move {
            let _held = (slot, counted);
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
            let relay = RelayServiceWithNotify::new(relay, Arc::new(Notify::new()));
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (relay, api) = (relay.clone(), api.clone());
                async move { Ok::<_, Infallible>(route(request, peer, &relay, api).await) }
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
    relay: &RelayServiceWithNotify,
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
    let answer: Result<_, HyperError> = relay.call(request).await;
    match answer {
        Ok(response) => response.map(Body::new),
        Err(error) => {
            tracing::debug!(%error, "relay request failed");
            let mut response = http::Response::new(Body::from("relay request failed"));
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// Errors after which accepting again can succeed (e.g. too many open files for a moment).
fn is_transient(error: &std::io::Error) -> bool {
    !matches!(
        error.kind(),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotConnected
    )
}
