//! Faults injected into a built network while a candidate runs (a network's `fault` list in a
//! scenario): a site cut off from the internet for a while, loss on a site's uplink for a
//! while, a NAT that forgets its mappings and maps anew from other ports. Every fault proves it
//! took effect (the packets it dropped, the ports that changed); a record whose faults did not
//! all take effect says so and does not count as surviving them.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::netns::Namespace;
use crate::topology::{Lab, Router};

/// The nftables table a fault adds to a router, removed when the fault ends.
const FAULT_TABLE: &str = "e3fault";
/// The public port ranges rebinds alternate between: below the hosts' ephemeral ports
/// (32768 and up), so the NAT cannot keep a flow's public port by keeping its source port, and
/// apart from each other, so a second rebind cannot keep the first one's ports either.
const REBIND_RANGES: [&str; 2] = ["20000-24999", "25000-29999"];
static REBINDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// How long after a rebind the NAT's new mappings are waited for (the flows that still send).
const REBIND_SETTLE: Duration = Duration::from_secs(10);

/// A fault as a scenario file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultFile {
    /// Seconds after the candidate's run started.
    pub at_s: f64,
    /// The site (0-based, in the network's order) whose router the fault hits.
    pub site: usize,
    /// `blackout`, `loss` or `rebind`.
    pub kind: String,
    /// How long a blackout or loss lasts.
    pub duration_s: Option<f64>,
    /// A loss's share of packets dropped each way.
    pub percent: Option<f64>,
}

/// A checked fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub at: Duration,
    pub site: usize,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Every packet between the site and the internet dropped for a while.
    Blackout { lasting: Duration },
    /// `percent` of the packets each way dropped for a while.
    Loss { percent: f64, lasting: Duration },
    /// The NAT forgets every mapping, and new ones come from another port range.
    Rebind,
}

impl Fault {
    /// Checks a fault of a network with `sites` sites, `nat[site]` telling which have a NAT.
    pub fn check(file: &FaultFile, nat: &[bool]) -> anyhow::Result<Self> {
        if !(file.at_s.is_finite() && file.at_s >= 0.0) {
            bail!(
                "a fault's at_s must be a time from the start, not {}",
                file.at_s
            );
        }
        let Some(&has_nat) = nat.get(file.site) else {
            bail!(
                "fault at site {}: the network has {} sites",
                file.site,
                nat.len()
            );
        };
        let lasting = || -> anyhow::Result<Duration> {
            let seconds = file
                .duration_s
                .with_context(|| format!("a {} needs duration_s", file.kind))?;
            Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| format!("duration_s must be positive, not {seconds}"))
        };
        let kind = match file.kind.as_str() {
            "blackout" => FaultKind::Blackout {
                lasting: lasting()?,
            },
            "loss" => {
                let percent = file.percent.context("a loss needs percent")?;
                if !(percent > 0.0 && percent <= 100.0) {
                    bail!("a loss's percent must be in (0, 100], not {percent}");
                }
                FaultKind::Loss {
                    percent,
                    lasting: lasting()?,
                }
            }
            "rebind" if has_nat => FaultKind::Rebind,
            "rebind" => bail!("site {} has no NAT to rebind", file.site),
            other => bail!("unknown fault kind {other:?} (blackout, loss or rebind)"),
        };
        Ok(Self {
            at: Duration::from_secs_f64(file.at_s),
            site: file.site,
            kind,
        })
    }

    /// E.g. "site 1: blackout for 30 s at 10 s".
    pub fn describe(&self) -> String {
        let what = match &self.kind {
            FaultKind::Blackout { lasting } => format!("blackout for {}", seconds(*lasting)),
            FaultKind::Loss { percent, lasting } => {
                format!("{percent} % loss for {}", seconds(*lasting))
            }
            FaultKind::Rebind => "NAT rebinding (new ports, mappings forgotten)".into(),
        };
        format!("site {}: {what} at {}", self.site, seconds(self.at))
    }
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
}

/// Applies `faults` to `lab` at their times after `started`, each undone when it ends, and
/// fills `outcomes` as it goes (one per fault, in order). Meant to run beside the candidate's
/// run and be dropped when it ends: a fault under way is then undone by its guard, which also
/// records what it did until then.
pub async fn inject(
    lab: &Lab,
    faults: &[Fault],
    started: Instant,
    outcomes: &std::sync::Mutex<Vec<FaultOutcome>>,
) {
    for fault in faults {
        tokio::time::sleep_until(started + fault.at).await;
        let slot = OutcomeSlot::open(outcomes, fault, started.elapsed());
        let router = &lab.routers[fault.site];
        if let Err(error) = apply(router, &fault.kind, &slot).await {
            slot.set(false, format!("could not apply it: {error:#}"));
        }
    }
}

/// The outcomes of `faults` that `inject` did not reach (the run ended first).
pub fn not_reached(faults: &[Fault], outcomes: &mut Vec<FaultOutcome>, ended_after: Duration) {
    for fault in faults.iter().skip(outcomes.len()) {
        outcomes.push(FaultOutcome {
            fault: fault.describe(),
            applied_at_s: None,
            took_effect: false,
            evidence: format!("the run ended after {} first", seconds(ended_after)),
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
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Applies one fault, records what it did in `slot`, and returns once it is over.
async fn apply(router: &Router, kind: &FaultKind, slot: &OutcomeSlot<'_>) -> anyhow::Result<()> {
    match kind {
        FaultKind::Blackout { lasting } => {
            drop_for(&router.namespace, "counter drop", *lasting, slot).await
        }
        FaultKind::Loss { percent, lasting } => {
            let per_ten_thousand = (percent * 100.0).round();
            let rule = format!("numgen random mod 10000 < {per_ten_thousand} counter drop");
            drop_for(&router.namespace, &rule, *lasting, slot).await
        }
        FaultKind::Rebind => {
            let (changed, evidence) = rebind(router).await?;
            slot.set(changed, evidence);
            Ok(())
        }
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
    listing
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
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
            site: 1,
            kind: kind.into(),
            duration_s,
            percent,
        }
    }

    #[test]
    fn faults_are_checked_against_the_network() {
        let nat = [false, true];
        let blackout = Fault::check(&file("blackout", Some(30.0), None), &nat).expect("valid");
        assert_eq!(
            blackout.kind,
            FaultKind::Blackout {
                lasting: Duration::from_secs(30)
            }
        );
        assert_eq!(blackout.describe(), "site 1: blackout for 30 s at 10 s");
        let wrong = [
            (file("blackout", None, None), "needs duration_s"),
            (file("loss", Some(5.0), None), "needs percent"),
            (file("loss", Some(5.0), Some(150.0)), "percent must be"),
            (file("flood", None, None), "unknown fault kind"),
        ];
        for (fault, expected) in wrong {
            let error = Fault::check(&fault, &nat).expect_err("refused").to_string();
            assert!(error.contains(expected), "{error}");
        }
        let mut public = file("rebind", None, None);
        public.site = 0;
        assert!(Fault::check(&public, &nat).is_err(), "no NAT to rebind");
        public.site = 2;
        assert!(Fault::check(&public, &nat).is_err(), "no such site");
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
