//! Overlay candidates: the surveyed VPNs, each giving every party an address on a private
//! network. Per network E3 generates every key and config; per run it starts the VPN's hub (if
//! it has one) on the internet host, then each party's daemon, waits until every pair answers
//! over the overlay, runs MPyC on the overlay addresses, tells on the wire which pairs went
//! direct and which through the internet host, and stops everything it started: every run
//! starts from a fresh overlay, as every run starts from fresh NAT state.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub use super::mediator::Protocol;
use super::mediator::{Listening, Mediator, MediatorHandle, wait_until_listening};
use super::{Effort, Observation, RunOutcome, Tools, pairs, run_mpyc};
use crate::record::PathKind;
use crate::scenario::{Network, Workload};
use crate::topology::{HOST_INTERFACE, Lab};

use super::wireguard::{self, Wireguard};
use super::{n2n::N2n, nebula::Nebula, openvpn::Openvpn, tinc::Tinc};

/// How long every pair gets to answer over a freshly started overlay before the run is given up.
const REACH_TIMEOUT: Duration = Duration::from_secs(15);
/// Paths are probed once the parties' daemons have run this long: time for an overlay that
/// starts on its relay to move a pair to a direct path.
const PATH_SETTLE: Duration = Duration::from_secs(5);
/// A pair still relayed then, that the VPN's design expects to go direct, is probed again
/// every second until its daemons have run this long (tinc moves to a direct path once its
/// MTU probes come back, which on a loaded machine can take longer than [`PATH_SETTLE`]).
const PATH_PATIENCE: Duration = Duration::from_secs(15);
/// The path probe: this many pings of this many bytes from one party to another.
const PROBE_PINGS: u32 = 10;
const PROBE_BYTES: u32 = 1200;

/// The overlay address of party `party`: 10.99.0.11 up (a scenario has at most 200 parties).
pub fn overlay_address(party: u16) -> Ipv4Addr {
    let [_, low] = (party + 11).to_be_bytes();
    Ipv4Addr::new(10, 99, 0, low)
}

/// The hub's overlay address, for VPNs whose hub is a node of the overlay.
pub const HUB_OVERLAY_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// The overlay's prefix length.
pub const OVERLAY_PREFIX: u8 = 24;

/// The VPNs E3 runs, each configured the way a careful admin would.
#[derive(Debug)]
pub enum Vpn {
    Wireguard(Wireguard),
    Nebula(Nebula),
    Tinc(Tinc),
    N2n(N2n),
    Openvpn(Openvpn),
}

impl Vpn {
    /// Generates keys and configs for `name` into `files`.
    fn configure(
        name: &str,
        lab: &Lab,
        network: &Network,
        files: &mut ConfigFiles,
    ) -> anyhow::Result<Self> {
        Ok(match name {
            "wireguard" => Self::Wireguard(Wireguard::configure(lab, network, files)?),
            "nebula" => Self::Nebula(Nebula::configure(lab, network, files)?),
            "tinc" => Self::Tinc(Tinc::configure(lab, network, files)?),
            "n2n" => Self::N2n(N2n::configure(lab, network, files)?),
            "openvpn" => Self::Openvpn(Openvpn::configure(lab, network, files)?),
            other => bail!("unknown VPN {other:?}"),
        })
    }

    /// What runs on the internet host, and the port it listens on once ready.
    fn hub(&self, lab: &Lab) -> Option<Hub> {
        match self {
            Self::Wireguard(_) => None,
            Self::Nebula(vpn) => Some(vpn.hub(lab)),
            Self::Tinc(vpn) => Some(vpn.hub(lab)),
            Self::N2n(vpn) => Some(vpn.hub(lab)),
            Self::Openvpn(vpn) => Some(vpn.hub(lab)),
        }
    }

