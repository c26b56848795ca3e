//! Forward benchmark: what one mpcnet forward adds on loopback, measured side by side with plain
//! TCP in the same run. Two agents (direct link, in one process) forward a connection to the
//! near agent's Unix socket (as MPyC's under mpcnet) to an echo or sink server's Unix socket; the
//! baseline connects to the same server over loopback TCP (as MPyC without mpcnet).
//!
//! Prints small-message ping-pong RTT (median and p99) and bulk throughput, each as a ratio to
//! plain TCP, with their targets. `MPCNET_BENCH_ROUNDS` and `MPCNET_BENCH_MEGABYTES` set the
//! sizes; under `cargo test` a tiny run (`support/mode.rs`) checks every echoed message and
//! every byte's arrival, so a broken forward fails it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mpcnet_agent::sockets::SocketDir;
use mpcnet_agent::{control, finish, forward};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::task::TaskTracker;

#[path = "../tests/support/linked_pair.rs"]
mod linked_pair;
#[path = "support/mode.rs"]
mod mode;

const MESSAGE: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mode = mode::Mode::from_args();
    let rounds = mode.size("MPCNET_BENCH_ROUNDS", 20_000, 200);
    let megabytes = mode.size("MPCNET_BENCH_MEGABYTES", 2_000, 4);
    let sockets = SocketDir::create()?;
    let echo = spawn_server(echo, sockets.party(1)).await?;
    let sink = spawn_server(sink, sockets.party(2)).await?;
    let (to_echo, echo_link) = forward_to(&echo, sockets.party(3)).await?;
    let (to_sink, sink_link) = forward_to(&sink, sockets.party(4)).await?;

    println!(
        "forward benchmark ({mode}) on loopback: {rounds} round trips of {MESSAGE} B, {megabytes} MB bulk"
    );
    // Interleave to share the machine's noise fairly.
    let mut plain_rtts = Vec::new();
    let mut forward_rtts = Vec::new();
    for _ in 0..2 {
        plain_rtts.extend(ping_pong(&echo.tcp, rounds / 2).await?);
        forward_rtts.extend(ping_pong(&to_echo, rounds / 2).await?);
    }
    let (plain_p50, plain_p99) = percentiles(&mut plain_rtts);
    let (forward_p50, forward_p99) = percentiles(&mut forward_rtts);
    println!(
        "ping-pong RTT p50: plain TCP {plain_p50:.1} us, forward {forward_p50:.1} us, added {:.1} us (target < 60), ratio {:.2}x",
        forward_p50 - plain_p50,
        forward_p50 / plain_p50
    );
    println!("ping-pong RTT p99: plain TCP {plain_p99:.1} us, forward {forward_p99:.1} us");

    let plain = bulk(&sink.tcp, megabytes).await?;
    let forwarded = bulk(&to_sink, megabytes).await?;
    println!(
        "bulk throughput: plain TCP {plain:.2} Gbit/s, forward {forwarded:.2} Gbit/s (target >= 2), {:.0}% of plain (target >= 25%)",
        100.0 * forwarded / plain
    );
    echo_link.close().await;
    sink_link.close().await;
    Ok(())
}

/// What keeps a forward working: the links' endpoints and meshes, their keepers (control
/// streams, so sent bytes are confirmed) and the listener of one-way streams.
#[allow(dead_code)] // held; only the first is read, to close it
struct Forwarding(
    linked_pair::Alive,
    [tokio_util::task::AbortOnDropHandle<()>; 2],
    finish::FinishListener,
);

impl Forwarding {
    /// Closes the forward's endpoints, as an agent does at its end.
    async fn close(self) {
        self.0.close().await;
    }
}

/// Where a client connects: over loopback TCP, or to a Unix socket.
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A server reachable both ways: `tcp` for the baseline, `unix` for the far agent.
struct Server {
    tcp: Target,
    unix: PathBuf,
}

/// A connection of either kind.
trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}
type Connection = Box<dyn Duplex>;

