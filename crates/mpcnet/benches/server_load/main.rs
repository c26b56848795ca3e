//! Load benchmark of the lobby server: the real `mpcnet serve` as a child process, driven over
//! loopback. Prints figures, asserts none. Full size under `cargo bench`, a tiny size under
//! `cargo test` so it keeps working (`mode.rs`, shared by every benchmark).
//!
//! Prints: creates/s and joins/s with latencies, server memory and database size; relayed
//! throughput of many concurrent pairs; an honest client's latency quiet and under each attack.
//! Sizes: MPCNET_BENCH_LOBBIES, MPCNET_BENCH_PAIRS, MPCNET_BENCH_PAIR_BYTES,
//! MPCNET_BENCH_SAMPLES.

mod abuse;
mod api;
#[path = "../../../mpcnet-agent/benches/support/mode.rs"]
mod mode;
mod relay;
mod server;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api::{Api, Call, PlannedLobby};
use mode::Mode;
use server::Server;

/// How big a run is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Lobbies of three parties made one after another, and as many again concurrently.
    pub lobbies: usize,
    pub concurrency: usize,
    /// Concurrent relayed pairs and the bytes each moves.
    pub pairs: usize,
    pub pair_bytes: usize,
    /// The honest client's requests per measurement, and the parties of the attacked lobby.
    pub samples: usize,
    pub big_lobby: u16,
    /// Concurrent large creates, and their program size.
    pub big_creates: usize,
    pub big_program: usize,
}

