//! Candidates: the ways parties can reach each other. Each adapter prepares the hosts, starts
//! what it needs, gives each party's MPyC the addresses to use, runs a workload, reports the
//! path each pair took as far as it can tell, and stops, leaving its logs behind.

mod mediator;
mod mpcnet;
mod n2n;
mod nebula;
mod openvpn;
mod overlay;
mod plain;
mod tinc;
mod wireguard;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::record::PathKind;
use crate::scenario::{Network, Workload};
use crate::topology::Lab;

pub use self::mediator::{Listening, Mediator, MediatorHandle, Protocol, wait_until_listening};
pub use self::mpcnet::Mpcnet;
pub use self::overlay::Overlay;
pub use self::plain::Plain;

/// The candidates E3 knows, by name: plain IP, mpcnet, and the VPNs of the survey.
pub const NAMES: &[&str] = &[
    "plain",
    "mpcnet",
    "wireguard",
    "nebula",
    "tinc",
    "n2n",
    "openvpn",
];

/// The programs candidates start.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The Python that has mpyc.
    pub python: PathBuf,
    /// The `mpcnet` binary.
    pub mpcnet: PathBuf,
}

/// What a person would do by hand to set a candidate up for a network's parties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effort {
    pub manual_steps: u32,
    pub config_lines: u32,
}

/// How one party's program ended.
#[derive(Debug, Clone)]
pub struct PartyOutcome {
    /// None when E3 stopped it at the time limit.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr_tail: String,
}

/// A workload run over a candidate.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub parties: Vec<PartyOutcome>,
    /// When the candidate's clock started (after what it does before, like a VPN's hub start),
    /// in Unix seconds: the parties' `connected_unix` uses the same clock.
    pub started_unix: f64,
    /// From then until the last party exited.
    pub wall: Duration,
}

impl RunOutcome {
    /// The outcome of a run whose clock started at `started` and ends now.
    pub fn since(started: Instant, parties: Vec<PartyOutcome>) -> Self {
        let wall = started.elapsed();
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |elapsed| elapsed.as_secs_f64());
        Self {
            parties,
            started_unix: now_unix - wall.as_secs_f64(),
            wall,
        }
    }
}

/// What a candidate can tell about its last run, asked after the traffic counters were read
/// (so asking adds nothing to them).
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// The path of each pair (a < b) as the candidate reports it, when it can.
    pub paths: Vec<(u16, u16, PathKind)>,
    /// Each party's MPyC party id (`-I`), when known; the programs' figures use these ids.
    pub mpc_pids: Vec<Option<u16>>,
    /// What the candidate found wrong, its diagnosis first (e.g. "no route: …").
    pub errors: Vec<String>,
}

/// One candidate, set up on one lab.
#[derive(Debug)]
pub enum Candidate {
    Plain(Plain),
    Mpcnet(Mpcnet),
    Overlay(Overlay),
}

impl Candidate {
    /// Prepares `name` on a freshly built lab; `logs` is where its logs go.
    pub async fn prepare(
        name: &str,
        lab: &Lab,
        network: &Network,
        tools: &Tools,
        logs: &Path,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
        match name {
            "plain" => Ok(Self::Plain(Plain::prepare(lab, network, tools)?)),
            "mpcnet" => Ok(Self::Mpcnet(
                Mpcnet::prepare(lab, network, tools, logs).await?,
            )),
            vpn => Ok(Self::Overlay(
                Overlay::prepare(vpn, lab, network, tools, logs).await?,
            )),
        }
    }

    pub fn effort(&self) -> Effort {
        match self {
            Self::Plain(plain) => plain.effort(),
            Self::Mpcnet(mpcnet) => mpcnet.effort(),
            Self::Overlay(overlay) => overlay.effort(),
        }
    }

    /// The candidate's mediator on the internet host, for `mediator` faults.
    pub fn mediator(&self) -> Mediator {
        match self {
            Self::Plain(_) => {
                Mediator::None("plain has no mediator (parties dial each other over IP)")
            }
            Self::Mpcnet(mpcnet) => mpcnet.mediator(),
            Self::Overlay(overlay) => overlay.mediator(),
        }
    }

    /// The path this candidate should get between parties `a` and `b`.
    pub fn expected_path(&self, network: &Network, a: u16, b: u16) -> PathKind {
        match self {
            Self::Plain(plain) => plain.expected_path(),
            Self::Mpcnet(_) => network.punched_path(a, b),
            Self::Overlay(overlay) => overlay.expected_path(network, a, b),
        }
    }

    /// Runs one workload; `logs` gets each party's output.
    pub async fn run(
        &mut self,
        lab: &Lab,
        workload: &Workload,
        logs: &Path,
    ) -> anyhow::Result<RunOutcome> {
        std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
        match self {
            Self::Plain(plain) => plain.run(lab, workload, logs).await,
            Self::Mpcnet(mpcnet) => mpcnet.run(lab, workload, logs).await,
            Self::Overlay(overlay) => overlay.run(lab, workload, logs).await,
        }
    }