/// Two agents linked directly (in this process); returns the near agent's forward socket (made
/// at `forward_socket`) that reaches `target` through them, and what keeps it working.
async fn forward_to(
    target: &Server,
    forward_socket: PathBuf,
) -> anyhow::Result<(Target, Forwarding)> {
    let (near_link, far_link, alive) = linked_pair::linked_pair().await?;
    let patience = Duration::from_secs(60);
    let keepers = [
        control::keep(near_link.clone(), None, patience),
        control::keep(far_link.clone(), None, patience),
    ];
    let listener_of_one_way_streams = finish::listen(&[near_link.clone(), far_link.clone()]);
    let pumps = TaskTracker::new();
    let listener = UnixListener::bind(&forward_socket)?;
    tokio::spawn(forward::serve_outgoing(listener, near_link, pumps.clone()));
    tokio::spawn(forward::deliver_incoming(
        far_link,
        target.unix.clone(),
        Duration::from_secs(10),
        pumps,
    ));
    Ok((
        Target::Unix(forward_socket),
        Forwarding(alive, keepers, listener_of_one_way_streams),
    ))
}

/// Starts a server running `serve` for each connection, on loopback TCP and on the Unix socket
/// `unix`.
async fn spawn_server<F, Fut>(serve: F, unix: PathBuf) -> anyhow::Result<Server>
where
    F: Fn(Connection) -> Fut + Send + Copy + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address = tcp.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            stream.set_nodelay(true).ok();
            tokio::spawn(serve(Box::new(stream)));
        }
    });
    let local = UnixListener::bind(&unix)?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = local.accept().await {
            tokio::spawn(serve(Box::new(stream)));
        }
    });
    Ok(Server {
        tcp: Target::Tcp(address),
        unix,
    })
}

async fn echo(mut stream: Connection) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..read]).await?;
    }
}

/// Reads everything, then answers with how many bytes it read, so the sender knows all of them
/// arrived.
async fn sink(mut stream: Connection) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    loop {
        match stream.read(&mut buffer).await? {
            0 => return stream.write_all(&received.to_le_bytes()).await,
            read => received += read as u64,
        }
    }
}

/// Connects as MPyC's party 0 does: its first two bytes are its party id (the far agent checks it).
async fn connect_as_party_zero(target: &Target) -> anyhow::Result<Connection> {
    let mut stream: Connection = match target {
        Target::Tcp(address) => {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            Box::new(stream)
        }
        Target::Unix(path) => Box::new(UnixStream::connect(path).await?),
    };
    stream.write_all(&0u16.to_le_bytes()).await?;
    Ok(stream)
}

/// `rounds` round trips of one small message; returns each RTT in microseconds.
async fn ping_pong(server: &Target, rounds: usize) -> anyhow::Result<Vec<f64>> {
    let mut stream = connect_as_party_zero(server).await?;
    stream.read_exact(&mut [0u8; 2]).await?; // the echo of the party id
    for round in 0..100 {
        round_trip(&mut stream, round).await?;
    }
    let mut rtts = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let started = Instant::now();
        round_trip(&mut stream, round).await?;
        rtts.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(rtts)
}

/// Sends one message (its bytes from the round number) and checks that the same comes back.
async fn round_trip(stream: &mut Connection, round: usize) -> anyhow::Result<()> {
    let message = [round as u8; MESSAGE];
    let mut answer = [0u8; MESSAGE];
    stream.write_all(&message).await?;
    stream.read_exact(&mut answer).await?;
    anyhow::ensure!(answer == message, "round {round}: the echo differs");
    Ok(())
}

/// Sends `megabytes` MB and waits until the server has read them; returns Gbit/s.
async fn bulk(server: &Target, megabytes: usize) -> anyhow::Result<f64> {
    let mut stream = connect_as_party_zero(server).await?;
    let chunk = vec![0x5au8; 256 * 1024];
    let total = megabytes * 1_000_000;
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        let piece = chunk.len().min(total - sent);
        stream.write_all(&chunk[..piece]).await?;
        sent += piece;
    }
    stream.shutdown().await?;
    let mut received = [0u8; 8];
    stream.read_exact(&mut received).await?;
    let received = u64::from_le_bytes(received);
    anyhow::ensure!(
        received == total as u64 + 2, // and the party id
        "{total} bytes sent, {received} arrived"
    );
    Ok(total as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9)
}

/// Median and 99th percentile.
fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction) as usize];
    (at(0.5), at(0.99))
}
