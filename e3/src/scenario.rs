//! Scenario files (TOML): the candidates and workloads to run, and the networks to run them on,
//! either listed site by site or generated as a NAT-profile matrix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::fault::{Fault, FaultFile, SiteFacts};
use crate::record::PathKind;

/// A scenario file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    candidates: Vec<String>,
    #[serde(default = "one")]
    runs: u32,
    #[serde(rename = "workload")]
    workloads: Vec<WorkloadFile>,
    matrix: Option<MatrixFile>,
    #[serde(default, rename = "network")]
    networks: Vec<NetworkFile>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    /// The MPyC program, relative to the scenario file.
    program: PathBuf,
    /// The answer check [default: the program's file stem].
    check: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    /// Seconds before the run is stopped and counted as failed.
    #[serde(default = "default_timeout")]
    timeout_s: f64,
}

fn default_timeout() -> f64 {
    60.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    profiles: Vec<Profile>,
    #[serde(default, flatten)]
    link: Link,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    name: String,
    #[serde(rename = "site")]
    sites: Vec<SiteFile>,
    /// Faults injected while each candidate runs on this network.
    #[serde(default, rename = "fault")]
    faults: Vec<FaultFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    profile: Profile,
    #[serde(default = "one_party")]
    parties: u16,
    #[serde(default, flatten)]
    link: Link,
}

fn one_party() -> u16 {
    1
}

/// What stands between a site's LAN and the internet (RFC 4787 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Public addresses, no NAT, no firewall.
    None,
    /// Endpoint-independent mapping, address-and-port-dependent ("port-restricted") filtering.
    Home,
    /// Endpoint-dependent mapping with random ports; port-restricted filtering.
    Symmetric,
    /// Home NAT whose firewall drops all UDP.
    UdpBlocked,
    /// Home NAT whose firewall lets out only TCP to ports 80 and 443.
    TcpOnly,
    /// Home NAT shared with another party of the session (in a matrix: a LAN neighbour).
    SameLan,
}

impl Profile {
    pub const ALL: [Self; 6] = [
        Self::None,
        Self::Home,
        Self::Symmetric,
        Self::UdpBlocked,
        Self::TcpOnly,
        Self::SameLan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Home => "home",
            Self::Symmetric => "symmetric",
            Self::UdpBlocked => "udp-blocked",
            Self::TcpOnly => "tcp-only",
            Self::SameLan => "same-lan",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::None => "public address, no NAT or firewall",
            Self::Home => "NAT: endpoint-independent mapping, port-restricted filtering",
            Self::Symmetric => "NAT: endpoint-dependent mapping, random ports",
            Self::UdpBlocked => "home NAT, firewall drops UDP",
            Self::TcpOnly => "home NAT, firewall lets out only TCP 80/443",
            Self::SameLan => "home NAT shared with another party",
        }
    }

    /// Is there a NAT (so inbound connections need a port forward)?
    pub fn is_nat(self) -> bool {
        self != Self::None
    }

    /// Can UDP leave this site (to the internet)?
    pub fn allows_udp(self) -> bool {
        !matches!(self, Self::UdpBlocked | Self::TcpOnly)
    }

    /// Can a new TCP connection leave this site for `port`?
    pub fn allows_tcp_out(self, port: u16) -> bool {
        self != Self::TcpOnly || port == 80 || port == 443
    }

    /// Does the NAT map one inside address:port to one outside port for every destination?
    pub fn endpoint_independent_mapping(self) -> bool {
        self != Self::Symmetric
    }
}

/// Link conditions of a site's uplink (or every uplink of a matrix).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Rate limit each way, Mbit/s (tbf).
    pub rate_mbit: Option<f64>,
    /// One-way delay each way, ms, added where the site meets the internet.
    #[serde(default)]
    pub delay_ms: f64,
    /// Packet loss each way, percent (nftables).
    #[serde(default)]
    pub loss_percent: f64,
}

/// A router and the parties behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub profile: Profile,
    pub link: Link,
}

/// One network to build: sites, and the site of each party (in party order).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub name: String,
    pub sites: Vec<Site>,
    pub party_sites: Vec<usize>,
    /// For matrix networks: the profiles of party 0 (row) and party 1 (column).
    pub matrix_cell: Option<(Profile, Profile)>,
    /// Faults injected while each candidate runs, in time order.
    pub faults: Vec<Fault>,
}