    /// Paths, party ids and problems of the last run (an overlay stops its parties'
    /// daemons after); `worked` says whether every party finished with a right answer.
    pub async fn observe(&mut self, lab: &Lab, worked: bool) -> Observation {
        match self {
            Self::Plain(plain) => plain.observe(worked),
            Self::Mpcnet(mpcnet) => mpcnet.observe(lab).await,
            Self::Overlay(overlay) => overlay.observe(lab).await,
        }
    }
}

/// Starts one command per party, waits for all of them up to `timeout`, kills the rest, and
/// keeps each party's stdout and stderr in `logs/party<i>.{out,err}`.
pub async fn run_parties(
    commands: Vec<tokio::process::Command>,
    timeout: Duration,
    logs: &Path,
) -> anyhow::Result<Vec<PartyOutcome>> {
    let mut children = Vec::new();
    for (party, mut command) in commands.into_iter().enumerate() {
        let out = logs.join(format!("party{party}.out"));
        let err = logs.join(format!("party{party}.err"));
        command
            .stdout(Stdio::from(std::fs::File::create(&out)?))
            .stderr(Stdio::from(std::fs::File::create(&err)?))
            .kill_on_drop(true);
        children.push((command.spawn().context("starting a party")?, out, err));
    }
    let deadline = Instant::now() + timeout;
    let mut outcomes = Vec::new();
    for (party, (mut child, out, err)) in children.into_iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let exit_code = match tokio::time::timeout(left, child.wait()).await {
            Ok(status) => Some(status?.code().unwrap_or(-1)),
            Err(_) => {
                // What was still running, and where each thread waited, for the post-mortem.
                let hung = logs.join(format!("party{party}.hung"));
                let _ = std::fs::write(hung, child.id().map(process_tree).unwrap_or_default());
                let _ = child.start_kill();
                let _ = child.wait().await;
                None
            }
        };
        outcomes.push(PartyOutcome {
            exit_code,
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr_tail: tail(&std::fs::read_to_string(&err).unwrap_or_default(), 6),
        });
    }
    Ok(outcomes)
}

/// `root` and its descendants as `ps` lists them, each with its threads' wait channels.
fn process_tree(root: u32) -> String {
    let listing =
        crate::netns::run("ps", &["-e", "-o", "pid=,ppid=,stat=,etime=,args="]).unwrap_or_default();
    let mut tree = vec![root];
    let mut text = String::new();
    for line in listing.lines() {
        let mut fields = line.split_whitespace();
        let (Some(pid), Some(ppid)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(pid), Ok(ppid)) = (pid.parse::<u32>(), ppid.parse::<u32>()) else {
            continue;
        };
        if pid == root || tree.contains(&ppid) {
            tree.push(pid);
            text.push_str(line.trim());
            text.push_str(&format!("\n  threads waiting in: {}\n", wait_channels(pid)));
        }
    }
    text
}

/// The kernel functions `pid`'s threads wait in.
fn wait_channels(pid: u32) -> String {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return String::new();
    };
    let channels: Vec<String> = threads
        .flatten()
        .map(|thread| std::fs::read_to_string(thread.path().join("wchan")).unwrap_or_default())
        .collect();
    channels.join(" ")
}

/// The last `lines` non-empty lines of a text.
fn tail(text: &str, lines: usize) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

/// Party i's MPyC listens on this port plus i, over plain IP and over every overlay.
const MPYC_BASE_PORT: u16 = 11_000;

/// The port party `party`'s MPyC listens on.
pub fn mpyc_port(party: u16) -> u16 {
    MPYC_BASE_PORT + party
}

/// Runs `workload` with one MPyC party per host, each started in its host's namespace as
/// `python PROGRAM -I me -P ADDRESS:PORT … ARGS`, where `address(me, peer)` is the address
/// party `me` uses for `peer` (its own included); the wall time starts at `started`.
pub async fn run_mpyc(
    lab: &Lab,
    python: &Path,
    workload: &Workload,
    address: impl Fn(u16, u16) -> std::net::Ipv4Addr,
    started: Instant,
    logs: &Path,
) -> anyhow::Result<RunOutcome> {
    let parties = u16::try_from(lab.hosts.len()).context("too many parties")?;
    let commands = (0..parties)
        .map(|me| {
            let mut command = lab.hosts[usize::from(me)].namespace.command(python);
            command.arg(&workload.program).args(["-I", &me.to_string()]);
            for peer in 0..parties {
                command.args(["-P", &format!("{}:{}", address(me, peer), mpyc_port(peer))]);
            }
            command.args(&workload.args);
            command
        })
        .collect();
    let parties = run_parties(commands, Duration::from_secs_f64(workload.timeout_s), logs).await?;
    Ok(RunOutcome::since(started, parties))
}

/// Every pair (a < b) of `parties`.
pub fn pairs(parties: u16) -> impl Iterator<Item = (u16, u16)> {
    (0..parties).flat_map(move |a| (a + 1..parties).map(move |b| (a, b)))
}
