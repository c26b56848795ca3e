//! The party's iroh endpoint: keyed by its identity, using only the session's own relays (never
//! public relays or lookups), in one of three path policies.

use std::net::SocketAddr;

use iroh::endpoint::{
    Endpoint, IdleTimeout, PortmapperConfig, QuicTransportConfig, VarInt, presets,
};
use iroh::tls::CaTlsConfig;
use iroh::{EndpointAddr, RelayMap, RelayMode, RelayUrl, SecretKey};
use mpcnet_proto::{CertPin, Identity};

/// The ALPN of mpcnet peer links.
pub const ALPN: &[u8] = b"mpcnet/1";

/// How long a link may go without hearing from its peer before the run gives up on it, unless
/// the party says otherwise (`--patience`): long enough for a Wi-Fi drop, a router reboot or
/// a cable pulled and put back, while the link waits for any path to come back.
pub const DEFAULT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);
/// What a link allows beyond the patience for a path to come back once an outage ends, so that
/// an outage as long as the patience is ridden out. The slowest way back is the relay: iroh
/// redials a lost relay connection with an exponential backoff of at most 16 s plus a random
/// jitter of up to as much again (32 s), then the dialing side's next attempt (every
/// [`crate::control`] dial takes at most 5 s) must get through. In E3 a 120 s blackout came
/// back after 0-14 s in a debug build, and after more than 20 s once under CI's load.
pub const RECOVERY_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(45);
/// How often an idle link pings, so a quiet MPyC phase never looks like a lost peer.
pub const LINK_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

// What a peer can make this agent hold. A session member may be hostile: QUIC's defaults (100
// bidirectional and 100 one-way streams, 1.25 MB per stream, no connection-wide limit) let one
// peer park ~250 MB here. The limits below are sized for what MPyC needs instead.

/// Bidirectional streams a peer may have open at once. MPyC opens one TCP connection per pair
/// and session, and a program may run a few sessions in a row (each reconnects); a stream's
/// slot comes back only once both sides have closed it, so a new session may start while the
/// last one's stream is still closing. Eight leaves room for that and refuses a flood.
pub const MAX_MPYC_STREAMS_PER_LINK: u32 = 8;
/// One-way streams a peer may have open at once: it sends one "finished" message per run.
pub const MAX_ONE_WAY_STREAMS_PER_LINK: u32 = 2;
/// Bytes a peer may send on one stream before this agent has read them. On a LAN (1 Gbit/s,
/// 1 ms RTT) a stream needs ~125 KB in flight to stay busy; 2 MiB keeps one stream at full
/// speed up to ~16 ms RTT at 1 Gbit/s (or 10 Gbit/s on loopback's microsecond RTTs).
pub const STREAM_RECEIVE_WINDOW: u32 = 2 * 1024 * 1024;
/// Bytes a peer may send over all streams of a link before this agent has read them: the most
/// one peer can make it buffer, whatever the number of streams (two streams at full window).
/// Measured in `hostile_peer`: noq lets twice this through in about 1 run in 12 (not understood
/// yet), so the bound the test holds is twice this.
pub const LINK_RECEIVE_WINDOW: u32 = 2 * STREAM_RECEIVE_WINDOW;
/// Bytes this agent keeps sent but unacknowledged for one peer (a peer that grants credit
/// and never acknowledges makes us hold at most this); as large as the peer's receive window.
pub const LINK_SEND_WINDOW: u64 = LINK_RECEIVE_WINDOW as u64;

/// Which paths peer links may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PathPolicy {
    /// Direct when possible, through the relay when not (the default).
    #[default]
    Auto,
    /// Direct addresses only, no relay.
    DirectOnly,
    /// The relay only, no direct addresses.
    RelayOnly,
}

/// One relay of the session, from the manifest.
#[derive(Debug, Clone)]
pub struct SessionRelay {
    pub url: RelayUrl,
    /// UDP port of QUIC address discovery, if the relay's host runs it.
    pub quic_port: Option<u16>,
    /// The pin of its self-signed certificate; `None` to trust the platform's CA roots.
    pub pin: Option<CertPin>,
}

/// The session's relays, in the order parties move through them: the lobby server's first,
/// then the creator's others. The endpoint's relay map holds one at a time (its home, where
/// peers reach it): the first at the start, so every party homes on the same relay, and the
/// next once it dies ([`crate::failover`]). Left to choose among several, iroh would home
/// each party on the relay that answered its probe fastest, a coin toss among near relays.
#[derive(Debug, Clone)]
pub struct RelayPlan {
    pub relays: Vec<SessionRelay>,
}

