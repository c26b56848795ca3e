//! Phase 3: an honest client's latency (GET of a small lobby's view from 127.0.0.2) quiet, then
//! while an abusive client runs each attack in turn (and quiet again after each, the lower
//! quiet figure being the baseline), each from an address of its own
//! (127.0.0.10 and up), so the server's per-address limits fall on the abuser alone and one
//! attack's spent limits do not blunt the next. Prints each attack's ratio to quiet.
//!
//! The abuser runs on a runtime of its own with one thread: on this one machine it stands for
//! an attacker elsewhere with a core's worth of client work, and it cannot starve the honest
//! client's tasks in a shared runtime (which would measure the benchmark, not the server).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mpcnet_proto::RunReport;
use mpcnet_proto::run_report::RunState;
use reqwest::{Method, StatusCode};
use tokio::runtime::Handle;
use tokio::task::JoinSet;

use crate::api::{Api, Call, PlannedLobby};
use crate::relay::{self, Upgrade};
use crate::server::Server;
use crate::{Sizes, ms, percentile};

const HONEST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The abuser's address in attack (a), (b), ... : 127.0.0.10, .11, ...
fn abuser(attack: char) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + (attack as u8 - b'a'))
}
const SETUP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
/// Live pages of the attacked lobby come from these (16 pages per address at most).
const PAGES: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 5), Ipv4Addr::new(127, 0, 0, 6)];
/// Every attack loop ends by this, even if never told to stop.
const ATTACK_LIMIT: Duration = Duration::from_secs(120);
const MAX_ITERATIONS: u64 = 10_000_000;
const WARM_UP: Duration = Duration::from_millis(300);
const HONEST_GAP: Duration = Duration::from_millis(5);
const PROGRAM: &[u8] = b"print(1)\n";
type Attackers = JoinSet<anyhow::Result<()>>;

/// What an attack did, counted as it goes.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    refused: AtomicU64,
    /// Requests whose connection the server closed (before TLS, or while the body was sent).
    closed: AtomicU64,
    other: AtomicU64,
    bytes: AtomicU64,
    events: AtomicU64,
    /// What the first "other" outcome was, to tell what those errors are.
    first_other: std::sync::OnceLock<String>,
}

