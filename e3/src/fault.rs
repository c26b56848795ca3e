//! Faults injected into a built network while a candidate runs (a network's `fault` list in a
//! scenario): a site cut off from the internet for a while, loss on a site's uplink for a
//! while, a NAT that forgets its mappings and maps anew from other ports, a site cut off from
//! the other parties' sites only, a party host given a new LAN address, and the candidate's
//! mediator killed (for good, or started again a while later). Every fault proves it took
//! effect (the packets it dropped, the ports or addresses that changed, the process gone); a
//! record whose faults did not all take effect says so and does not count as surviving them.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::candidate::Mediator;
use crate::lock;
use crate::netns::Namespace;
use crate::topology::{Lab, Router};

/// The nftables table a fault adds to a router, removed when the fault ends.
const FAULT_TABLE: &str = "e3fault";
/// The public port ranges rebinds alternate between: below the hosts' ephemeral ports
/// (32768 and up), so the NAT cannot keep a flow's public port by keeping its source port, and
/// apart from each other, so a second rebind cannot keep the first one's ports either.
const REBIND_RANGES: [&str; 2] = ["20000-24999", "25000-29999"];
static REBINDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// How long after a rebind the NAT's new mappings are waited for (the flows that still send),
/// and after a readdress the router's first packet from the new address.
const REBIND_SETTLE: Duration = Duration::from_secs(10);
/// The table that counts a readdressed host's packets on its router.
const READDRESS_TABLE: &str = "e3readdress";
/// A readdressed host's last octet grows by this (hosts are numbered from 2).
const READDRESS_STEP: u8 = 100;

/// A fault as a scenario file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultFile {
    /// Seconds after the candidate's run started.
    pub at_s: f64,
    /// The site (0-based, in the network's order) whose router or hosts the fault hits; none
    /// for a `mediator` fault (the mediator runs on the internet host).
    pub site: Option<usize>,
    /// `blackout`, `loss`, `rebind`, `readdress`, `direct-cut` or `mediator`.
    pub kind: String,
    /// How long a blackout, loss or direct cut lasts; how long a restarted mediator is down.
    pub duration_s: Option<f64>,
    /// A loss's share of packets dropped each way.
    pub percent: Option<f64>,
    /// A mediator fault's `restart` or `kill` (for good).
    pub action: Option<String>,
}

/// What a fault is checked against, per site of its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteFacts {
    pub nat: bool,
    pub parties: usize,
}

/// A checked fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub at: Duration,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Every packet between the site and the internet dropped for a while.
    Blackout { site: usize, lasting: Duration },
    /// `percent` of the packets each way dropped for a while.
    Loss {
        site: usize,
        percent: f64,
        lasting: Duration,
    },
    /// The NAT forgets every mapping, and new ones come from another port range.
    Rebind { site: usize },
    /// Every party host of the site moves to a new address on its LAN.
    Readdress { site: usize },
    /// Every packet between the site and the other parties' sites dropped for a while; the
    /// internet host (mediators, relays) stays reachable.
    DirectCut { site: usize, lasting: Duration },
    /// The candidate's mediator killed, and started again after `restart_after` (never when
    /// None).
    Mediator { restart_after: Option<Duration> },
}

impl Fault {
    /// Checks a fault of a network whose sites are `sites`.
    pub fn check(file: &FaultFile, sites: &[SiteFacts]) -> anyhow::Result<Self> {
        if !(file.at_s.is_finite() && file.at_s >= 0.0) {
            bail!(
                "a fault's at_s must be a time from the start, not {}",
                file.at_s
            );
        }
        let kind = if file.kind == "mediator" {
            mediator_kind(file)?
        } else {
            site_kind(file, sites)?
        };
        Ok(Self {
            at: Duration::from_secs_f64(file.at_s),
            kind,
        })
    }

