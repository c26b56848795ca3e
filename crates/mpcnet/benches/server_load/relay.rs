//! Relay traffic for the benchmark: relay-only iroh endpoints on a session's relay URL, a link
//! between two members, timed transfers, a flood, and WebSocket upgrades left unfinished.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use iroh::endpoint::{Connection, Endpoint, PortmapperConfig, presets};
use iroh::tls::CaTlsConfig;
use iroh::{EndpointAddr, RelayMap, RelayMode, RelayUrl, SecretKey};
use mpcnet_proto::Identity;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::api::PlannedLobby;
use crate::server::Server;

const ALPN: &[u8] = b"mpcnet-bench";
const LINK_TIMEOUT: Duration = Duration::from_secs(30);
const CHUNK: usize = 256 * 1024;
/// The longest an unfinished upgrade is held (the server closes it long before).
const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// Two members of a sealed 2-party session linked through its relay.
pub struct Pair {
    pub dialer: Endpoint,
    pub acceptor: Endpoint,
    pub dialed: Connection,
    pub accepted: Connection,
}

/// An endpoint of `identity` that may use only `url`'s relay: no direct addresses at all.
async fn endpoint(
    server: &Server,
    identity: &Identity,
    url: &RelayUrl,
) -> anyhow::Result<Endpoint> {
    let map: RelayMap = iroh_relay::RelayConfig::new(url.clone(), None).into();
    let endpoint = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&identity.to_secret_bytes()))
        .alpns(vec![ALPN.to_vec()])
        .relay_mode(RelayMode::Custom(map))
        .ca_tls_config(CaTlsConfig::custom_roots([server.certificate.clone()]))
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind()
        .await?;
    Ok(endpoint)
}

/// Links the creator and the joiner of the sealed 2-party `lobby` through its relay.
pub async fn pair(server: &Server, lobby: &PlannedLobby) -> anyhow::Result<Pair> {
    let url: RelayUrl = lobby.relay_url(server).into();
    let joiner = lobby.joiners.first().context("a 2-party lobby")?;
    let acceptor = endpoint(server, &lobby.creator, &url).await?;
    let dialer = endpoint(server, joiner, &url).await?;
    tokio::time::timeout(LINK_TIMEOUT, acceptor.online())
        .await
        .context("the relay never took the acceptor")?;
    let address = EndpointAddr::new(acceptor.id()).with_relay_url(url);
    let accept = async {
        let incoming = acceptor.accept().await.context("no incoming")?;
        anyhow::Ok(incoming.await?)
    };
    let both = async { tokio::join!(dialer.connect(address, ALPN), accept) };
    let (dialed, accepted) = tokio::time::timeout(LINK_TIMEOUT, both)
        .await
        .context("linking through the relay timed out")?;
    Ok(Pair {
        dialer,
        acceptor,
        dialed: dialed?,
        accepted: accepted?,
    })
}

impl Pair {
    /// Sends `bytes` on one stream; returns how long until all of it arrived.
    pub async fn transfer(&self, bytes: usize) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let send = async {
            let mut stream = self.dialed.open_uni().await?;
            stream.write_all(&vec![7u8; bytes]).await?;
            stream.finish()?;
            anyhow::Ok(())
        };
        let receive = async {
            let mut stream = self.accepted.accept_uni().await?;
            anyhow::Ok(stream.read_to_end(bytes + 1).await?.len())
        };
        let (sent, received) = tokio::join!(send, receive);
        sent?;
        anyhow::ensure!(received? == bytes, "a transfer came short");
        Ok(start.elapsed())
    }

    /// Sends as fast as it can until `stop` (or `limit`); returns the bytes that arrived.
    pub async fn flood(&self, stop: &AtomicBool, limit: Duration) -> anyhow::Result<u64> {
        let start = Instant::now();
        let chunk = vec![9u8; CHUNK];
        let send = async {
            let mut stream = self.dialed.open_uni().await?;
            while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
                stream.write_all(&chunk).await?;
            }
            stream.finish()?;
            anyhow::Ok(())
        };
        let receive = async {
            let mut stream = self.accepted.accept_uni().await?;
            let mut total = 0u64;
            while let Some(chunk) = stream.read_chunk(CHUNK).await? {
                total += chunk.len() as u64;
            }
            anyhow::Ok(total)
        };
        let (sent, received) = tokio::join!(send, receive);
        sent?;
        received
    }

    pub async fn close(&self) {
        let both = async { tokio::join!(self.dialer.close(), self.acceptor.close()) };
        let _ = tokio::time::timeout(Duration::from_secs(2), both).await;
    }
}

/// How one unfinished WebSocket upgrade went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// Upgraded (101); held until the server closed it or the attack ended.
    Held,
    /// Refused: closed before or during TLS, or answered with something other than 101.
    Refused,
}

/// Opens a TLS connection from `source`, asks for the relay's WebSocket upgrade on `path` and
/// never finishes the relay handshake; holds it until the server closes it or `stop`.
pub async fn unfinished_upgrade(
    server: &Server,
    source: Ipv4Addr,
    path: &str,
    stop: &AtomicBool,
) -> anyhow::Result<Upgrade> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let tcp = socket.connect(server.https).await?;
    let Ok(mut tls) = tls_connector(server)?
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await
    else {
        return Ok(Upgrade::Refused);
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: iroh-relay-v1\r\n\r\n"
    );
    if tls.write_all(request.as_bytes()).await.is_err() {
        return Ok(Upgrade::Refused);
    }
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut answer)).await;
    let read = read.map_or(0, |read| read.unwrap_or(0));
    if !answer[..read].starts_with(b"HTTP/1.1 101") {
        return Ok(Upgrade::Refused);
    }
    // Hold it, reading whatever the relay sends, until it closes or the attack is over.
    let held = Instant::now();
    while !stop.load(Ordering::Relaxed) && held.elapsed() < HOLD_LIMIT {
        match tokio::time::timeout(Duration::from_millis(100), tls.read(&mut answer)).await {
            Ok(Ok(0) | Err(_)) => break,
            _ => continue,
        }
    }
    Ok(Upgrade::Held)
}

fn tls_connector(server: &Server) -> anyhow::Result<tokio_rustls::TlsConnector> {
    Ok(tokio_rustls::TlsConnector::from(Arc::new(
        server.tls_client_config()?,
    )))
}
