//! The embedded relay through a real server and real iroh endpoints: lobby members get a home
//! relay, strangers are turned away, and the refusal is counted in the metrics.

use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::{Endpoint, PortmapperConfig, presets};
use iroh::tls::CaTlsConfig;
use iroh::{RelayMap, RelayMode, RelayUrl, SecretKey};
use mpcnet_client::Home;
use mpcnet_client::session::{self, SessionPlan};
use mpcnet_proto::Identity;
use mpcnet_server::{RunningServer, ServeConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

async fn start_server(data_dir: &std::path::Path) -> RunningServer {
    mpcnet_server::spawn(ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.into(),
        certificate_files: None,
        public_names: Vec::new(),
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        lobby_ttl: Duration::from_secs(600),
        max_program_bytes: 1 << 20,
        address_discovery: true,
        max_lobbies: 100,
        max_lobbies_per_address: 100,
        connection_limits: mpcnet_server::ConnectionLimits {
            total: 64,
            per_ip: 16,
        },
    })
    .await
    .expect("server starts")
}

/// An endpoint that may use only our relay: no direct addresses, no public services.
async fn relay_only_endpoint(
    server: &RunningServer,
    data_dir: &std::path::Path,
    identity: &Identity,
) -> Endpoint {
    let certificate =
        CertificateDer::from_pem_file(data_dir.join("tls-cert.pem")).expect("certificate");
    let url: RelayUrl = server.address.origin().as_str().parse().expect("relay url");
    let quic = server
        .quic_addr
        .map(|addr| iroh_relay::RelayQuicConfig::new(addr.port()));
    let map: RelayMap = iroh_relay::RelayConfig::new(url, quic).into();
    Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&identity.to_secret_bytes()))
        .relay_mode(RelayMode::Custom(map))
        .ca_tls_config(CaTlsConfig::custom_roots([certificate]))
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind()
        .await
        .expect("endpoint binds")
}

/// Whether an endpoint of `identity` gets a home relay within `limit`.
async fn reaches_relay(
    server: &RunningServer,
    dir: &std::path::Path,
    identity: &Identity,
    limit: Duration,
) -> bool {
    let endpoint = relay_only_endpoint(server, dir, identity).await;
    let online = tokio::time::timeout(limit, endpoint.online()).await.is_ok();
    endpoint.close().await;
    online
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_admits_parties_of_sealed_lobbies_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let program = dir.path().join("mean.py");
    std::fs::write(&program, "print(1)\n").expect("program");
    let (creator, joiner) = (Identity::generate(), Identity::generate());
    let plan = SessionPlan {
        server: server.address.clone(),
        parties: 2,
        program,
        name: None,
        party_name: "alice".into(),
        args: Vec::new(),
    };
    let invite = session::create(&creator, &plan)
        .await
        .expect("lobby created");
    assert!(
        !reaches_relay(&server, dir.path(), &creator, Duration::from_secs(3)).await,
        "a party of a lobby that is not sealed yet gets no relay"
    );

    let home = |name: &str| Home::open(dir.path().join(name)).expect("home");
    session::join(&home("bob"), &joiner, &invite, "bob", None, None)
        .await
        .expect("joined");
    let sealed = session::status(&home("alice"), &creator, &invite, None)
        .await
        .expect("sealed");
    assert_eq!(sealed.state, "sealed");
    assert!(
        reaches_relay(&server, dir.path(), &creator, Duration::from_secs(10)).await,
        "a party of a sealed lobby reaches its home relay"
    );
    assert!(
        !reaches_relay(
            &server,
            dir.path(),
            &Identity::generate(),
            Duration::from_secs(3)
        )
        .await,
        "a stranger must not get a home relay"
    );

    // Plain HTTP, but reqwest still wants a process-wide TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics_url = format!("http://{}/metrics", server.metrics_addr.expect("metrics"));
    let metrics = reqwest::get(&metrics_url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let count = |outcome: &str| {
        metrics
            .lines()
            .find(|line| {
                line.starts_with(&format!(
                    "mpcnet_relay_admissions_total{{outcome=\"{outcome}\"}}"
                ))
            })
            .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(count("admitted") >= 1, "{metrics}");
    assert!(count("refused") >= 2, "{metrics}");
    assert!(
        metrics.contains("mpcnet_lobbies_created_total 1"),
        "{metrics}"
    );
}