impl Tally {
    fn status(&self, status: StatusCode) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let refused = [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ];
        if refused.contains(&status) {
            self.refused.fetch_add(1, Ordering::Relaxed);
        } else if !status.is_success() {
            self.other.fetch_add(1, Ordering::Relaxed);
            let _ = self.first_other.set(status.to_string());
        }
    }

    fn outcome(&self, answer: anyhow::Result<StatusCode>) {
        match answer {
            Ok(status) => self.status(status),
            Err(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                self.closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// An attack under way: its tasks (on the abuser's runtime), their stop flag and counts.
struct Attack {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Attackers,
    abuser: Handle,
    started: Instant,
}

impl Attack {
    fn new(abuser: &Handle) -> Self {
        Self {
            stop: Arc::default(),
            tally: Arc::default(),
            tasks: JoinSet::new(),
            abuser: abuser.clone(),
            started: Instant::now(),
        }
    }

    /// Runs `task` as part of the attack, on the abuser's runtime.
    fn spawn(&mut self, task: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        self.tasks.spawn_on(task, &self.abuser);
    }

    /// Whether a loop of the attack should go on after `iteration` rounds.
    fn goes_on(stop: &AtomicBool, started: Instant, iteration: u64) -> bool {
        !stop.load(Ordering::Relaxed)
            && started.elapsed() < ATTACK_LIMIT
            && iteration < MAX_ITERATIONS
    }
}

/// An honest client's latencies: p50 and p99, and how many of its requests failed.
#[derive(Clone, Copy)]
struct Latency {
    p50: Duration,
    p99: Duration,
    failed: usize,
}

async fn honest_latency(api: &Api, path: &str, samples: usize) -> anyhow::Result<Latency> {
    let (mut latencies, mut failed) = (Vec::new(), 0);
    let start = Instant::now();
    for _ in 0..samples {
        if start.elapsed() > ATTACK_LIMIT / 2 {
            break;
        }
        match api.timed_get(path).await {
            Ok((time, status)) if status.is_success() => latencies.push(time),
            _ => failed += 1,
        }
        tokio::time::sleep(HONEST_GAP).await;
    }
    Ok(Latency {
        p50: percentile(&mut latencies, 0.5),
        p99: percentile(&mut latencies, 0.99),
        failed,
    })
}

/// The lab of phase 3: a server with its default limits and the lobbies the attacks use.
struct Lab {
    server: Arc<Server>,
    honest: Api,
    honest_path: String,
    quiet: Latency,
    small: PlannedLobby,
    big: PlannedLobby,
    sizes: Sizes,
    abuser: Handle,
}

/// Runs the attacks; `abuser` is the runtime they run on, not the honest client's.
pub async fn run(sizes: &Sizes, abuser: Handle) -> anyhow::Result<()> {
    let server = Arc::new(Server::start(&[])?);
    let setup = Api::new(&server, SETUP)?;
    let small = PlannedLobby::new(&server, 3, PROGRAM)?;
    small.make_sealed(&setup).await?;
    let big = PlannedLobby::new(&server, sizes.big_lobby, PROGRAM)?;
    big.make_sealed(&setup).await?;
    let honest = Api::new(&server, HONEST)?;
    let honest_path = small.view_path();
    let quiet = honest_latency(&honest, &honest_path, sizes.samples).await?;
    println!(
        "honest client (GET /view of a 3-party lobby from 127.0.0.2), quiet: p50 {:.2} ms, p99 {:.2} ms, {} failed",
        ms(quiet.p50),
        ms(quiet.p99),
        quiet.failed
    );
    let lab = Lab {
        server,
        honest,
        honest_path,
        quiet,
        small,
        big,
        sizes: *sizes,
        abuser,
    };
    lab.spin_control().await?;
    lab.view_pollers().await?;
    lab.report_flood().await?;
    lab.unfinished_upgrades().await?;
    lab.big_creates().await?;
    lab.relay_flood().await
}

impl Lab {
    /// Measures the honest client while `attack` runs, stops it and prints one line.
    async fn measure(&self, name: &str, mut attack: Attack) -> anyhow::Result<Arc<Tally>> {
        let peak = self.sample_peak_rss(attack.stop.clone());
        tokio::time::sleep(WARM_UP).await;
        let under = honest_latency(&self.honest, &self.honest_path, self.sizes.samples).await?;
        attack.stop.store(true, Ordering::Relaxed);
        let seconds = attack.started.elapsed().as_secs_f64();
        let ended = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(done) = attack.tasks.join_next().await {
                done??;
            }
            anyhow::Ok(())
        })
        .await;
        attack.tasks.abort_all();
        ended.map_err(|_| anyhow::anyhow!("{name}: the attack did not stop"))??;
        let peak_mb = peak.await? as f64 / 1024.0;
        // Quiet again, side by side: the lower of the two quiet figures is the baseline, so a
        // noisy quiet spell cannot flatter the ratio.
        tokio::time::sleep(WARM_UP).await;
        let after = honest_latency(&self.honest, &self.honest_path, self.sizes.samples).await?;
        let quiet_p50 = self.quiet.p50.min(after.p50);
        let quiet_p99 = self.quiet.p99.min(after.p99);
        let tally = attack.tally.clone();
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "{name}: honest p50 {:.2} ms ({:.2}x quiet), p99 {:.2} ms ({:.2}x quiet {:.2} ms), {} failed; abusive {} sent, {} refused (429/503), {} closed, {} other errors{} in {seconds:.1} s; server peak RSS {peak_mb:.1} MB",
            ms(under.p50),
            ratio(under.p50, quiet_p50),
            ms(under.p99),
            ratio(under.p99, quiet_p99),
            ms(quiet_p99),
            under.failed,
            Tally::get(&tally.sent),
            Tally::get(&tally.refused),
            Tally::get(&tally.closed),
            Tally::get(&tally.other),
            tally
                .first_other
                .get()
                .map(|first| format!(" (the first: {first})"))
                .unwrap_or_default(),
        );
        Ok(tally)
    }

    /// The server's largest resident size (KiB) until `stop`, sampled every 10 ms.
    fn sample_peak_rss(&self, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
        let server = self.server.clone();
        tokio::spawn(async move {
            let (start, mut peak) = (Instant::now(), 0);
            while !stop.load(Ordering::Relaxed) && start.elapsed() < ATTACK_LIMIT {
                peak = peak.max(server.memory_kib("VmRSS:").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    }

    /// (0) The control: the abuser's thread busy without touching the server, so what the
    /// attacks below cost the honest client beyond this is the server's doing, not the
    /// benchmark sharing two cores with the attacker.
    async fn spin_control(&self) -> anyhow::Result<()> {
        let mut attack = Attack::new(&self.abuser);
        let (stop, started) = (attack.stop.clone(), attack.started);
        attack.spawn(async move {
            let mut iteration = 0;
            while Attack::goes_on(&stop, started, iteration) {
                iteration += 1;
                // A millisecond of work, then a yield, as an attack loop does.
                let until = Instant::now() + Duration::from_millis(1);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                tokio::task::yield_now().await;
            }
            Ok(())
        });
        let name = "(0) control: the abuser's thread spins without touching the server";
        self.measure(name, attack).await.map(drop)
    }

    /// (a) Four clients polling the big lobby's view as fast as they can.
    async fn view_pollers(&self) -> anyhow::Result<()> {
        let mut attack = Attack::new(&self.abuser);
        for _ in 0..4 {
            let api = Api::new(&self.server, abuser('a'))?;
            let call = crate::api::get(&self.big.view_path());
            let (stop, tally, started) =
                (attack.stop.clone(), attack.tally.clone(), attack.started);
            attack.spawn(async move {
                let mut iteration = 0;
                while Attack::goes_on(&stop, started, iteration) {
                    iteration += 1;
                    tally.outcome(api.send(&call).await);
                }
                Ok(())
            });
        }
        let name = format!(
            "(a) 4 clients polling /view of a {}-party lobby",
            self.sizes.big_lobby
        );
        self.measure(&name, attack).await.map(drop)
    }

    /// (b) A member sending run reports as fast as it can to the big lobby, watched by live pages.
    async fn report_flood(&self) -> anyhow::Result<()> {
        let mut attack = Attack::new(&self.abuser);
        let pages = if self.sizes.big_lobby >= 64 { 16 } else { 2 };
        for source in PAGES {
            let api = Api::new(&self.server, source)?;
            for _ in 0..pages {
                self.live_page(&mut attack, &api).await?;
            }
        }
        let member = self
            .big
            .joiners
            .first()
            .ok_or_else(|| anyhow::anyhow!("no member"))?;
        let api = Api::new(&self.server, abuser('b'))?;
        let (id, member) = (self.big.id, member.clone());
        let (stop, tally, started) = (attack.stop.clone(), attack.tally.clone(), attack.started);
        attack.spawn(async move {
            let base = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
            let mut iteration = 0;
            while Attack::goes_on(&stop, started, iteration) {
                iteration += 1;
                let report = RunReport {
                    lobby_id: id,
                    party: member.public(),
                    at_unix_ms: base + iteration,
                    state: RunState::Running,
                    links: Vec::new(),
                };
                let call = Call {
                    method: Method::PUT,
                    path: format!("/v1/lobbies/{id}/runs"),
                    body: serde_json::to_vec(&report.sign(&member))?,
                };
                tally.outcome(api.send(&call).await);
            }
            Ok(())
        });
        let name = format!(
            "(b) a member's run reports as fast as it can, {} live pages open",
            2 * pages
        );
        let tally = self.measure(&name, attack).await?;
        println!(
            "    (b) live pages received {} event chunks",
            Tally::get(&tally.events)
        );
        Ok(())
    }

    /// Opens one live page (`/events`) of the big lobby, read until the attack stops.
    async fn live_page(&self, attack: &mut Attack, api: &Api) -> anyhow::Result<()> {
        let mut page = api
            .open(&format!("/v1/lobbies/{}/events", self.big.id))
            .await?;
        anyhow::ensure!(
            page.status().is_success(),
            "live page refused: {}",
            page.status()
        );
        let (stop, tally, started) = (attack.stop.clone(), attack.tally.clone(), attack.started);
        attack.spawn(async move {
            let mut iteration = 0;
            while Attack::goes_on(&stop, started, iteration) {
                iteration += 1;
                match tokio::time::timeout(Duration::from_millis(100), page.chunk()).await {
                    Ok(Ok(Some(_))) => tally.events.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => break,
                    Err(_) => continue,
                };
            }
            Ok(())
        });
        Ok(())
    }

    /// (c) Relay WebSocket upgrades that never finish the relay handshake, up to 256 at once.
    async fn unfinished_upgrades(&self) -> anyhow::Result<()> {
        let mut attack = Attack::new(&self.abuser);
        let path = format!("/relay?session={}", self.small.id);
        let (stop, tally, started) = (attack.stop.clone(), attack.tally.clone(), attack.started);
        let server = self.server.clone();
        attack.spawn(async move {
            let in_flight = Arc::new(tokio::sync::Semaphore::new(256));
            let mut held = JoinSet::new();
            let mut iteration = 0;
            while Attack::goes_on(&stop, started, iteration) {
                iteration += 1;
                let Ok(Ok(slot)) = tokio::time::timeout(
                    Duration::from_millis(100),
                    in_flight.clone().acquire_owned(),
                )
                .await
                else {
                    continue;
                };
                let (server, path, stop, tally) =
                    (server.clone(), path.clone(), stop.clone(), tally.clone());
                held.spawn(async move {
                    let outcome =
                        relay::unfinished_upgrade(&server, abuser('c'), &path, &stop).await;
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    if !matches!(outcome, Ok(Upgrade::Held)) {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(slot);
                });
            }
            while held.join_next().await.is_some() {}
            Ok(())
        });
        let name = "(c) relay upgrades that never finish the handshake (256 at once)";
        let tally = self.measure(name, attack).await?;
        println!(
            "    (c) of {} upgrades {} were refused or closed before 101; the rest held until closed",
            Tally::get(&tally.sent),
            Tally::get(&tally.refused)
        );
        Ok(())
    }

    /// (d) Concurrent creates with the largest program, in waves while the honest client
    /// measures; each wave's lobbies are new, so the server refuses them for its caps, not as
    /// repeats.
    async fn big_creates(&self) -> anyhow::Result<()> {
        let program: Arc<Vec<u8>> = Arc::new(
            (0..self.sizes.big_program)
                .map(|i| (i % 251) as u8)
                .collect(),
        );
        let mut attack = Attack::new(&self.abuser);
        let api = Api::new(&self.server, abuser('d'))?;
        let (stop, tally, started) = (attack.stop.clone(), attack.tally.clone(), attack.started);
        let (server, count) = (self.server.clone(), self.sizes.big_creates);
        attack.spawn(async move {
            let mut wave = 0;
            while Attack::goes_on(&stop, started, wave) {
                wave += 1;
                let mut sends = JoinSet::new();
                for _ in 0..count {
                    let create = PlannedLobby::new(&server, 2, &program)?.create;
                    let (api, tally) = (api.clone(), tally.clone());
                    sends.spawn(async move {
                        tally.outcome(api.send(&create).await);
                    });
                }
                while sends.join_next().await.is_some() {}
            }
            Ok(())
        });
        let name = format!(
            "(d) {} concurrent creates of {:.0} MiB, in waves",
            self.sizes.big_creates,
            self.sizes.big_program as f64 / f64::from(1 << 20)
        );
        self.measure(&name, attack).await.map(drop)
    }

    /// (e) A session member sending through the relay as fast as it can to another member.
    async fn relay_flood(&self) -> anyhow::Result<()> {
        let lobby = PlannedLobby::new(&self.server, 2, PROGRAM)?;
        // Made from the setup address, as the other attacked lobbies are.
        lobby.make_sealed(&Api::new(&self.server, SETUP)?).await?;
        // The pair's endpoints run on the abuser's runtime, as its flood does.
        let server = self.server.clone();
        let pair = self
            .abuser
            .spawn(async move { relay::pair(&server, &lobby).await })
            .await??;
        let pair = Arc::new(pair);
        let mut attack = Attack::new(&self.abuser);
        let (stop, tally) = (attack.stop.clone(), attack.tally.clone());
        let flooder = pair.clone();
        attack.spawn(async move {
            let bytes = flooder.flood(&stop, ATTACK_LIMIT).await?;
            tally.bytes.fetch_add(bytes, Ordering::Relaxed);
            Ok(())
        });
        let started = attack.started;
        let tally = self
            .measure("(e) a member flooding the relay to another member", attack)
            .await?;
        println!(
            "    (e) the flood moved {:.1} MB through the relay ({:.0} Mbit/s)",
            Tally::get(&tally.bytes) as f64 / 1e6,
            Tally::get(&tally.bytes) as f64 * 8.0 / 1e6 / started.elapsed().as_secs_f64()
        );
        pair.close().await;
        Ok(())
    }
}
