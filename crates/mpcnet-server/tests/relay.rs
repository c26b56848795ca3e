//! The embedded relay through a real server and real iroh endpoints: one relay per sealed
//! session, so only that session's parties get it and reach each other through it; a session
//! that ends closes its clients; a handshake that never finishes is closed and uncounted, and a
//! client that stops answering pings is dropped; a client is held to its rate and a creator to
//! its budget. Every refusal is in the metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, Endpoint, PortmapperConfig, presets};
use iroh::tls::CaTlsConfig;
use iroh::{EndpointAddr, RelayMap, RelayMode, RelayUrl, SecretKey};
use mpcnet_client::Home;
use mpcnet_client::session::{self, SessionPlan};
use mpcnet_proto::{Identity, LobbyId};
use mpcnet_server::{Limits, RunningServer, ServeConfig};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ALPN: &[u8] = b"mpcnet-relay-test";

struct Lab {
    server: RunningServer,
    dir: tempfile::TempDir,
}

async fn lab(ttl: Duration, limits: Limits) -> Lab {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = mpcnet_server::spawn(ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().into(),
        certificate_files: None,
        public_names: Vec::new(),
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        lobby_ttl: ttl,
        address_discovery: true,
        limits,
    })
    .await
    .expect("server starts");
    Lab { server, dir }
}

fn test_limits() -> Limits {
    Limits {
        max_program_bytes: 1 << 20,
        max_lobbies: 100,
        max_lobbies_per_creator: 100,
        connections: mpcnet_server::ConnectionLimits {
            total: 64,
            per_ip: 16,
            new_per_ip: mpcnet_server::Limits::default().connections.new_per_ip,
        },
        ..Limits::default()
    }
}

impl Lab {
    /// Makes a lobby of `parties.len()` parties (the first creates it), and seals it unless
    /// `seal` is false. Returns its id.
    async fn session(&self, parties: &[&Identity], seal: bool) -> LobbyId {
        let program = self.dir.path().join("p.py");
        std::fs::write(&program, "print(1)\n").expect("program");
        let plan = SessionPlan {
            server: self.server.address.clone(),
            parties: u16::try_from(parties.len()).expect("few"),
            program,
            main: None,
            name: None,
            party_name: "p0".into(),
            args: Vec::new(),
            extra_relays: Vec::new(),
            seats: Vec::new(),
            require_identity: None,
            prove: None,
            roles: Vec::new(),
        };
        let invite = session::create(parties[0], &plan).await.expect("created");
        let home = |name: &str| Home::open(self.dir.path().join(name)).expect("home");
        for (index, party) in parties.iter().enumerate().skip(1) {
            let name = format!("p{index}-{}", invite.lobby_id());
            session::join(&home(&name), party, &invite, "p", None, None, None)
                .await
                .expect("joined");
        }
        if seal {
            let name = format!("p0-{}", invite.lobby_id());
            let sealed = session::status(&home(&name), parties[0], &invite, None)
                .await
                .expect("sealed");
            assert_eq!(sealed.state, "sealed");
        }
        invite.lobby_id()
    }

    fn relay_url(&self, lobby: &LobbyId) -> RelayUrl {
        mpcnet_proto::api::session_relay_url(self.server.address.origin(), lobby).into()
    }

    /// An endpoint that may use only `lobby`'s relay: no direct addresses, no public services.
    async fn endpoint(&self, identity: &Identity, lobby: &LobbyId) -> Endpoint {
        let quic =
            (self.server.quic_addr).map(|addr| iroh_relay::RelayQuicConfig::new(addr.port()));
        let map: RelayMap = iroh_relay::RelayConfig::new(self.relay_url(lobby), quic).into();
        relay_only_endpoint(identity, map, self.certificate()).await
    }

