//! `mpcnet serve`: starts the lobby server and its relay, prints the `--server` value on the
//! first line of stdout, and runs until Ctrl-C or SIGTERM. `mpcnet relay` does the same for a
//! relay alone, serving the sessions of a lobby on another host (its `--relay` value).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use mpcnet_server::{Limits, RelayLimits, RelayServeConfig, RunningServer, ServeConfig};

use crate::cli::{RelayArgs, ServeArgs};

/// The server's bounds: the defaults, with what the flags set.
fn limits(args: &ServeArgs) -> Limits {
    let defaults = Limits::default();
    Limits {
        max_program_bytes: args.max_program_bytes,
        stored_program_bytes: args.max_stored_program_bytes,
        stored_program_bytes_per_creator: args.max_program_bytes_per_ip,
        max_lobbies: args.max_lobbies,
        max_lobbies_per_creator: args.max_lobbies_per_ip,
        connections: args.connections.limits(),
        relay: RelayLimits {
            client_rate: args.relay_rate.rate(),
            keys_per_creator: args.relay_clients_per_ip,
            bytes_per_creator: args.relay_bytes_per_ip,
            ..defaults.relay
        },
        ..defaults
    }
}

pub async fn run(args: ServeArgs, home: &Path) -> anyhow::Result<()> {
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args.data.clone().unwrap_or_else(|| home.join("server")),
        certificate_files: args.tls_cert.clone().zip(args.tls_key.clone()),
        public_names: args.public_names.clone(),
        metrics_listen: args.metrics_listen.0,
        lobby_ttl: args.lobby_ttl,
        address_discovery: !args.no_address_discovery,
        limits: limits(&args),
    };
    let data_dir = config.data_dir.clone();
    let mut server = mpcnet_server::spawn(config)
        .await
        .context("starting the server")?;
    println!("{}", server.address);
    std::io::stdout().flush()?;
    tracing::info!(
        https = %server.https_addr,
        quic = ?server.quic_addr,
        metrics = ?server.metrics_addr,
        data = %data_dir.display(),
        web = %server.address.origin(),
        "serving lobbies, relay and web pages; give parties the --server value printed on stdout"
    );
    until_stopped(&mut server).await
}

pub async fn run_relay(args: RelayArgs, home: &Path) -> anyhow::Result<()> {
    let defaults = Limits::default();
    let config = RelayServeConfig {
        listen: args.listen,
        data_dir: args.data.clone().unwrap_or_else(|| home.join("relay")),
        public_names: args.public_names.clone(),
        lobby: args.lobby.clone(),
        connections: args.connections.limits(),
        relay: RelayLimits {
            client_rate: args.relay_rate.rate(),
            ..defaults.relay
        },
    };
    let mut server = mpcnet_server::spawn_relay(config)
        .await
        .context("starting the relay")?;
    println!("{}", server.address);
    std::io::stdout().flush()?;
    tracing::info!(
        https = %server.https_addr,
        lobby = %args.lobby,
        "relaying for the lobby's sessions; give the creator the --relay value printed on stdout"
    );
    until_stopped(&mut server).await
}

/// Runs `server` until it fails, Ctrl-C or SIGTERM.
async fn until_stopped(server: &mut RunningServer) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = server.wait() => result.context("the server stopped")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = terminate.recv() => tracing::info!("terminated; stopping"),
    }
    Ok(())
}