    /// Starts party `party`'s daemon in its namespace (its output into `log`); it runs until
    /// its handle is dropped and E3 stops every process of that namespace.
    async fn start_party(
        &self,
        lab: &Lab,
        party: u16,
        log: &Path,
    ) -> anyhow::Result<tokio::process::Child> {
        let command = match self {
            Self::Wireguard(vpn) => return vpn.start_party(lab, party, log).await,
            Self::Nebula(vpn) => vpn.party_command(lab, party),
            Self::Tinc(vpn) => vpn.party_command(lab, party),
            Self::N2n(vpn) => vpn.party_command(lab, party),
            Self::Openvpn(vpn) => vpn.party_command(lab, party),
        };
        spawn_logged(command, log)
    }

    /// Cleans up after its parties' daemons were killed.
    fn after_stop(&self) {
        if let Self::Wireguard(vpn) = self {
            vpn.remove_sockets();
        }
    }

    /// Why this VPN cannot connect parties `a` and `b` on `network`, by its design (None: it
    /// should).
    fn no_route(&self, network: &Network, a: u16, b: u16) -> Option<String> {
        match self {
            Self::Wireguard(_) => wireguard::no_route(network, a, b),
            Self::Nebula(_) | Self::N2n(_) => udp_blocked(network, a, b, "it runs over UDP only"),
            Self::Openvpn(_) => udp_blocked(network, a, b, "its server listens on UDP"),
            Self::Tinc(_) => None,
        }
    }

    /// Whether the pairs must first meet one at a time. n2n 1.3 credits a peer's REGISTER_ACK to
    /// the first peer of its pending list whose MAC differs from the ACK's (zero) destination
    /// MAC, that is to the newest pending peer, not to the sender (`set_peer_operational` in its
    /// edge.c): an edge that learns two peers at once may then send one's frames to the other's
    /// address for good. Met one pair at a time, each edge has one peer pending at a time.
    fn meets_pairs_one_at_a_time(&self) -> bool {
        matches!(self, Self::N2n(_))
    }

    /// The path the VPN should get between `a` and `b` when it connects them at all.
    fn path_when_connected(&self, network: &Network, a: u16, b: u16) -> PathKind {
        match self {
            // No relay: whatever works is direct.
            Self::Wireguard(_) => PathKind::Direct,
            // A star: everything goes through the server.
            Self::Openvpn(_) => PathKind::Relay,
            // Punches, and learns LAN addresses from the lighthouse.
            Self::Nebula(_) => network.punched_path(a, b),
            Self::Tinc(_) | Self::N2n(_) => hub_learned_path(network, a, b),
        }
    }

    fn effort(&self, parties: u16, config_lines: u32) -> Effort {
        let per_party = match self {
            // Make a key pair, send the public key (and endpoint) to every other party, write
            // the config, bring the interface up.
            Self::Wireguard(_) => 4,
            // Make a key pair, have it signed by the CA holder (send the public key, receive
            // the certificate), write the config, start.
            Self::Nebula(_) => 5,
            // Make a key pair, exchange host files with the hub, write config and tinc-up, start.
            Self::Tinc(_) => 5,
            // Receive the community name and key, start the edge with them.
            Self::N2n(_) => 2,
            // Make a key, have its certificate signed, the server admin adds its fixed address,
            // write the client config, start.
            Self::Openvpn(_) => 5,
        };
        let hub = match self {
            Self::Wireguard(_) => 0,
            // A public server: rent it, install, create the CA or keys, write config, open the
            // firewall port, start.
            Self::Nebula(_) | Self::Tinc(_) | Self::Openvpn(_) => 6,
            // The supernode needs no keys: rent, install, open the port, start.
            Self::N2n(_) => 4,
        };
        Effort {
            manual_steps: hub + per_party * u32::from(parties),
            config_lines,
        }
    }
}