    /// E.g. "site 1: blackout for 30 s at 10 s".
    pub fn describe(&self) -> String {
        let (target, what) = match &self.kind {
            FaultKind::Blackout { site, lasting } => {
                (Some(site), format!("blackout for {}", seconds(*lasting)))
            }
            FaultKind::Loss {
                site,
                percent,
                lasting,
            } => (
                Some(site),
                format!("{percent} % loss for {}", seconds(*lasting)),
            ),
            FaultKind::Rebind { site } => (
                Some(site),
                "NAT rebinding (new ports, mappings forgotten)".into(),
            ),
            FaultKind::Readdress { site } => (Some(site), "new LAN address for its hosts".into()),
            FaultKind::DirectCut { site, lasting } => (
                Some(site),
                format!(
                    "cut off from the other parties' sites (not from the internet host) for {}",
                    seconds(*lasting)
                ),
            ),
            FaultKind::Mediator { restart_after } => (
                None,
                restart_after.map_or("mediator killed for good".into(), |after| {
                    format!("mediator killed, restarted {} later", seconds(after))
                }),
            ),
        };
        let target = target.map_or("internet host".into(), |site| format!("site {site}"));
        format!("{target}: {what} at {}", seconds(self.at))
    }
}

/// A `mediator` fault's kind: `restart` after `duration_s`, or `kill` for good.
fn mediator_kind(file: &FaultFile) -> anyhow::Result<FaultKind> {
    if file.site.is_some() {
        bail!("a mediator fault hits the mediator on the internet host: it takes no site");
    }
    let restart_after = match file.action.as_deref() {
        Some("restart") => Some(lasting(file)?),
        Some("kill") if file.duration_s.is_some() => {
            bail!("a mediator kill is for good: it takes no duration_s (use action = \"restart\")")
        }
        Some("kill") => None,
        Some(other) => bail!("unknown mediator action {other:?} (restart or kill)"),
        None => bail!("a mediator fault needs an action (restart or kill)"),
    };
    Ok(FaultKind::Mediator { restart_after })
}

/// A fault of a site's router or hosts, checked against the network's sites.
fn site_kind(file: &FaultFile, sites: &[SiteFacts]) -> anyhow::Result<FaultKind> {
    if file.action.is_some() {
        bail!(
            "a {} takes no action (only a mediator fault does)",
            file.kind
        );
    }
    let site = file
        .site
        .with_context(|| format!("a {} needs a site", file.kind))?;
    let Some(facts) = sites.get(site) else {
        bail!(
            "fault at site {site}: the network has {} sites",
            sites.len()
        );
    };
    let others_have_parties = sites
        .iter()
        .enumerate()
        .any(|(other, facts)| other != site && facts.parties > 0);
    Ok(match file.kind.as_str() {
        "blackout" => FaultKind::Blackout {
            site,
            lasting: lasting(file)?,
        },
        "loss" => FaultKind::Loss {
            site,
            percent: loss_percent(file)?,
            lasting: lasting(file)?,
        },
        "rebind" if facts.nat => FaultKind::Rebind { site },
        "rebind" => bail!("site {site} has no NAT to rebind"),
        "readdress" if facts.parties > 0 => FaultKind::Readdress { site },
        "readdress" => bail!("site {site} has no party host to readdress"),
        "direct-cut" if facts.parties == 0 => {
            bail!("site {site} has no party to cut off from the others")
        }
        "direct-cut" if !others_have_parties => {
            bail!("no other site has a party: a direct cut at site {site} would cut nothing")
        }
        "direct-cut" => FaultKind::DirectCut {
            site,
            lasting: lasting(file)?,
        },
        other => bail!(
            "unknown fault kind {other:?} (blackout, loss, rebind, readdress, direct-cut or \
             mediator)"
        ),
    })
}

/// A fault's `duration_s`, which it needs.
fn lasting(file: &FaultFile) -> anyhow::Result<Duration> {
    let seconds = file
        .duration_s
        .with_context(|| format!("a {} needs duration_s", file.kind))?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("duration_s must be positive, not {seconds}"))
}