impl Sizes {
    fn from_env(mode: Mode) -> Self {
        Self {
            lobbies: mode.size("MPCNET_BENCH_LOBBIES", 1000, 4),
            concurrency: 8,
            pairs: mode.size("MPCNET_BENCH_PAIRS", 100, 2),
            pair_bytes: mode.size("MPCNET_BENCH_PAIR_BYTES", 2_000_000, 100_000),
            samples: mode.size("MPCNET_BENCH_SAMPLES", 400, 20),
            big_lobby: mode.pick(64, 4),
            big_creates: mode.pick(32, 2),
            big_program: mode.pick(8 << 20, 1 << 20),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mode = Mode::from_args();
    let sizes = Sizes::from_env(mode);
    println!("server load benchmark ({mode}): {sizes:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let abuser = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("abuser")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        lobby_rates(&sizes).await?;
        abuse::run(&sizes, abuser.handle().clone()).await
    })?;
    // Endpoints left closing in the background must not hold the process.
    abuser.shutdown_timeout(Duration::from_secs(2));
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// A server with per-address bounds opened up: the load comes from few loopback addresses
/// (relay clients all from 127.0.0.1), standing for many clients.
fn load_server() -> anyhow::Result<Server> {
    Server::start(&[
        "--max-lobbies-per-ip",
        "1000000",
        "--max-connections-per-ip",
        "4096",
        "--max-new-connections-per-ip",
        "100000",
        "--max-lobbies",
        "1000000",
    ])
}

/// Source address of load client `index` (127.0.1.x).
fn load_source(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, u8::try_from(index % 250 + 1).unwrap_or(1))
}

/// Phase 1 and 2: creates and joins, one at a time and concurrently; then relayed pairs.
async fn lobby_rates(sizes: &Sizes) -> anyhow::Result<()> {
    let server = load_server()?;
    let rss_before = server.rss_mb()?;
    for concurrency in [1, sizes.concurrency] {
        let lobbies = (0..sizes.lobbies)
            .map(|_| PlannedLobby::new(&server, 3, b"print(1)\n"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let creates = lobbies.iter().map(|l| l.create.clone()).collect();
        let joins = lobbies.iter().flat_map(|l| l.joins.clone()).collect();
        let creates = timed_calls(&server, creates, concurrency).await?;
        let joins = timed_calls(&server, joins, concurrency).await?;
        println!(
            "lobby API, {concurrency} client(s) at once, {} lobbies of 3: creates {}; joins {}",
            sizes.lobbies,
            creates.summary(),
            joins.summary()
        );
    }
    println!(
        "server after {} lobbies: RSS {rss_before:.1} MB before, {:.1} MB after; database {:.2} MB (lobbies.sqlite3 + -wal)",
        2 * sizes.lobbies,
        server.rss_mb()?,
        server.database_bytes() as f64 / 1e6
    );
    relayed_pairs(&server, sizes).await
}

/// Latencies and outcome of a batch of requests.
struct Timed {
    wall: Duration,
    latencies: Vec<Duration>,
    failed: usize,
}

impl Timed {
    fn summary(&self) -> String {
        let mut latencies = self.latencies.clone();
        format!(
            "{:.0}/s (p50 {:.1} ms, p99 {:.1} ms, {} failed)",
            latencies.len() as f64 / self.wall.as_secs_f64(),
            ms(percentile(&mut latencies, 0.5)),
            ms(percentile(&mut latencies, 0.99)),
            self.failed
        )
    }
}

/// Sends `calls` from `concurrency` clients (each its own source address), each taking the
/// next call when its last one is answered.
async fn timed_calls(
    server: &Server,
    calls: Vec<Call>,
    concurrency: usize,
) -> anyhow::Result<Timed> {
    let calls = Arc::new(calls);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let api = Api::new(server, load_source(worker))?;
        let (calls, next) = (calls.clone(), next.clone());
        workers.spawn(async move {
            let (mut latencies, mut failed) = (Vec::new(), 0);
            while let Some(call) = calls.get(next.fetch_add(1, Ordering::Relaxed)) {
                let sent = Instant::now();
                match api.send(call).await {
                    Ok(status) if status.is_success() => latencies.push(sent.elapsed()),
                    _ => failed += 1,
                }
            }
            (latencies, failed)
        });
    }
    let mut timed = Timed {
        wall: Duration::ZERO,
        latencies: Vec::new(),
        failed: 0,
    };
    while let Some(done) = workers.join_next().await {
        let (latencies, failed) = done?;
        timed.latencies.extend(latencies);
        timed.failed += failed;
    }
    timed.wall = start.elapsed();
    Ok(timed)
}

/// Phase 2: `pairs` sealed 2-party sessions, each linked through its relay, all moving
/// `pair_bytes` at once.
async fn relayed_pairs(server: &Server, sizes: &Sizes) -> anyhow::Result<()> {
    let api = Api::new(server, load_source(200))?;
    let mut pairs = Vec::new();
    for _ in 0..sizes.pairs {
        let lobby = PlannedLobby::new(server, 2, b"print(1)\n")?;
        lobby.make_sealed(&api).await?;
        pairs.push(Arc::new(relay::pair(server, &lobby).await?));
    }
    let rss_linked = server.rss_mb()?;
    let start = Instant::now();
    let mut transfers = tokio::task::JoinSet::new();
    for pair in &pairs {
        let (pair, bytes) = (pair.clone(), sizes.pair_bytes);
        transfers.spawn(async move { pair.transfer(bytes).await });
    }
    let mut per_pair = Vec::new();
    while let Some(done) = transfers.join_next().await {
        per_pair.push(mbit(sizes.pair_bytes, done??));
    }
    let wall = start.elapsed();
    per_pair.sort_by(f64::total_cmp);
    println!(
        "relay, {} concurrent relayed pairs x {:.1} MB: aggregate {:.0} Mbit/s; per pair min {:.1}, median {:.1} Mbit/s; server RSS {rss_linked:.1} MB linked, {:.1} MB after",
        sizes.pairs,
        sizes.pair_bytes as f64 / 1e6,
        mbit(sizes.pair_bytes * sizes.pairs, wall),
        per_pair.first().copied().unwrap_or(0.0),
        per_pair.get(per_pair.len() / 2).copied().unwrap_or(0.0),
        server.rss_mb()?
    );
    for pair in &pairs {
        pair.close().await;
    }
    Ok(())
}

pub fn mbit(bytes: usize, time: Duration) -> f64 {
    bytes as f64 * 8.0 / 1e6 / time.as_secs_f64()
}

pub fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1000.0
}

/// The `q` quantile (nearest rank) of `values`; zero if there are none.
pub fn percentile(values: &mut [Duration], q: f64) -> Duration {
    values.sort();
    let Some(last) = values.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    values[((last as f64) * q).round() as usize]
}