impl Network {
    /// A network of sites with these profiles and no link conditions, party i on site
    /// `party_sites[i]` (for tests of what a candidate makes of a network).
    #[cfg(test)]
    pub fn of_profiles(profiles: &[Profile], party_sites: Vec<usize>) -> Self {
        Self {
            name: "test".into(),
            sites: profiles
                .iter()
                .map(|&profile| Site {
                    profile,
                    link: Link::default(),
                })
                .collect(),
            party_sites,
            matrix_cell: None,
            faults: Vec::new(),
        }
    }

    pub fn parties(&self) -> u16 {
        u16::try_from(self.party_sites.len()).unwrap_or(u16::MAX)
    }

    /// The profile shown for a party: `same-lan` for parties sharing a router.
    pub fn party_profile(&self, party: u16) -> Profile {
        let site = self.party_sites[usize::from(party)];
        let shared = self.party_sites.iter().filter(|s| **s == site).count() > 1;
        if shared && self.sites[site].profile == Profile::Home {
            Profile::SameLan
        } else {
            self.sites[site].profile
        }
    }

    pub fn same_site(&self, a: u16, b: u16) -> bool {
        self.party_sites[usize::from(a)] == self.party_sites[usize::from(b)]
    }

    fn site_profile(&self, party: u16) -> Profile {
        self.sites[self.party_sites[usize::from(party)]].profile
    }

    /// The round trip between two parties the link conditions add: each uplink's one-way delay,
    /// both ways.
    pub fn configured_rtt_ms(&self, a: u16, b: u16) -> f64 {
        if self.same_site(a, b) {
            return 0.0;
        }
        let delay = |party: u16| {
            self.sites[self.party_sites[usize::from(party)]]
                .link
                .delay_ms
        };
        2.0 * (delay(a) + delay(b))
    }

    /// The path a hole-punching overlay with a relay (ICE-style) should get between two parties,
    /// by RFC 4787: direct on one LAN; relay when either side's UDP is blocked; direct when
    /// either side is public or both map endpoint-independently; else (a symmetric NAT facing
    /// a port-restricted or symmetric NAT, whose filter drops the unpredictable port) relay.
    pub fn punched_path(&self, a: u16, b: u16) -> PathKind {
        let (pa, pb) = (self.site_profile(a), self.site_profile(b));
        if self.same_site(a, b) {
            PathKind::Direct
        } else if !pa.allows_udp() || !pb.allows_udp() {
            PathKind::Relay
        } else if !pa.is_nat()
            || !pb.is_nat()
            || (pa.endpoint_independent_mapping() && pb.endpoint_independent_mapping())
        {
            PathKind::Direct
        } else {
            PathKind::Relay
        }
    }
}

/// A workload: an MPyC program, its arguments and how its answer is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub name: String,
    pub program: PathBuf,
    pub check: String,
    pub args: Vec<String>,
    pub timeout_s: f64,
}

/// A parsed, checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub candidates: Vec<String>,
    pub runs: u32,
    pub workloads: Vec<Workload>,
    pub networks: Vec<Network>,
}

impl Scenario {
    /// Reads and checks a scenario file; program paths are resolved against its directory.
    pub fn load(
        path: &Path,
        known_candidates: &[&str],
        known_checks: &[&str],
    ) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, known_candidates, known_checks)
            .with_context(|| format!("scenario {}", path.display()))
    }

    fn parse(
        text: &str,
        base: &Path,
        known_candidates: &[&str],
        known_checks: &[&str],
    ) -> anyhow::Result<Self> {
        let file: ScenarioFile = toml::from_str(text)?;
        for candidate in &file.candidates {
            if !known_candidates.contains(&candidate.as_str()) {
                bail!(
                    "unknown candidate {candidate:?} (known: {})",
                    known_candidates.join(", ")
                );
            }
        }
        if file.candidates.is_empty() || file.workloads.is_empty() || file.runs == 0 {
            bail!("a scenario needs at least one candidate, one workload and one run");
        }
        let mut workloads = Vec::new();
        for workload in file.workloads {
            let program = base.join(&workload.program);
            let stem = program
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            let check = workload.check.unwrap_or_else(|| stem.clone());
            if !known_checks.contains(&check.as_str()) {
                bail!(
                    "no answer check {check:?} for {} (known: {})",
                    program.display(),
                    known_checks.join(", ")
                );
            }
            if !program.is_file() {
                bail!("workload program {} does not exist", program.display());
            }
            if !(1.0..=86_400.0).contains(&workload.timeout_s) {
                bail!(
                    "timeout_s of {} must be between 1 and 86400",
                    program.display()
                );
            }
            let name = if workload.args.is_empty() {
                stem
            } else {
                format!("{stem} {}", workload.args.join(" "))
            };
            workloads.push(Workload {
                name,
                program,
                check,
                args: workload.args,
                timeout_s: workload.timeout_s,
            });
        }
        let mut networks = Vec::new();
        if let Some(matrix) = &file.matrix {
            networks.extend(matrix_networks(&matrix.profiles, matrix.link)?);
        }
        for network in file.networks {
            networks.push(listed_network(network)?);
        }
        if networks.is_empty() {
            bail!("a scenario needs a [matrix] or at least one [[network]]");
        }
        let mut names = BTreeSet::new();
        for network in &networks {
            check_link(&network.sites)?;
            check_size(network)?;
            if !names.insert(network.name.clone()) {
                bail!("two networks are named {:?}", network.name);
            }
        }
        Ok(Self {
            name: file.name,
            description: file.description,
            candidates: file.candidates,
            runs: file.runs,
            workloads,
            networks,
        })
    }
}

