//! The mpcnet lobby and mediator server: one process that keeps lobbies (HTTPS API over
//! SQLite), relays packets between members (embedded iroh relay on the same port) and tells
//! parties their public address (QUIC address discovery on the same port number, UDP).
//!
//! [`spawn`] starts everything and returns a [`RunningServer`] that owns every task:
//! dropping it stops the server. [`spawn_relay`] starts a relay alone, for another host
//! (`mpcnet relay`): it serves the sealed sessions of a lobby elsewhere, to their parties only.

pub mod api;
pub mod catalog;
pub mod departures;
mod https;

pub use https::ConnectionLimits;
pub use limits::{Limits, Rate, RelayLimits};
pub mod limits;
mod members;
pub mod metrics;
mod pages;
pub mod quota;
mod relay;
pub mod store;
pub mod tls;
mod views;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mpcnet_proto::ServerAddress;
use mpcnet_proto::api::ServerInfo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use url::Url;

use crate::api::{ApiConfig, ApiState};
use crate::members::{LobbyMembers, Members};
use crate::metrics::Metrics;
use crate::relay::SessionRelays;
use crate::store::{Store, StoreError};
use crate::tls::{CertificateSource, ServerCertificate, TlsError};

/// The file name of the lobby database in the data directory.
pub const DATABASE_FILE: &str = "lobbies.sqlite3";

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// TCP address of the HTTPS listener; QUIC address discovery uses the same port on UDP.
    pub listen: SocketAddr,
    /// Where the database and the self-signed certificate live.
    pub data_dir: PathBuf,
    /// A CA certificate and key; `None` for a self-signed certificate kept in `data_dir`.
    pub certificate_files: Option<(PathBuf, PathBuf)>,
    /// Host names or IP addresses parties use to reach this server; the first one is printed.
    pub public_names: Vec<String>,
    /// Where to serve Prometheus metrics; `None` to not serve them.
    pub metrics_listen: Option<SocketAddr>,
    /// How long a lobby lives.
    pub lobby_ttl: Duration,
    /// Whether to run QUIC address discovery on UDP.
    pub address_discovery: bool,
    /// Every bound the server keeps.
    pub limits: Limits,
}

/// What a relay on another host (`mpcnet relay`) needs to start.
#[derive(Debug, Clone)]
pub struct RelayServeConfig {
    /// TCP address of its HTTPS listener.
    pub listen: SocketAddr,
    /// Where its self-signed certificate lives.
    pub data_dir: PathBuf,
    /// Host names or IP addresses parties use to reach it; the first one is printed.
    pub public_names: Vec<String>,
    /// The lobby whose sealed, live sessions it serves; it asks the lobby who their parties are.
    pub lobby: ServerAddress,
    pub connections: ConnectionLimits,
    pub relay: RelayLimits,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("QUIC address discovery on UDP {address}: {source}")]
    AddressDiscovery {
        address: SocketAddr,
        source: iroh_relay::server::SpawnError,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("lobby database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Address(#[from] mpcnet_proto::InviteError),
    #[error("the lobby: {0}")]
    Lobby(#[from] mpcnet_client::ClientError),
}

/// A started server. Dropping it stops every task it started.
#[derive(Debug)]
pub struct RunningServer {
    /// The value parties pass as `--server` (with the certificate pin if self-signed).
    pub address: ServerAddress,
    /// Where the HTTPS listener is bound.
    pub https_addr: SocketAddr,
    /// Where QUIC address discovery is bound, if enabled.
    pub quic_addr: Option<SocketAddr>,
    /// Where the metrics listener is bound, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    tasks: JoinSet<std::io::Result<()>>,
    _address_discovery: Option<iroh_relay::server::Server>,
}

impl RunningServer {
    /// Waits until a listener fails (they run forever otherwise).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match self.tasks.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(join_error)) => Err(std::io::Error::other(join_error)),
            None => Ok(()),
        }
    }
}

/// Starts the server described by `config`.
pub async fn spawn(config: ServeConfig) -> Result<RunningServer, ServeError> {
    let Https {
        listener,
        https_addr,
        certificate,
        tls,
        address,
    } = Https::bind(
        config.listen,
        &config.data_dir,
        config.limits.connections,
        config.certificate_files.clone(),
        &config.public_names,
    )
    .await?;

    let address_discovery = if config.address_discovery {
        let udp = https_addr;
        let server = relay::spawn_address_discovery(udp, tls.clone())
            .await
            .map_err(|source| ServeError::AddressDiscovery {
                address: udp,
                source,
            })?;
        Some(server)
    } else {
        None
    };
    let quic_addr = address_discovery
        .as_ref()
        .and_then(|server| server.quic_addr());

    let store = Store::open(&config.data_dir.join(DATABASE_FILE))?;
    let metrics = Arc::new(Metrics::default());
    let state = ApiState::new(
        store.clone(),
        metrics.clone(),
        ApiConfig {
            lobby_ttl: config.lobby_ttl,
            limits: config.limits,
            info: ServerInfo {
                version: env!("CARGO_PKG_VERSION").into(),
                relay_quic_port: quic_addr.map(|addr| addr.port()),
                certificate: certificate
                    .pin
                    .map(|_| data_encoding::BASE64URL_NOPAD.encode(&certificate.chain[0])),
                max_program_bytes: config.limits.max_program_bytes as u64,
            },
        },
    );

    let mut tasks = JoinSet::new();
    let relays = SessionRelays::new(
        Members::Store(store),
        metrics.clone(),
        config.limits.relay,
        Some(state.departures()),
    );
    tasks.spawn(https::serve(
        listener,
        tls,
        relays.clone(),
        api::router(state.clone()),
        config.limits.connections,
    ));
    tasks.spawn(sweep(relays));
    let expiry_period =
        (config.lobby_ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tasks.spawn(async move {
        api::expire_lobbies(state, expiry_period).await;
        Ok(())
    });
    let metrics_addr = match config.metrics_listen {
        Some(listen) => {
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|source| ServeError::Bind {
                    address: listen,
                    source,
                })?;
            let bound = listener.local_addr().ok();
            tasks.spawn(metrics::serve(listener, metrics));
            bound
        }
        None => None,
    };

    Ok(RunningServer {
        address,
        https_addr,
        quic_addr,
        metrics_addr,
        tasks,
        _address_discovery: address_discovery,
    })
}

