//! The HTTPS listener: TLS, then HTTP/1.1 with upgrades; `/relay` goes to the embedded relay,
//! everything else to the lobby API. One TCP port serves both, so one firewall rule does.

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
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// How long a client may take for its TLS handshake, and then for its request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until this future is dropped, which also ends every connection.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    relay: RelayService,
    api: Router,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        let (acceptor, relay, api) = (acceptor.clone(), relay.clone(), api.clone());
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
            let relay = RelayServiceWithNotify::new(relay, Arc::new(Notify::new()));
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (relay, api) = (relay.clone(), api.clone());
                async move { Ok::<_, Infallible>(route(request, &relay, api).await) }
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
    request: Request<Incoming>,
    relay: &RelayServiceWithNotify,
    api: Router,
) -> http::Response<Body> {
    if request.uri().path() != iroh_relay::http::RELAY_PATH {
        return match api.oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
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