impl SessionRelay {
    /// The relay as iroh configures it.
    pub fn config(&self) -> iroh_relay::RelayConfig {
        let quic = self.quic_port.map(iroh_relay::RelayQuicConfig::new);
        iroh_relay::RelayConfig::new(self.url.clone(), quic)
    }
}

impl RelayPlan {
    /// The relay map to start with: the first relay.
    fn first_home(&self) -> RelayMap {
        self.relays
            .iter()
            .take(1)
            .map(SessionRelay::config)
            .collect()
    }

    /// Trust for the relays' TLS: their pins, and the platform's CA roots if one has no pin;
    /// `None` (iroh's default roots) if none is pinned.
    fn tls(&self) -> Option<CaTlsConfig> {
        let pins: Vec<CertPin> = self.relays.iter().filter_map(|relay| relay.pin).collect();
        if pins.is_empty() {
            return None;
        }
        let ca_too = pins.len() < self.relays.len();
        Some(CaTlsConfig::custom_server_cert_verifier(
            std::sync::Arc::new(move |provider| {
                mpcnet_client::servers_verifier(&pins, ca_too, provider)
                    .map_err(std::io::Error::other)
            }),
        ))
    }
}

/// Why the endpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("bad bind address {0}")]
    BindAddress(SocketAddr),
    #[error("cannot bind the peer endpoint: {0}")]
    Bind(String),
    #[error("a patience of {0:?} is more than QUIC can wait")]
    Patience(std::time::Duration),
}

/// Binds the endpoint of `identity`. `bind` restricts direct paths to one local address
/// (e.g. 127.0.0.1:0 for a run on one machine; it also turns the port mapper off); a link whose
/// peer is silent for longer than `patience` (plus the [`RECOVERY_ALLOWANCE`]) ends.
pub async fn bind(
    identity: &Identity,
    relay: &RelayPlan,
    policy: PathPolicy,
    bind: Option<SocketAddr>,
    patience: std::time::Duration,
) -> Result<Endpoint, EndpointError> {
    let idle = IdleTimeout::try_from(patience.saturating_add(RECOVERY_ALLOWANCE))
        .map_err(|_| EndpointError::Patience(patience))?;
    let transport = QuicTransportConfig::builder()
        .max_idle_timeout(Some(idle))
        // No ACK frequency extension, though it would save a third of the agents' CPU per
        // message: noq-proto 1.4.0 panics sending its frame, on bounds a peer's transport
        // parameters choose (any key may handshake) and when the packet has no room left (seen
        // in E3 after a 120 s outage). docs/performance.md reads the code.
        .keep_alive_interval(LINK_KEEP_ALIVE)
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_MPYC_STREAMS_PER_LINK))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_ONE_WAY_STREAMS_PER_LINK))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(LINK_RECEIVE_WINDOW))
        .send_window(LINK_SEND_WINDOW)
        .build();
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&identity.to_secret_bytes()))
        .alpns(vec![ALPN.to_vec()])
        .transport_config(transport);
    if let Some(tls) = relay.tls() {
        builder = builder.ca_tls_config(tls);
    }
    builder = match policy {
        PathPolicy::DirectOnly => builder.relay_mode(RelayMode::Disabled),
        PathPolicy::Auto | PathPolicy::RelayOnly => {
            builder.relay_mode(RelayMode::Custom(relay.first_home()))
        }
    };
    if policy == PathPolicy::RelayOnly {
        builder = builder.clear_ip_transports();
    } else if let Some(address) = bind {
        builder = builder
            .clear_ip_transports()
            .bind_addr(address)
            .map_err(|_| EndpointError::BindAddress(address))?;
    }
    if bind.is_some_and(|address| address.ip().is_loopback()) || policy == PathPolicy::RelayOnly {
        builder = builder.portmapper_config(PortmapperConfig::Disabled);
    }
    builder
        .bind()
        .await
        .map_err(|e| EndpointError::Bind(e.to_string()))
}

/// How to reach `peer`: every relay of the session and its direct addresses, as the policy
/// allows. A first packet goes out on each (iroh sends to every known path until one is
/// chosen), so a dial gets through whichever relay the peer is at.
pub fn peer_addr(
    peer: iroh::PublicKey,
    relay: &RelayPlan,
    direct: &[SocketAddr],
    policy: PathPolicy,
) -> EndpointAddr {
    let mut addr = EndpointAddr::new(peer);
    if policy != PathPolicy::DirectOnly {
        for session_relay in &relay.relays {
            addr = addr.with_relay_url(session_relay.url.clone());
        }
    }
    if policy != PathPolicy::RelayOnly {
        for address in direct {
            addr = addr.with_ip_addr(*address);
        }
    }
    addr
}