/// The path of a VPN whose nodes learn each other's address only as the hub sees it (tinc 1.0,
/// n2n 1.3): two parties behind one NAT see each other at their router's address, which does
/// not hairpin, so they relay; otherwise what hole punching gets (tinc's meta connections
/// carry the data of a party whose UDP is blocked).
fn hub_learned_path(network: &Network, a: u16, b: u16) -> PathKind {
    if network.same_site(a, b) && network.party_profile(a).is_nat() {
        PathKind::Relay
    } else {
        network.punched_path(a, b)
    }
}

/// The reason UDP-only VPN traffic cannot flow between `a` and `b`, if a firewall drops it.
pub fn udp_blocked(network: &Network, a: u16, b: u16, why: &str) -> Option<String> {
    [a, b]
        .into_iter()
        .find(|&party| !network.party_profile(party).allows_udp())
        .map(|party| {
            format!(
                "party {party}'s firewall drops UDP ({}) and {why}",
                network.party_profile(party).describe()
            )
        })
}

/// A hub process on the internet host and the port it binds when ready.
#[derive(Debug)]
pub struct Hub {
    pub command: tokio::process::Command,
    pub protocol: Protocol,
    pub port: u16,
}

/// The config files of one VPN on one network: written under one directory, their lines
/// counted as what a person would write by hand (keys and certificates that tools generate
/// are not counted).
#[derive(Debug)]
pub struct ConfigFiles {
    dir: PathBuf,
    lines: u32,
}