    /// An endpoint of `identity` on `lobby`'s relay once the relay has it (at most 10 s).
    async fn online_endpoint(&self, identity: &Identity, lobby: &LobbyId) -> Endpoint {
        let endpoint = self.endpoint(identity, lobby).await;
        tokio::time::timeout(Duration::from_secs(10), endpoint.online())
            .await
            .expect("the relay takes the endpoint");
        endpoint
    }

    fn certificate(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.dir.path().join("tls-cert.pem")).expect("certificate")
    }

    /// Whether an endpoint of `identity` on `lobby`'s relay gets it as home relay within `limit`.
    async fn reaches_relay(&self, identity: &Identity, lobby: &LobbyId, limit: Duration) -> bool {
        let endpoint = self.endpoint(identity, lobby).await;
        let online = tokio::time::timeout(limit, endpoint.online()).await.is_ok();
        endpoint.close().await;
        online
    }

    /// The parties of `lobby` the server lists as gone (their relay connection closed by them).
    async fn departures(&self, lobby: &LobbyId) -> Vec<mpcnet_proto::api::Departure> {
        let client = mpcnet_client::LobbyClient::new(&self.server.address).expect("client");
        client.departures(lobby).await.expect("departures")
    }

    async fn metrics(&self) -> String {
        // Plain HTTP, but reqwest still wants a process-wide TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!(
            "http://{}/metrics",
            self.server.metrics_addr.expect("metrics")
        );
        let answer = reqwest::get(&url).await.expect("metrics");
        answer.text().await.expect("text")
    }

    /// The value of metric line `name` (with its labels), 0 if absent.
    async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    }

    /// Waits (at most `limit`) until metric `name` is `wanted`; returns the last value seen.
    async fn metric_becomes(&self, name: &str, wanted: u64, limit: Duration) -> u64 {
        let start = Instant::now();
        loop {
            let value = self.metric(name).await;
            if value == wanted || start.elapsed() > limit {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Two parties' relay-only endpoints and the link the second dialed to the first through
/// their session's relay.
struct RelayedLink {
    _endpoints: [Endpoint; 2],
    dialed: Connection,
    accepted: Connection,
}

impl Lab {
    /// Links `dialer` to `acceptor` through `lobby`'s relay; panics if they cannot.
    async fn relayed_link(
        &self,
        acceptor: &Identity,
        dialer: &Identity,
        lobby: &LobbyId,
    ) -> RelayedLink {
        let accepting = self.endpoint(acceptor, lobby).await;
        let dialing = self.endpoint(dialer, lobby).await;
        let relay = self.relay_url(lobby);
        let (dialed, accepted) = link(&dialing, &accepting, relay, Duration::from_secs(10))
            .await
            .expect("linked through the relay");
        RelayedLink {
            _endpoints: [accepting, dialing],
            dialed,
            accepted,
        }
    }
}

/// An endpoint of `identity` that may use only the relays of `map`, trusting `certificate`.
async fn relay_only_endpoint(
    identity: &Identity,
    map: RelayMap,
    certificate: CertificateDer<'static>,
) -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&identity.to_secret_bytes()))
        .alpns(vec![ALPN.to_vec()])
        .relay_mode(RelayMode::Custom(map))
        .ca_tls_config(CaTlsConfig::custom_roots([certificate]))
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind()
        .await
        .expect("endpoint binds")
}

/// `from` dials `to` at `to_relay` and `to` accepts; `None` if that fails within `limit`.
async fn link(
    from: &Endpoint,
    to: &Endpoint,
    to_relay: RelayUrl,
    limit: Duration,
) -> Option<(Connection, Connection)> {
    let address = EndpointAddr::new(to.id()).with_relay_url(to_relay);
    let accept = async {
        let incoming = to.accept().await?;
        incoming.await.ok()
    };
    let both = async { tokio::join!(from.connect(address, ALPN), accept) };
    match tokio::time::timeout(limit, both).await {
        Ok((Ok(dialed), Some(accepted))) => Some((dialed, accepted)),
        _ => None,
    }
}