/// Addresses are per-site /24s numbered from 1: at most 250 sites, 200 parties on one site.
fn check_size(network: &Network) -> anyhow::Result<()> {
    if network.sites.len() > 250 {
        bail!("network {:?} has more than 250 sites", network.name);
    }
    for site in 0..network.sites.len() {
        if network.party_sites.iter().filter(|s| **s == site).count() > 200 {
            bail!(
                "network {:?} has more than 200 parties on one site",
                network.name
            );
        }
    }
    Ok(())
}

fn check_link(sites: &[Site]) -> anyhow::Result<()> {
    for site in sites {
        let link = site.link;
        if link
            .rate_mbit
            .is_some_and(|rate| !(0.01..=100_000.0).contains(&rate))
        {
            bail!("rate_mbit must be between 0.01 and 100000");
        }
        if !(0.0..=10_000.0).contains(&link.delay_ms) {
            bail!("delay_ms must be between 0 and 10000");
        }
        if !(0.0..100.0).contains(&link.loss_percent) {
            bail!("loss_percent must be at least 0 and below 100");
        }
    }
    Ok(())
}

fn listed_network(network: NetworkFile) -> anyhow::Result<Network> {
    let mut sites = Vec::new();
    let mut party_sites = Vec::new();
    for (index, site) in network.sites.into_iter().enumerate() {
        if site.parties == 0 {
            bail!(
                "network {:?}: a site needs at least one party",
                network.name
            );
        }
        if site.profile == Profile::SameLan {
            bail!(
                "network {:?}: `same-lan` is for matrices; put several parties on a `home` site",
                network.name
            );
        }
        party_sites.extend(std::iter::repeat_n(index, usize::from(site.parties)));
        sites.push(Site {
            profile: site.profile,
            link: site.link,
        });
    }
    if party_sites.len() < 2 {
        bail!("network {:?} needs at least two parties", network.name);
    }
    let facts: Vec<SiteFacts> = (0..sites.len())
        .map(|site| SiteFacts {
            nat: sites[site].profile.is_nat(),
            parties: party_sites.iter().filter(|on| **on == site).count(),
        })
        .collect();
    let mut faults = network
        .faults
        .iter()
        .map(|fault| Fault::check(fault, &facts))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("network {:?}", network.name))?;
    faults.sort_by_key(|fault| fault.at);
    Ok(Network {
        name: network.name,
        sites,
        party_sites,
        matrix_cell: None,
        faults,
    })
}