impl ConfigFiles {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            lines: 0,
        })
    }

    /// Writes `text` to `dir/name` (making parent folders), counting its non-blank lines;
    /// returns the path.
    pub fn write(&mut self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        set_mode(&path, 0o600)?;
        self.lines += text.lines().filter(|line| !line.trim().is_empty()).count() as u32;
        Ok(path)
    }

    /// Writes a script (mode 0700) the way [`Self::write`] writes a config.
    pub fn write_script(&mut self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self.write(name, text)?;
        set_mode(&path, 0o700)?;
        Ok(path)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Starts a daemon with its standard output and error going to `log`.
pub fn spawn_logged(
    command: tokio::process::Command,
    log: &Path,
) -> anyhow::Result<tokio::process::Child> {
    logged(command, log)?
        .spawn()
        .with_context(|| format!("starting the daemon that logs to {}", log.display()))
}

/// `command` with its standard output and error going to a new `log`.
fn logged(
    mut command: tokio::process::Command,
    log: &Path,
) -> anyhow::Result<tokio::process::Command> {
    let output =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command.stdout(output.try_clone()?).stderr(output);
    Ok(command)
}

/// A path as a command-line or config-file argument.
pub fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// A VPN set up on one lab.
#[derive(Debug)]
pub struct Overlay {
    vpn: Vpn,
    name: String,
    tools: Tools,
    network: Network,
    config_lines: u32,
    logs: PathBuf,
    /// The hub of the last run, while it runs (a `mediator` fault may kill it meanwhile).
    hub: MediatorHandle,
    /// Pairs that did not answer over the overlay in the last run, in time.
    unreached: Vec<(u16, u16)>,
    /// The parties' daemons of the last run, while they run.
    daemons: Vec<tokio::process::Child>,
    /// When the last run started them.
    started: Option<Instant>,
}

impl Overlay {
    /// Generates keys and configs.
    pub async fn prepare(
        name: &str,
        lab: &Lab,
        network: &Network,
        tools: &Tools,
        logs: &Path,
    ) -> anyhow::Result<Self> {
        if network.parties() > 200 {
            bail!("overlays number at most 200 parties");
        }
        let mut files = ConfigFiles::new(&logs.join("config"))?;
        let vpn = Vpn::configure(name, lab, network, &mut files)?;
        Ok(Self {
            vpn,
            name: name.to_string(),
            tools: tools.clone(),
            network: network.clone(),
            config_lines: files.lines,
            logs: logs.to_path_buf(),
            hub: MediatorHandle::default(),
            unreached: Vec::new(),
            daemons: Vec::new(),
            started: None,
        })
    }

    pub fn effort(&self) -> Effort {
        self.vpn.effort(self.network.parties(), self.config_lines)
    }

    /// The hub on the internet host, for faults; WireGuard's static mesh has none.
    pub fn mediator(&self) -> Mediator {
        match self.vpn {
            Vpn::Wireguard(_) => Mediator::None("wireguard has no mediator (a static mesh)"),
            _ => Mediator::Process(self.hub.clone()),
        }
    }

    pub fn expected_path(&self, network: &Network, a: u16, b: u16) -> PathKind {
        if self.vpn.no_route(network, a, b).is_some() {
            PathKind::Failed
        } else {
            self.vpn.path_when_connected(network, a, b)
        }
    }

    /// Starts the hub and waits until it listens (like mpcnet's server, before the clock
    /// starts), then starts every party's daemon, waits until every pair answers over the
    /// overlay, and runs MPyC on the overlay addresses. If some pair never answers, MPyC is
    /// not started (it needs every pair) and the outcome has no parties.
    pub async fn run(
        &mut self,
        lab: &Lab,
        workload: &Workload,
        logs: &Path,
    ) -> anyhow::Result<RunOutcome> {
        // What a run that ended in an error left running.
        self.stop(lab).await;
        if let Some(Hub {
            command,
            protocol,
            port,
        }) = self.vpn.hub(lab)
        {
            let log = logs.join(format!("{}-hub.log", self.name));
            let listening = Listening { protocol, port };
            self.hub
                .start(logged(command, &log)?, listening, &log)
                .await
                .with_context(|| format!("starting {}'s hub", self.name))?;
            wait_until_listening(&lab.internet_host.namespace, listening, None)
                .await
                .with_context(|| format!("{}'s hub", self.name))?;
        }
        let started = Instant::now();
        self.started = Some(started);
        for party in 0..self.network.parties() {
            let log = logs.join(format!("{}-party{party}.log", self.name));
            let daemon = self
                .vpn
                .start_party(lab, party, &log)
                .await
                .with_context(|| format!("starting {} for party {party}", self.name))?;
            self.daemons.push(daemon);
        }
        let parties = self.network.parties();
        self.unreached = if self.vpn.meets_pairs_one_at_a_time() {
            wait_until_reachable_in_turn(lab, parties).await
        } else {
            wait_until_reachable(lab, parties).await
        };
        if !self.unreached.is_empty() {
            return Ok(RunOutcome::since(started, Vec::new()));
        }
        let address = |_me: u16, peer: u16| overlay_address(peer);
        run_mpyc(lab, &self.tools.python, workload, address, started, logs).await
    }

    /// Probes every pair's path on the wire (once the daemons have run [`PATH_SETTLE`], with
    /// patience for a relayed pair expected direct), then stops the parties' daemons and the
    /// hub.
    pub async fn observe(&mut self, lab: &Lab) -> Observation {
        let started = self.started.take().unwrap_or_else(Instant::now);
        tokio::time::sleep_until((started + PATH_SETTLE).into()).await;
        let mut observation = Observation {
            mpc_pids: (0..self.network.parties()).map(Some).collect(),
            ..Observation::default()
        };
        for (a, b) in pairs(self.network.parties()) {
            let expected = self.expected_path(&self.network, a, b);
            let mut probed = probe_path(lab, a, b).await;
            while matches!(probed, Ok(PathKind::Relay))
                && expected == PathKind::Direct
                && started.elapsed() < PATH_PATIENCE
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
                probed = probe_path(lab, a, b).await;
            }
            let path = match probed {
                Ok(path) => path,
                Err(error) => {
                    observation
                        .errors
                        .push(format!("probing the path {a}-{b}: {error:#}"));
                    PathKind::Unknown
                }
            };
            if path == PathKind::Failed {
                let why = self.vpn.no_route(&self.network, a, b).unwrap_or_else(|| {
                    format!("no answer over the overlay (see {})", self.logs_name())
                });
                observation.errors.push(format!("no route {a}-{b}: {why}"));
            } else if self.unreached.contains(&(a, b)) {
                observation.errors.push(format!(
                    "{a}-{b} answered over the overlay only after {} s",
                    REACH_TIMEOUT.as_secs()
                ));
            }
            observation.paths.push((a, b, path));
        }
        if !self.unreached.is_empty() {
            observation.errors.push(format!(
                "MPyC not started: not every pair answered over {} within {} s",
                self.name,
                REACH_TIMEOUT.as_secs()
            ));
        }
        self.stop(lab).await;
        observation
    }

    /// Where this VPN's logs are inside a results directory: `logs/<network>/<vpn>`.
    fn logs_name(&self) -> String {
        let parts: Vec<_> = self.logs.components().rev().take(3).collect();
        let relative: PathBuf = parts.into_iter().rev().collect();
        relative.display().to_string()
    }

    /// Stops the last run's daemons and hub, waiting for each to be gone (a daemon checks a
    /// predecessor's pid file), and anything they left running on the hosts.
    async fn stop(&mut self, lab: &Lab) {
        if self.hub.stop().await {
            lab.internet_host.namespace.kill_all();
        }
        if !self.daemons.is_empty() {
            for mut daemon in self.daemons.drain(..) {
                let _ = daemon.kill().await;
            }
            for host in &lab.hosts {
                host.namespace.kill_all();
            }
            self.vpn.after_stop();
        }
    }
}