/// Sends `bytes` from `from` to `to` on one stream; returns how long until all arrived.
async fn transfer(from: &Connection, to: &Connection, bytes: usize) -> Duration {
    let start = Instant::now();
    let send = async {
        let mut stream = from.open_uni().await.expect("stream");
        stream.write_all(&vec![7u8; bytes]).await.expect("write");
        stream.finish().expect("finish");
    };
    let receive = async {
        let mut stream = to.accept_uni().await.expect("stream");
        stream.read_to_end(bytes + 1).await.expect("read").len()
    };
    let ((), received) = tokio::join!(send, receive);
    assert_eq!(received, bytes);
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_admits_parties_of_sealed_lobbies_only() {
    let lab = lab(Duration::from_secs(600), test_limits()).await;
    let (creator, joiner) = (Identity::generate(), Identity::generate());
    let open = lab.session(&[&creator, &joiner], false).await;
    assert!(
        !lab.reaches_relay(&creator, &open, Duration::from_secs(3))
            .await,
        "a party of a lobby that is not sealed yet gets no relay"
    );
    let sealed = lab.session(&[&creator, &joiner], true).await;
    assert!(
        lab.reaches_relay(&creator, &sealed, Duration::from_secs(10))
            .await,
        "a party of a sealed lobby reaches its session's relay"
    );
    let stranger = Identity::generate();
    assert!(
        !lab.reaches_relay(&stranger, &sealed, Duration::from_secs(3))
            .await,
        "a stranger must not get the session's relay"
    );
    assert!(
        lab.metric("mpcnet_relay_admissions_total{outcome=\"admitted\"}")
            .await
            >= 1
    );
    assert!(
        lab.metric("mpcnet_relay_admissions_total{outcome=\"refused\"}")
            .await
            >= 2
    );
    assert_eq!(lab.metric("mpcnet_lobbies_created_total").await, 2);
}

/// A relay on another host (`mpcnet relay`) admits the parties the lobby names for a sealed
/// session, and refuses a stranger and the parties of a lobby not sealed yet.
/// `mpcnet relay` beside `lab`'s lobby, and the certificate it made.
async fn relay_elsewhere(lab: &Lab) -> (RunningServer, CertificateDer<'static>) {
    let relay_dir = lab.dir.path().join("relay");
    let relay = mpcnet_server::spawn_relay(mpcnet_server::RelayServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: relay_dir.clone(),
        public_names: Vec::new(),
        lobby: lab.server.address.clone(),
        connections: test_limits().connections,
        relay: test_limits().relay,
    })
    .await
    .expect("the relay starts");
    let certificate =
        CertificateDer::from_pem_file(relay_dir.join("tls-cert.pem")).expect("certificate");
    (relay, certificate)
}