/// Every (row, column) pair of profiles: party 0 behind the row profile, party 1 behind the
/// column one. A `same-lan` party shares a home router: with the other party when both are
/// `same-lan`, else with a third party (its LAN neighbour, party 2 or 3).
fn matrix_networks(profiles: &[Profile], link: Link) -> anyhow::Result<Vec<Network>> {
    if profiles.is_empty() {
        bail!("[matrix] needs profiles");
    }
    let home = |profile: Profile| Site {
        profile: if profile == Profile::SameLan {
            Profile::Home
        } else {
            profile
        },
        link,
    };
    let mut networks = Vec::new();
    for &row in profiles {
        for &column in profiles {
            let name = format!("{} x {}", row.as_str(), column.as_str());
            let network = if row == Profile::SameLan && column == Profile::SameLan {
                Network {
                    name,
                    sites: vec![home(row)],
                    party_sites: vec![0, 0],
                    matrix_cell: Some((row, column)),
                    faults: Vec::new(),
                }
            } else {
                let mut party_sites = vec![0, 1];
                for (site, profile) in [(0, row), (1, column)] {
                    if profile == Profile::SameLan {
                        party_sites.push(site);
                    }
                }
                Network {
                    name,
                    sites: vec![home(row), home(column)],
                    party_sites,
                    matrix_cell: Some((row, column)),
                    faults: Vec::new(),
                }
            };
            networks.push(network);
        }
    }
    Ok(networks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANDIDATES: &[&str] = &["plain", "mpcnet"];
    const CHECKS: &[&str] = &["secret_mean"];

    fn parse(text: &str) -> anyhow::Result<Scenario> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("prog.py"), "").expect("program");
        Scenario::parse(text, dir.path(), CANDIDATES, CHECKS)
    }

    const MATRIX: &str = r#"
        name = "m"
        candidates = ["mpcnet"]
        [[workload]]
        program = "prog.py"
        check = "secret_mean"
        [matrix]
        profiles = ["none", "home", "symmetric", "udp-blocked", "tcp-only", "same-lan"]
    "#;

    #[test]
    fn the_matrix_covers_every_ordered_pair_with_lan_neighbours() {
        let scenario = parse(MATRIX).expect("parses");
        assert_eq!(scenario.networks.len(), 36);
        let find = |name: &str| {
            scenario
                .networks
                .iter()
                .find(|network| network.name == name)
                .expect(name)
        };
        let both_lan = find("same-lan x same-lan");
        assert_eq!(both_lan.party_sites, vec![0, 0]);
        assert_eq!(both_lan.party_profile(1), Profile::SameLan);
        let lan_row = find("same-lan x symmetric");
        assert_eq!(lan_row.party_sites, vec![0, 1, 0]);
        assert_eq!(lan_row.party_profile(0), Profile::SameLan);
        assert_eq!(lan_row.party_profile(1), Profile::Symmetric);
        assert_eq!(find("home x home").parties(), 2);
    }

    #[test]
    fn expected_paths_follow_rfc_4787() {
        let scenario = parse(MATRIX).expect("parses");
        let path = |name: &str| {
            let network = scenario
                .networks
                .iter()
                .find(|network| network.name == name)
                .expect(name);
            network.punched_path(0, 1)
        };
        for direct in [
            "none x none",
            "none x symmetric",
            "home x home",
            "home x same-lan",
            "same-lan x same-lan",
            "symmetric x none",
        ] {
            assert_eq!(path(direct), PathKind::Direct, "{direct}");
        }
        for relay in [
            "home x symmetric",
            "symmetric x symmetric",
            "none x udp-blocked",
            "tcp-only x none",
            "same-lan x tcp-only",
            "symmetric x same-lan",
        ] {
            assert_eq!(path(relay), PathKind::Relay, "{relay}");
        }
    }

    #[test]
    fn listed_networks_and_their_rtt() {
        let scenario = parse(
            r#"
            name = "wan"
            candidates = ["plain", "mpcnet"]
            runs = 3
            [[workload]]
            program = "prog.py"
            check = "secret_mean"
            args = ["7"]
            [[network]]
            name = "rtt-20ms"
            site = [
                { profile = "home", delay_ms = 5, rate_mbit = 10 },
                { profile = "home", delay_ms = 5, rate_mbit = 10, parties = 2 },
            ]
            "#,
        )
        .expect("parses");
        let network = &scenario.networks[0];
        assert_eq!(network.party_sites, vec![0, 1, 1]);
        assert_eq!(network.configured_rtt_ms(0, 1), 20.0);
        assert_eq!(network.configured_rtt_ms(1, 2), 0.0);
        assert_eq!(scenario.workloads[0].name, "prog 7");
        assert_eq!(scenario.runs, 3);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (MATRIX.replace("mpcnet", "tailscale"), "unknown candidate"),
            (MATRIX.replace("\"none\",", "\"nope\","), "unknown variant"),
            (MATRIX.replace("prog.py", "missing.py"), "does not exist"),
            (
                MATRIX.replace("check = \"secret_mean\"", "check = \"x\""),
                "no answer check",
            ),
            (
                MATRIX.replace("[matrix]", "[matrix]\nloss_percent = 100"),
                "loss_percent",
            ),
            (
                MATRIX.replace("name = \"m\"", "name = \"m\"\ncolour = 1"),
                "unknown field",
            ),
            (
                MATRIX.replace("[matrix]", "[matrix]\nrate_mbit = 0.0"),
                "rate_mbit",
            ),
            (
                MATRIX.replace(
                    "check = \"secret_mean\"",
                    "check = \"secret_mean\"\ntimeout_s = inf",
                ),
                "timeout_s",
            ),
        ];
        for (text, expected) in cases {
            let error = format!("{:#}", parse(&text).expect_err(expected));
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