impl Drop for Overlay {
    /// The daemons die with their handles; their leftovers (WireGuard's sockets) go too.
    fn drop(&mut self) {
        self.daemons.clear();
        self.vpn.after_stop();
    }
}

/// One ping over the overlay from `a` to `b`, waiting at most `wait_s`: did it come back?
async fn pings(lab: &Lab, a: u16, b: u16, wait_s: &str) -> anyhow::Result<bool> {
    let status = lab.hosts[usize::from(a)]
        .namespace
        .command("ping")
        .args(["-n", "-q", "-c", "1", "-W", wait_s, "-w", wait_s])
        .arg(overlay_address(b).to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await?;
    Ok(status.success())
}

/// Pings every pair over the overlay until each has answered once or [`REACH_TIMEOUT`] is over;
/// returns the pairs that never answered.
async fn wait_until_reachable(lab: &Lab, parties: u16) -> Vec<(u16, u16)> {
    let deadline = Instant::now() + REACH_TIMEOUT;
    let mut waiting: Vec<(u16, u16)> = pairs(parties).collect();
    while !waiting.is_empty() && Instant::now() < deadline {
        let round_started = Instant::now();
        let answers = futures_util::future::join_all(
            waiting
                .iter()
                .map(|&(a, b)| async move { pings(lab, a, b, "1").await.unwrap_or(false) }),
        )
        .await;
        waiting = waiting
            .into_iter()
            .zip(answers)
            .filter(|(_, answered)| !answered)
            .map(|(pair, _)| pair)
            .collect();
        // At most ten rounds a second, however fast the failures come back.
        let pause = Duration::from_millis(100).saturating_sub(round_started.elapsed());
        tokio::time::sleep(pause).await;
    }
    waiting
}

/// As [`wait_until_reachable`], one pair after the other: each pair is pinged until it answers
/// before the next one's first ping.
async fn wait_until_reachable_in_turn(lab: &Lab, parties: u16) -> Vec<(u16, u16)> {
    let deadline = Instant::now() + REACH_TIMEOUT;
    let mut unreached = Vec::new();
    for (a, b) in pairs(parties) {
        loop {
            let round_started = Instant::now();
            if pings(lab, a, b, "1").await.unwrap_or(false) {
                break;
            }
            if Instant::now() >= deadline {
                unreached.push((a, b));
                break;
            }
            let pause = Duration::from_millis(100).saturating_sub(round_started.elapsed());
            tokio::time::sleep(pause).await;
        }
    }
    unreached
}

/// Tells how `a` reaches `b` over the overlay, on the wire: [`PROBE_PINGS`] pings of
/// [`PROBE_BYTES`] from `a` to `b`; if at least their payload crossed the internet host's
/// interface, they went through it (relay), else straight between the sites (direct). A pair
/// that does not answer a warm-up ping, or none of the probe's, failed.
async fn probe_path(lab: &Lab, a: u16, b: u16) -> anyhow::Result<PathKind> {
    if !pings(lab, a, b, "2").await? {
        return Ok(PathKind::Failed);
    }
    let hub = &lab.internet_host.namespace;
    let (_, received_before) = hub.interface_bytes(HOST_INTERFACE)?;
    let output = lab.hosts[usize::from(a)]
        .namespace
        .command("ping")
        .args(["-n", "-q", "-W", "2", "-w", "5", "-i", "0.01"])
        .args([
            "-c",
            &PROBE_PINGS.to_string(),
            "-s",
            &PROBE_BYTES.to_string(),
        ])
        .arg(overlay_address(b).to_string())
        .output()
        .await?;
    let (_, received_after) = hub.interface_bytes(HOST_INTERFACE)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let answered = answered_pings(&text)
        .with_context(|| format!("ping printed no summary: {}", text.trim()))?;
    if answered == 0 {
        return Ok(PathKind::Failed);
    }
    // Each answered ping crossed the hub at least once each way when relayed.
    let through_hub = received_after.saturating_sub(received_before);
    Ok(if through_hub >= u64::from(answered * PROBE_BYTES) {
        PathKind::Relay
    } else {
        PathKind::Direct
    })
}

/// The count of replies in ping's summary, `10 packets transmitted, 9 received, …`.
fn answered_pings(output: &str) -> Option<u32> {
    output
        .lines()
        .find(|line| line.contains("packets transmitted"))?
        .split(", ")
        .find_map(|part| part.strip_suffix(" received"))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Profile;

    #[test]
    fn overlay_addresses_leave_room_for_the_hub() {
        assert_eq!(overlay_address(0), Ipv4Addr::new(10, 99, 0, 11));
        assert_eq!(overlay_address(4), Ipv4Addr::new(10, 99, 0, 15));
    }

    #[test]
    fn designs_predict_paths_and_failures() {
        use Profile::{Home, None as Public, Symmetric, UdpBlocked};
        let network =
            Network::of_profiles(&[Home, Public, Symmetric, UdpBlocked], vec![0, 1, 2, 3]);
        assert_eq!(hub_learned_path(&network, 0, 1), PathKind::Direct);
        assert_eq!(hub_learned_path(&network, 0, 2), PathKind::Relay);
        assert_eq!(hub_learned_path(&network, 1, 3), PathKind::Relay);
        assert_eq!(udp_blocked(&network, 0, 2, "why"), None);
        let blocked = udp_blocked(&network, 1, 3, "it runs over UDP").expect("blocked");
        assert!(
            blocked.starts_with("party 3's firewall drops UDP"),
            "{blocked}"
        );

        let lan = Network::of_profiles(&[Home], vec![0, 0]);
        assert_eq!(hub_learned_path(&lan, 0, 1), PathKind::Relay);
        assert_eq!(lan.punched_path(0, 1), PathKind::Direct);
    }

    #[test]
    fn ping_replies_are_counted() {
        let summary = "--- 10.99.0.2 ping statistics ---\n10 packets transmitted, 9 received, 10% packet loss, time 95ms\nrtt min/avg/max/mdev = 0.1/0.2/0.3/0.0 ms\n";
        assert_eq!(answered_pings(summary), Some(9));
        let none = "2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1010ms";
        assert_eq!(answered_pings(none), Some(0));
        assert_eq!(answered_pings("ping: unknown host"), None);
    }
}