/// Whether `identity` gets the relay of session `lobby` on `relay` within `limit`.
async fn reaches(
    relay: &RunningServer,
    certificate: &CertificateDer<'static>,
    identity: &Identity,
    lobby: &LobbyId,
    limit: Duration,
) -> bool {
    let url = mpcnet_proto::api::session_relay_url(relay.address.origin(), lobby);
    let map: RelayMap = RelayUrl::from(url).into();
    let endpoint = relay_only_endpoint(identity, map, certificate.clone()).await;
    let online = tokio::time::timeout(limit, endpoint.online()).await.is_ok();
    endpoint.close().await;
    online
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_elsewhere_admits_the_parties_the_lobby_names_only() {
    let lab = lab(Duration::from_secs(600), test_limits()).await;
    let (relay, certificate) = relay_elsewhere(&lab).await;
    let reaches = async |identity: &Identity, lobby: &LobbyId, limit: Duration| {
        reaches(&relay, &certificate, identity, lobby, limit).await
    };
    let (creator, joiner) = (Identity::generate(), Identity::generate());
    let open = lab.session(&[&creator, &joiner], false).await;
    assert!(
        !reaches(&creator, &open, Duration::from_secs(3)).await,
        "a party of a lobby that is not sealed yet gets no relay"
    );
    let sealed = lab.session(&[&creator, &joiner], true).await;
    assert!(
        reaches(&joiner, &sealed, Duration::from_secs(10)).await,
        "a party the lobby names reaches the relay"
    );
    assert!(
        !reaches(&Identity::generate(), &sealed, Duration::from_secs(3)).await,
        "a stranger must not get the relay"
    );
}

/// What every agent does at the start of its run: asking a relay elsewhere whether it carries
/// the session makes it hear the session's parties from the lobby, so it admits them after the
/// lobby (and the lobby's own relay) died; a session it never heard of is carried by no relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_elsewhere_asked_about_a_session_carries_it_through_a_lobby_outage() {
    let lab = lab(Duration::from_secs(600), test_limits()).await;
    let (relay, certificate) = relay_elsewhere(&lab).await;
    let (alice, bob, carol, dave) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let asked = lab.session(&[&alice, &bob], true).await;
    let never_asked = lab.session(&[&carol, &dave], true).await;
    let relay_client = mpcnet_client::LobbyClient::new(&relay.address).expect("client");
    relay_client
        .relay_carries(&asked)
        .await
        .expect("the relay carries a sealed session");
    let unknown = mpcnet_proto::JoinSecret::generate().lobby_id();
    let refused = relay_client.relay_carries(&unknown).await;
    assert!(
        refused.is_err(),
        "the relay carries a session that does not exist"
    );
    let lobby_address = lab.server.address.clone();
    let Lab { server, dir: _dir } = lab;
    drop(server);
    let lobby_client = mpcnet_client::LobbyClient::new(&lobby_address).expect("client");
    assert!(
        lobby_client.info().await.is_err(),
        "the lobby still answers"
    );
    assert!(
        reaches(&relay, &certificate, &bob, &asked, Duration::from_secs(10)).await,
        "the relay refused a party of a session it was asked about once the lobby died"
    );
    assert!(
        !reaches(
            &relay,
            &certificate,
            &dave,
            &never_asked,
            Duration::from_secs(3)
        )
        .await,
        "the relay admitted a party on no one's word"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_reaches_through_the_relay_only_the_parties_of_its_own_session() {
    let lab = lab(Duration::from_secs(600), test_limits()).await;
    let (alice, bob, carol, dave) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let first = lab.session(&[&alice, &bob], true).await;
    let second = lab.session(&[&carol, &dave], true).await;
    let alice_ep = lab.endpoint(&alice, &first).await;
    alice_ep.online().await;

    let bob_ep = lab.endpoint(&bob, &first).await;
    assert!(
        link(
            &bob_ep,
            &alice_ep,
            lab.relay_url(&first),
            Duration::from_secs(10)
        )
        .await
        .is_some(),
        "a party of the same session links through the relay"
    );
    let undelivered_before = lab.metric("mpcnet_relay_undelivered_total").await;

    let carol_ep = lab.endpoint(&carol, &second).await;
    carol_ep.online().await;
    assert!(
        link(
            &carol_ep,
            &alice_ep,
            lab.relay_url(&second),
            Duration::from_secs(5)
        )
        .await
        .is_none(),
        "a party of another session must not reach alice through its own session's relay"
    );
    assert!(
        link(
            &carol_ep,
            &alice_ep,
            lab.relay_url(&first),
            Duration::from_secs(5)
        )
        .await
        .is_none(),
        "nor through alice's session's relay, which does not admit her"
    );
    let undelivered = lab
        .metric_becomes(
            "mpcnet_relay_undelivered_total",
            u64::MAX,
            Duration::from_secs(2),
        )
        .await;
    assert!(
        undelivered > undelivered_before,
        "carol's datagrams to alice were dropped and counted ({undelivered_before} -> {undelivered})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_clients_of_an_expired_session_are_closed_at_once() {
    let lab = lab(Duration::from_secs(4), test_limits()).await;
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let lobby = lab.session(&[&alice, &bob], true).await;
    let linked = lab.relayed_link(&alice, &bob, &lobby).await;
    assert_eq!(
        lab.metric_becomes("mpcnet_relay_clients", 2, Duration::from_secs(3))
            .await,
        2,
        "both parties are relay clients while the session lives"
    );
    // The lobby expires 4 s after its creation; the relay checks every second.
    assert_eq!(
        lab.metric_becomes("mpcnet_relay_clients", 0, Duration::from_secs(6))
            .await,
        0,
        "the expired session's relay clients are closed"
    );
    assert!(
        !lab.reaches_relay(&alice, &lobby, Duration::from_secs(2))
            .await,
        "and not admitted again"
    );
    drop(linked);
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Opens a TLS connection to the server and asks for a WebSocket upgrade to `path`; returns the
/// stream and the status line of the answer (empty if the connection closed first), or `None`
/// if the server closed the connection before TLS was set up.
async fn raw_upgrade(lab: &Lab, path: &str) -> Option<(TlsStream, String)> {
    let mut tls = tls_connect(lab, [127, 0, 0, 1]).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: iroh-relay-v1\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.expect("request");
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut answer))
        .await
        .map_or(0, |read| read.unwrap_or(0));
    let status = String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    Some((tls, status))
}

/// A TLS connection to the server from source address `source`, or `None` if the server closed
/// it before TLS was set up.
async fn tls_connect(lab: &Lab, source: [u8; 4]) -> Option<TlsStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(lab.certificate()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind source");
    let tcp = socket.connect(lab.server.https_addr).await.expect("tcp");
    let name = ServerName::try_from("localhost").expect("name");
    connector.connect(name, tcp).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_opening_connections_too_fast_is_closed_before_tls_and_others_are_not() {
    let mut limits = test_limits();
    limits.connections.new_per_ip = mpcnet_server::Rate::new(1, 3);
    let lab = lab(Duration::from_secs(600), limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tls_connect(&lab, [127, 0, 0, 1])
                .await
                .expect("within the burst"),
        );
    }
    assert!(
        tls_connect(&lab, [127, 0, 0, 1]).await.is_none(),
        "a fourth connection at once is closed before its TLS handshake"
    );
    assert!(
        tls_connect(&lab, [127, 0, 0, 2]).await.is_some(),
        "another address has its own rate"
    );
}

/// Whether the server closes `stream` within `limit` (a read ends or fails).
async fn closed_within(stream: &mut TlsStream, limit: Duration) -> bool {
    let mut byte = [0u8; 256];
    let read = async {
        loop {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => return,
                // The relay's handshake challenge: keep reading.
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_handshakes_that_never_finish_are_closed_and_keep_their_slot_until_then() {
    let mut limits = test_limits();
    limits.connections.per_ip = 4;
    limits.relay.handshake_timeout = Duration::from_secs(2);
    let lab = lab(Duration::from_secs(600), limits).await;
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let lobby = lab.session(&[&alice, &bob], true).await;
    let path = format!("/relay?session={lobby}");

    let mut silent = Vec::new();
    for _ in 0..4 {
        let (stream, status) = raw_upgrade(&lab, &path).await.expect("tls");
        assert!(status.contains("101"), "upgraded: {status:?}");
        silent.push(stream);
    }
    let fifth = raw_upgrade(&lab, &path).await;
    assert!(
        fifth.is_none_or(|(_, status)| status.is_empty()),
        "four upgraded connections still hold the address's four places"
    );

    let start = Instant::now();
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "a relay handshake that never finishes is closed"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    let (_again, status) = raw_upgrade(&lab, &path).await.expect("tls");
    assert!(
        status.contains("101"),
        "their places are free again: {status:?}"
    );
    assert!(
        lab.metric("mpcnet_relay_admissions_total{outcome=\"handshake_timeout\"}")
            .await
            >= 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_url_without_a_live_session_is_refused_before_any_upgrade() {
    let lab = lab(Duration::from_secs(600), test_limits()).await;
    let (_, status) = raw_upgrade(&lab, "/relay").await.expect("tls");
    assert!(status.contains("400"), "{status}");
    let unknown = mpcnet_proto::JoinSecret::generate().lobby_id();
    let (_, status) = raw_upgrade(&lab, &format!("/relay?session={unknown}"))
        .await
        .expect("tls");
    assert!(status.contains("404"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_client_is_held_to_its_rate() {
    const BYTES: usize = 3_000_000;
    let mut limits = test_limits();
    limits.relay.client_rate = mpcnet_server::Rate::new(1_000_000, 256 * 1024);
    let limited = lab(Duration::from_secs(600), limits).await;
    let free = lab(Duration::from_secs(600), test_limits()).await;
    let mut elapsed = Vec::new();
    for lab in [&free, &limited] {
        let (alice, bob) = (Identity::generate(), Identity::generate());
        let lobby = lab.session(&[&alice, &bob], true).await;
        let linked = lab.relayed_link(&alice, &bob, &lobby).await;
        elapsed.push(transfer(&linked.dialed, &linked.accepted, BYTES).await);
    }
    // 3 MB at 1 MB/s after a 256 KiB burst: over 2.5 s; without the limit, a fraction of that.
    assert!(
        elapsed[1] > Duration::from_millis(2500),
        "limited: {:?}",
        elapsed[1]
    );
    assert!(
        elapsed[0] * 3 < elapsed[1],
        "the limit, not the relay, made it slow: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_is_held_to_its_relay_budget_of_clients_and_bytes() {
    let mut limits = test_limits();
    limits.relay.keys_per_creator = 2;
    limits.relay.bytes_per_creator = 1_000_000;
    let lab = lab(Duration::from_secs(600), limits).await;
    let (alice, bob, carol) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let lobby = lab.session(&[&alice, &bob, &carol], true).await;
    let linked = lab.relayed_link(&alice, &bob, &lobby).await;
    assert!(
        !lab.reaches_relay(&carol, &lobby, Duration::from_secs(3))
            .await,
        "a third client of the same creator is over its budget of two"
    );
    let sent = async {
        let mut stream = linked.dialed.open_uni().await.expect("stream");
        // More than the byte budget; the relay ends before it is all through.
        let _ = stream.write_all(&vec![7u8; 3_000_000]).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), sent).await;
    assert_eq!(
        lab.metric_becomes("mpcnet_relay_clients", 0, Duration::from_secs(5))
            .await,
        0,
        "the spent budget closed the session's relay clients"
    );
    assert!(
        !lab.reaches_relay(&alice, &lobby, Duration::from_secs(2))
            .await,
        "and admits none again"
    );
    drop(linked);
}

/// iroh's relay pings each client every 16 to 20 s and drops one that does not answer within
/// 5 s: a client that stops reading (a dead or hostile one) is gone within half a minute and
/// frees its place, while an endpoint that answers stays reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_client_that_stops_answering_is_dropped_and_one_that_answers_is_kept() {
    const CLIENTS: &str = "mpcnet_relay_clients";
    let lab = lab(Duration::from_secs(600), test_limits()).await;
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let lobby = lab.session(&[&alice, &bob], true).await;
    let answering = lab.online_endpoint(&alice, &lobby).await;

    let tls = CaTlsConfig::custom_roots([lab.certificate()])
        .client_config(Arc::new(rustls::crypto::ring::default_provider()))
        .expect("tls");
    let bob_key = SecretKey::from_bytes(&bob.to_secret_bytes());
    let silent = iroh_relay::client::ClientBuilder::new(
        lab.relay_url(&lobby),
        bob_key,
        iroh::dns::DnsResolver::new(),
    )
    .tls_client_config(tls)
    .connect()
    .await
    .expect("bob's raw client is admitted");
    assert_eq!(
        lab.metric_becomes(CLIENTS, 2, Duration::from_secs(5)).await,
        2,
        "both are relay clients"
    );

    // Bob's raw client is never read from, so it never answers the relay's pings.
    let start = Instant::now();
    assert_eq!(
        lab.metric_becomes(CLIENTS, 1, Duration::from_secs(40))
            .await,
        1,
        "the client that does not answer is dropped"
    );
    assert!(start.elapsed() < Duration::from_secs(40));
    assert!(
        lab.departures(&lobby).await.is_empty(),
        "a client dropped for silence may only be cut off: it is not listed as gone"
    );
    // The one left is alice's: bob, on a real endpoint now, reaches her through the relay.
    let bob_ep = lab.endpoint(&bob, &lobby).await;
    let linked = link(
        &bob_ep,
        &answering,
        lab.relay_url(&lobby),
        Duration::from_secs(10),
    )
    .await;
    assert!(linked.is_some(), "alice's endpoint answered and was kept");
    drop(silent);
}

/// An address over its request rate gets its 429 and then its connection closed, so a client
/// that keeps sending must reconnect (and new connections are rate-limited before TLS); another
/// address is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_request_rate_is_refused_and_its_connection_closed() {
    let mut limits = test_limits();
    limits.requests_per_address = mpcnet_server::Rate::new(1, 3);
    let lab = lab(Duration::from_secs(600), limits).await;
    let mut tls = tls_connect(&lab, [127, 0, 0, 7]).await.expect("tls");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let request = "GET /v1/info HTTP/1.1\r\nHost: localhost\r\n\r\n";
        if tls.write_all(request.as_bytes()).await.is_err() {
            break;
        }
        let mut answer = vec![0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut answer))
            .await
            .map_or(0, |read| read.unwrap_or(0));
        let text = String::from_utf8_lossy(&answer[..read]).into_owned();
        statuses.push(text.lines().next().unwrap_or_default().to_string());
    }
    assert!(
        statuses[..3].iter().all(|s| s.contains("200")),
        "{statuses:?}"
    );
    assert!(
        statuses[3].contains("429"),
        "the fourth is over the rate: {statuses:?}"
    );
    assert!(
        closed_within(&mut tls, Duration::from_secs(2)).await,
        "the connection is closed after the refusal"
    );
    let mut other = tls_connect(&lab, [127, 0, 0, 8]).await.expect("tls");
    other
        .write_all(b"GET /v1/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut answer = vec![0u8; 4096];
    let read = other.read(&mut answer).await.expect("answer");
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
}

/// A party whose relay connection its own side closes (its agent exited or was killed) is
/// listed as gone within a moment, and no longer once it is back on the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_that_closes_its_relay_connection_is_listed_as_gone_until_it_returns() {
    let lab = lab(Duration::from_secs(600), test_limits()).await;
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let lobby = lab.session(&[&alice, &bob], true).await;
    let endpoint = lab.online_endpoint(&bob, &lobby).await;
    assert!(lab.departures(&lobby).await.is_empty());
    endpoint.close().await;
    drop(endpoint);
    let start = Instant::now();
    let gone = loop {
        let gone = lab.departures(&lobby).await;
        if !gone.is_empty() || start.elapsed() > Duration::from_secs(5) {
            break gone;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(gone.len(), 1, "bob closed his relay connection");
    assert_eq!(gone[0].party, bob.public());
    let back = lab.online_endpoint(&bob, &lobby).await;
    let start = Instant::now();
    while !lab.departures(&lobby).await.is_empty() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        lab.departures(&lobby).await.is_empty(),
        "bob is back on the relay"
    );
    drop(back);
}