fn loss_percent(file: &FaultFile) -> anyhow::Result<f64> {
    let percent = file.percent.context("a loss needs percent")?;
    if !(percent > 0.0 && percent <= 100.0) {
        bail!("a loss's percent must be in (0, 100], not {percent}");
    }
    Ok(percent)
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// What a fault did in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    pub fault: String,
    /// When it was applied, seconds after the run started; `None` if the run ended first.
    pub applied_at_s: Option<f64>,
    /// Whether its effect was seen (dropped packets, changed ports).
    pub took_effect: bool,
    /// What was seen.
    pub evidence: String,
    /// Why the fault does not apply to the candidate (it has no mediator), if it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
}

/// Applies `faults` to `lab` at their times after `started`, each undone when it ends, and
/// fills `outcomes` as it goes (one per fault, in order). Meant to run beside the candidate's
/// run and be dropped when it ends: a fault under way is then undone by its guard, which also
/// records what it did until then.
pub async fn inject(
    lab: &Lab,
    faults: &[Fault],
    mediator: &Mediator,
    started: Instant,
    outcomes: &std::sync::Mutex<Vec<FaultOutcome>>,
) {
    for fault in faults {
        tokio::time::sleep_until(started + fault.at).await;
        let slot = OutcomeSlot::open(outcomes, fault, started.elapsed());
        if let Err(error) = apply(lab, &fault.kind, mediator, &slot).await {
            slot.set(false, format!("could not apply it: {error:#}"));
        }
    }
}