/// Starts a relay that serves the sealed, live sessions of the lobby `config.lobby`, admitting
/// only the parties the lobby names for each (asked once per session every few seconds).
pub async fn spawn_relay(config: RelayServeConfig) -> Result<RunningServer, ServeError> {
    let Https {
        listener,
        https_addr,
        tls,
        address,
        ..
    } = Https::bind(
        config.listen,
        &config.data_dir,
        config.connections,
        None,
        &config.public_names,
    )
    .await?;
    let lobby = mpcnet_client::LobbyClient::new(&config.lobby)?;
    let relays = SessionRelays::new(
        Members::Lobby(LobbyMembers::new(lobby)),
        Arc::new(Metrics::default()),
        config.relay,
        None,
    );
    let mut tasks = JoinSet::new();
    tasks.spawn(https::serve(
        listener,
        tls,
        relays.clone(),
        api::probe_router(),
        config.connections,
    ));
    tasks.spawn(sweep(relays));
    Ok(RunningServer {
        address,
        https_addr,
        quic_addr: None,
        metrics_addr: None,
        tasks,
        _address_discovery: None,
    })
}

/// A server's HTTPS side before it serves: the bound listener, its certificate and TLS
/// configuration, and the address parties are told to use.
struct Https {
    listener: TcpListener,
    https_addr: SocketAddr,
    certificate: ServerCertificate,
    tls: Arc<rustls::ServerConfig>,
    address: ServerAddress,
}

impl Https {
    /// Makes the data directory, binds `listen` and loads the certificate (`files`, else the
    /// self-signed one kept in `data_dir`, made for `public_names` if missing).
    async fn bind(
        listen: SocketAddr,
        data_dir: &std::path::Path,
        connections: ConnectionLimits,
        files: Option<(PathBuf, PathBuf)>,
        public_names: &[String],
    ) -> Result<Self, ServeError> {
        raise_open_file_limit(connections.total);
        std::fs::create_dir_all(data_dir).map_err(|source| ServeError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let bind_error = |source| ServeError::Bind {
            address: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let https_addr = listener.local_addr().map_err(bind_error)?;
        let source = certificate_source(files, data_dir, public_names, listen);
        let certificate = ServerCertificate::load(&source)?;
        let tls = certificate.server_config()?;
        let address = advertised_address(public_names, https_addr, &certificate)?;
        Ok(Self {
            listener,
            https_addr,
            certificate,
            tls,
            address,
        })
    }
}

/// Ends stuck handshakes and ended sessions of `relays`, forever.
async fn sweep(relays: Arc<SessionRelays>) -> std::io::Result<()> {
    let mut ticker = tokio::time::interval(relay::SWEEP_PERIOD);
    loop {
        ticker.tick().await;
        relays.sweep().await;
    }
}

/// Each connection holds two descriptors (its socket and the ticket's handle on it): raises the
/// soft limit on open files as far as the hard limit allows, and warns if that is too few.
fn raise_open_file_limit(connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let needed = (connections as u64).saturating_mul(2).saturating_add(256);
    let mut limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(needed, |hard| {
        hard.min(needed.max(limit.current.unwrap_or(0)))
    });
    if limit.current.is_some_and(|soft| soft < wanted) {
        limit.current = Some(wanted);
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "cannot raise the limit on open files");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    if now.is_some_and(|soft| soft < needed) {
        tracing::warn!(
            open_files = now,
            needed,
            "the limit on open files is below what --max-connections needs; lower it or raise the limit"
        );
    }
}

fn certificate_source(
    files: Option<(PathBuf, PathBuf)>,
    data_dir: &std::path::Path,
    public_names: &[String],
    listen: SocketAddr,
) -> CertificateSource {
    match files {
        Some((cert, key)) => CertificateSource::Files { cert, key },
        None => {
            let mut names = public_names.to_vec();
            names.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
            if listen.ip().is_unspecified() {
                names.push(host_name());
            } else {
                names.push(listen.ip().to_string());
            }
            let mut unique = Vec::new();
            for name in names {
                if !unique.contains(&name) {
                    unique.push(name);
                }
            }
            CertificateSource::SelfSigned {
                data_dir: data_dir.to_path_buf(),
                names: unique,
            }
        }
    }
}

/// The address parties should use: the first public name, else the listen address, else the host name.
fn advertised_address(
    public_names: &[String],
    bound: SocketAddr,
    certificate: &ServerCertificate,
) -> Result<ServerAddress, ServeError> {
    let host = match public_names.first() {
        Some(name) => name.clone(),
        None if bound.ip().is_unspecified() => host_name(),
        None => match bound.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        },
    };
    let origin = format!("https://{host}:{}", bound.port());
    let url = Url::parse(&origin).map_err(|e| mpcnet_proto::InviteError::BadServer {
        address: origin.clone(),
        why: e.to_string(),
    })?;
    Ok(ServerAddress::new(&url, certificate.pin)?)
}

fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Locks `mutex`, going on past a panic in another holder: every lock of this crate guards
/// state that a panic cannot leave half-changed in a way that matters (counters, caches, maps
/// of open things; SQLite rolls its transactions back).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
