//! `mpcnet serve`: starts the lobby server and its relay, prints the `--server` value on the
//! first line of stdout, and runs until Ctrl-C or SIGTERM.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use mpcnet_server::ServeConfig;

use crate::cli::ServeArgs;

pub async fn run(args: ServeArgs, home: &Path) -> anyhow::Result<()> {
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args.data.unwrap_or_else(|| home.join("server")),
        certificate_files: args.tls_cert.zip(args.tls_key),
        public_names: args.public_names,
        metrics_listen: args.metrics_listen.0,
        lobby_ttl: args.lobby_ttl,
        max_program_bytes: args.max_program_bytes,
        address_discovery: !args.no_address_discovery,
        max_lobbies: args.max_lobbies,
        max_lobbies_per_address: args.max_lobbies_per_ip,
        connection_limits: mpcnet_server::ConnectionLimits {
            total: args.max_connections,
            per_ip: args.max_connections_per_ip,
        },
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
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = server.wait() => result.context("the server stopped")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = terminate.recv() => tracing::info!("terminated; stopping"),
    }
    Ok(())
}