/// Puts back what faults changed that outlasts them (a readdressed host's address), so the
/// next run starts on the network as built.
pub fn restore(lab: &Lab, faults: &[Fault]) -> anyhow::Result<()> {
    for fault in faults {
        if let FaultKind::Readdress { site } = fault.kind {
            for party in parties_at(lab, site) {
                let built = lab.hosts[usize::from(party)].address;
                for now in lab.host_addresses(party)? {
                    if now != built {
                        lab.move_host(party, now, built)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The outcomes of `faults` that `inject` did not reach (the run ended first).
pub fn not_reached(faults: &[Fault], outcomes: &mut Vec<FaultOutcome>, ended_after: Duration) {
    for fault in faults.iter().skip(outcomes.len()) {
        outcomes.push(FaultOutcome {
            fault: fault.describe(),
            applied_at_s: None,
            took_effect: false,
            evidence: format!("the run ended after {} first", seconds(ended_after)),
            not_applicable: None,
        });
    }
}

/// A fault's entry among the outcomes: made when it is applied, filled in as its effect is seen.
struct OutcomeSlot<'a> {
    outcomes: &'a std::sync::Mutex<Vec<FaultOutcome>>,
    index: usize,
}

impl<'a> OutcomeSlot<'a> {
    fn open(
        outcomes: &'a std::sync::Mutex<Vec<FaultOutcome>>,
        fault: &Fault,
        applied_after: Duration,
    ) -> Self {
        let mut list = lock(outcomes);
        list.push(FaultOutcome {
            fault: fault.describe(),
            applied_at_s: Some(applied_after.as_secs_f64()),
            took_effect: false,
            evidence: "under way when the run ended".into(),
            not_applicable: None,
        });
        Self {
            outcomes,
            index: list.len() - 1,
        }
    }

    fn set(&self, took_effect: bool, evidence: String) {
        let mut list = lock(self.outcomes);
        list[self.index].took_effect = took_effect;
        list[self.index].evidence = evidence;
    }

    fn not_applicable(&self, why: &str) {
        let mut list = lock(self.outcomes);
        list[self.index].evidence = format!("not applicable: {why}");
        list[self.index].not_applicable = Some(why.to_string());
    }
}

/// Applies one fault, records what it did in `slot`, and returns once it is over.
async fn apply(
    lab: &Lab,
    kind: &FaultKind,
    mediator: &Mediator,
    slot: &OutcomeSlot<'_>,
) -> anyhow::Result<()> {
    let router = |site: usize| &lab.routers[site].namespace;
    match kind {
        FaultKind::Blackout { site, lasting } => {
            drop_for(router(*site), "counter drop", *lasting, slot).await
        }
        FaultKind::Loss {
            site,
            percent,
            lasting,
        } => {
            let per_ten_thousand = (percent * 100.0).round();
            let rule = format!("numgen random mod 10000 < {per_ten_thousand} counter drop");
            drop_for(router(*site), &rule, *lasting, slot).await
        }
        FaultKind::Rebind { site } => {
            let (changed, evidence) = rebind(&lab.routers[*site]).await?;
            slot.set(changed, evidence);
            Ok(())
        }
        FaultKind::Readdress { site } => {
            let (moved, evidence) = readdress(lab, *site).await?;
            slot.set(moved, evidence);
            Ok(())
        }
        FaultKind::DirectCut { site, lasting } => {
            let rule = direct_cut_rule(lab, *site);
            drop_for(router(*site), &rule, *lasting, slot).await
        }
        FaultKind::Mediator { restart_after } => match mediator {
            Mediator::None(why) => {
                slot.not_applicable(why);
                Ok(())
            }
            Mediator::Process(handle) => {
                let namespace = &lab.internet_host.namespace;
                mediator_down(handle, namespace, *restart_after, slot).await
            }
        },
    }
}

/// The parties whose hosts are on `site`.
fn parties_at(lab: &Lab, site: usize) -> impl Iterator<Item = u16> + '_ {
    (0u16..)
        .zip(&lab.party_sites)
        .filter(move |(_, on)| **on == site)
        .map(|(party, _)| party)
}

/// Drops packets between `site` and the addresses the other parties' sites are seen at, both
/// ways; the internet host (mediators, relays, hubs) is not one of them.
fn direct_cut_rule(lab: &Lab, site: usize) -> String {
    let mut others: Vec<usize> = lab
        .party_sites
        .iter()
        .copied()
        .filter(|other| *other != site)
        .collect();
    others.sort_unstable();
    others.dedup();
    let addresses: Vec<String> = others
        .into_iter()
        .flat_map(|other| lab.site_addresses(other))
        .collect();
    let set = addresses.join(", ");
    format!("ip saddr {{ {set} }} counter drop; ip daddr {{ {set} }} counter drop")
}

/// Kills the mediator, and starts it again after `restart_after` if given; records whether
/// it was gone and whether it listened again.
async fn mediator_down(
    handle: &crate::candidate::MediatorHandle,
    namespace: &Namespace,
    restart_after: Option<Duration>,
    slot: &OutcomeSlot<'_>,
) -> anyhow::Result<()> {
    let (killed, listening) = handle.kill(namespace).await?;
    let seen = if killed.gone {
        format!("gone, nothing listens on {listening}")
    } else {
        format!("still seen (its pid, or a listener on {listening})")
    };
    let evidence = format!("pid {} killed: {seen}", killed.pid);
    let Some(after) = restart_after else {
        slot.set(killed.gone, evidence);
        return Ok(());
    };
    slot.set(
        killed.gone,
        format!("{evidence}; the run ended before its restart"),
    );
    tokio::time::sleep(after).await;
    let (listens, again) = match handle.restart(namespace).await {
        Ok(pid) => (
            true,
            format!("{} later pid {pid} listens on {listening}", seconds(after)),
        ),
        Err(error) => (false, format!("restarting it failed: {error:#}")),
    };
    slot.set(killed.gone && listens, format!("{evidence}; {again}"));
    Ok(())
}

/// Moves every party host of `site` to a new LAN address; returns whether each host shows the
/// new address and not the old, and its router forwarded a packet from each new address
/// (E3 pings the internet host from each, so a candidate that went quiet does not hide it).
async fn readdress(lab: &Lab, site: usize) -> anyhow::Result<(bool, String)> {
    let mut moves = Vec::new();
    for party in parties_at(lab, site) {
        let old = lab.hosts[usize::from(party)].address;
        let [a, b, c, d] = old.octets();
        let new = d
            .checked_add(READDRESS_STEP)
            .filter(|octet| *octet < 255)
            .map(|octet| Ipv4Addr::new(a, b, c, octet))
            .with_context(|| format!("no new address for {old} on its /24"))?;
        lab.move_host(party, old, new)?;
        moves.push((party, old, new));
    }
    let news: Vec<String> = moves.iter().map(|(_, _, new)| new.to_string()).collect();
    let router = &lab.routers[site].namespace;
    let counters = news
        .iter()
        .map(|new| format!("ip saddr {new} counter"))
        .collect::<Vec<_>>()
        .join("; ");
    router.nft(&format!(
        "table inet {READDRESS_TABLE} {{\nchain seen {{ type filter hook forward priority -400; \
         policy accept; {counters}; }}\n}}\n"
    ))?;
    let seen = packets_from(lab, router, &moves).await;
    router.nft(&format!("delete table inet {READDRESS_TABLE}\n"))?;
    let seen = seen?;
    let mut moved = true;
    let mut lines = Vec::new();
    for ((party, old, new), packets) in moves.iter().zip(&seen) {
        let now = lab.host_addresses(*party)?;
        let ok = now.contains(new) && !now.contains(old) && *packets > 0;
        moved &= ok;
        lines.push(format!(
            "party {party}: {old} -> {new} (now {now:?}), {packets} packets from {new} forwarded"
        ));
    }
    Ok((moved, lines.join("; ")))
}

/// Pings the internet host once from each moved host, then waits ([`REBIND_SETTLE`] at most)
/// until the router's counter of every new address counted a packet; returns the counts.
async fn packets_from(
    lab: &Lab,
    router: &Namespace,
    moves: &[(u16, Ipv4Addr, Ipv4Addr)],
) -> anyhow::Result<Vec<u64>> {
    let internet_host = lab.internet_host.address.to_string();
    for (party, _, _) in moves {
        // The answer does not matter (a firewall may drop ICMP): the router counted it.
        let _ = lab.hosts[usize::from(*party)]
            .namespace
            .exec("ping", &["-n", "-q", "-c", "1", "-W", "1", &internet_host]);
    }
    let waited = Instant::now();
    loop {
        let listing = router.exec("nft", &["list", "table", "inet", READDRESS_TABLE])?;
        let counts = listed_counters(&listing);
        let all_seen = counts.len() == moves.len() && counts.iter().all(|count| *count > 0);
        if all_seen || waited.elapsed() >= REBIND_SETTLE {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Drops what `rule` matches of everything the router forwards, for `lasting` (or until
/// dropped itself); the packets it dropped go into `slot`.
async fn drop_for(
    namespace: &Namespace,
    rule: &str,
    lasting: Duration,
    slot: &OutcomeSlot<'_>,
) -> anyhow::Result<()> {
    let mut table = FaultTable::add(
        namespace,
        &format!("chain cut {{ type filter hook forward priority -400; policy accept; {rule}; }}"),
        slot,
    )?;
    tokio::time::sleep(lasting).await;
    table.lasted = true;
    Ok(())
}

/// A fault's nftables table in a router. Dropped, it records what its counters counted and
/// deletes itself.
struct FaultTable<'a> {
    namespace: &'a Namespace,
    slot: &'a OutcomeSlot<'a>,
    /// Whether the fault lasted as long as it should (else the run ended during it).
    lasted: bool,
}

impl<'a> FaultTable<'a> {
    fn add(
        namespace: &'a Namespace,
        chains: &str,
        slot: &'a OutcomeSlot<'a>,
    ) -> anyhow::Result<Self> {
        namespace.nft(&format!("table inet {FAULT_TABLE} {{\n{chains}\n}}\n"))?;
        Ok(Self {
            namespace,
            slot,
            lasted: false,
        })
    }
}

impl Drop for FaultTable<'_> {
    fn drop(&mut self) {
        let listing = self
            .namespace
            .exec("nft", &["list", "table", "inet", FAULT_TABLE]);
        let dropped = listing.as_deref().map_or(0, counted_packets);
        let until = if self.lasted {
            ""
        } else {
            " (until the run ended, during the fault)"
        };
        self.slot
            .set(dropped > 0, format!("{dropped} packets dropped{until}"));
        if let Err(error) = self
            .namespace
            .nft(&format!("delete table inet {FAULT_TABLE}\n"))
        {
            eprintln!("e3: could not undo a fault: {error:#}");
        }
    }
}

/// The sum of `counter packets N` in an nft listing.
fn counted_packets(listing: &str) -> u64 {
    listed_counters(listing).iter().sum()
}

/// Each `counter packets N` in an nft listing, in order.
fn listed_counters(listing: &str) -> Vec<u64> {
    listing
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .collect()
}

/// Makes the router's NAT map from another port range and forget every mapping; returns
/// whether the mappings were forgotten (none of the old public ports is mapped any more; the
/// flows that send again show their new ports).
async fn rebind(router: &Router) -> anyhow::Result<(bool, String)> {
    let before = public_ports(router)?;
    // Each rebind maps from the other of two ranges, so no port can be kept.
    let range = REBIND_RANGES[REBINDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2];
    let random = match router.profile {
        crate::scenario::Profile::Symmetric => " fully-random",
        _ => "",
    };
    // Ports can be mapped only where the protocol has them; the rest (ICMP) as before.
    router.namespace.nft(&format!(
        "flush chain ip e3 postrouting\n\
         add rule ip e3 postrouting oifname \"wan\" meta l4proto {{ tcp, udp }} masquerade to :{range}{random}\n\
         add rule ip e3 postrouting oifname \"wan\" masquerade{random}\n"
    ))?;
    router.namespace.exec("conntrack", &["-F"])?;
    // The mappings are forgotten at once; new ones appear as the flows send again.
    let waited = Instant::now();
    let mut after = public_ports(router)?;
    while after.is_empty() && waited.elapsed() < REBIND_SETTLE {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = public_ports(router)?;
    }
    let forgotten = !before.is_empty() && after.iter().all(|port| !before.contains(port));
    let evidence = format!(
        "public ports of NATed flows before {before:?}, {:.1} s after {after:?}",
        waited.elapsed().as_secs_f64()
    );
    Ok((forgotten, evidence))
}

/// The public ports of the TCP and UDP flows the router's NAT maps now.
fn public_ports(router: &Router) -> anyhow::Result<Vec<u16>> {
    let listing = router.namespace.exec("conntrack", &["-L", "--src-nat"])?;
    let wan = router.wan.to_string();
    let mut ports: Vec<u16> = listing
        .lines()
        .filter_map(|line| reply_port_to(line, &wan))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// In a conntrack line, the port the reply direction is addressed to when it is `wan`: the
/// NAT's public port of that flow.
fn reply_port_to(line: &str, wan: &str) -> Option<u16> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // The reply direction's fields come second: src= dst= sport= dport=.
    let reply_dst = fields
        .iter()
        .filter(|field| field.starts_with("dst="))
        .nth(1)?;
    if reply_dst.trim_start_matches("dst=") != wan {
        return None;
    }
    fields
        .iter()
        .filter(|field| field.starts_with("dport="))
        .nth(1)?
        .trim_start_matches("dport=")
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(kind: &str, duration_s: Option<f64>, percent: Option<f64>) -> FaultFile {
        FaultFile {
            at_s: 10.0,
            site: Some(1),
            kind: kind.into(),
            duration_s,
            percent,
            action: None,
        }
    }

    fn mediator(action: Option<&str>, duration_s: Option<f64>) -> FaultFile {
        FaultFile {
            site: None,
            action: action.map(str::to_string),
            ..file("mediator", duration_s, None)
        }
    }

    /// A public site with a party, a NAT site with a party, an empty NAT site.
    const SITES: [SiteFacts; 3] = [
        SiteFacts {
            nat: false,
            parties: 1,
        },
        SiteFacts {
            nat: true,
            parties: 2,
        },
        SiteFacts {
            nat: true,
            parties: 0,
        },
    ];

    #[test]
    fn faults_are_checked_against_the_network() {
        let blackout = Fault::check(&file("blackout", Some(30.0), None), &SITES).expect("valid");
        assert_eq!(
            blackout.kind,
            FaultKind::Blackout {
                site: 1,
                lasting: Duration::from_secs(30)
            }
        );
        assert_eq!(blackout.describe(), "site 1: blackout for 30 s at 10 s");
        let wrong = [
            (file("blackout", None, None), "needs duration_s"),
            (file("loss", Some(5.0), None), "needs percent"),
            (file("loss", Some(5.0), Some(150.0)), "percent must be"),
            (file("flood", None, None), "unknown fault kind"),
            (
                FaultFile {
                    site: None,
                    ..file("blackout", Some(5.0), None)
                },
                "needs a site",
            ),
        ];
        for (fault, expected) in wrong {
            let error = Fault::check(&fault, &SITES)
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
        let mut public = file("rebind", None, None);
        public.site = Some(0);
        assert!(Fault::check(&public, &SITES).is_err(), "no NAT to rebind");
        public.site = Some(3);
        assert!(Fault::check(&public, &SITES).is_err(), "no such site");
    }

    #[test]
    fn mediator_faults_take_an_action_and_no_site() {
        let restart = Fault::check(&mediator(Some("restart"), Some(10.0)), &SITES).expect("valid");
        assert_eq!(
            restart.kind,
            FaultKind::Mediator {
                restart_after: Some(Duration::from_secs(10))
            }
        );
        assert_eq!(
            restart.describe(),
            "internet host: mediator killed, restarted 10 s later at 10 s"
        );
        let kill = Fault::check(&mediator(Some("kill"), None), &SITES).expect("valid");
        assert_eq!(
            kill.kind,
            FaultKind::Mediator {
                restart_after: None
            }
        );
        assert_eq!(
            kill.describe(),
            "internet host: mediator killed for good at 10 s"
        );
        let wrong = [
            (mediator(Some("pause"), None), "unknown mediator action"),
            (mediator(None, None), "needs an action"),
            (mediator(Some("restart"), None), "needs duration_s"),
            (mediator(Some("kill"), Some(5.0)), "takes no duration_s"),
            (
                FaultFile {
                    site: Some(0),
                    ..mediator(Some("kill"), None)
                },
                "takes no site",
            ),
            (
                FaultFile {
                    action: Some("kill".into()),
                    ..file("blackout", Some(5.0), None)
                },
                "takes no action",
            ),
        ];
        for (fault, expected) in wrong {
            let error = Fault::check(&fault, &SITES)
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn readdress_and_direct_cut_need_parties() {
        let readdress = Fault::check(&file("readdress", None, None), &SITES).expect("valid");
        assert_eq!(readdress.kind, FaultKind::Readdress { site: 1 });
        assert_eq!(
            readdress.describe(),
            "site 1: new LAN address for its hosts at 10 s"
        );
        let cut = Fault::check(&file("direct-cut", Some(30.0), None), &SITES).expect("valid");
        assert_eq!(
            cut.describe(),
            "site 1: cut off from the other parties' sites (not from the internet host) for \
             30 s at 10 s"
        );
        let empty = |kind: &str| FaultFile {
            site: Some(2),
            ..file(kind, Some(30.0), None)
        };
        let lonely = [SITES[1], SITES[2]];
        let wrong = [
            (empty("readdress"), &SITES[..], "no party host to readdress"),
            (empty("direct-cut"), &SITES[..], "no party to cut off"),
            (
                FaultFile {
                    site: Some(0),
                    ..file("direct-cut", Some(30.0), None)
                },
                &lonely[..],
                "would cut nothing",
            ),
            (
                file("direct-cut", None, None),
                &SITES[..],
                "needs duration_s",
            ),
        ];
        for (fault, sites, expected) in wrong {
            let error = Fault::check(&fault, sites)
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn counters_and_nat_mappings_are_read_from_the_tools_output() {
        let listing = "table inet e3fault {\n\tchain cut {\n\t\tcounter packets 17 bytes 2040 drop\n\t\tcounter packets 3 bytes 1 drop\n\t}\n}\n";
        assert_eq!(counted_packets(listing), 20);
        let line = "udp      17 29 src=10.1.1.2 dst=198.18.0.2 sport=4433 dport=7842 src=198.18.0.2 dst=198.18.1.2 sport=7842 dport=40123 [ASSURED] mark=0 use=1";
        assert_eq!(reply_port_to(line, "198.18.1.2"), Some(40123));
        assert_eq!(reply_port_to(line, "198.18.2.2"), None);
    }
}
