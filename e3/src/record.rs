//! The result of one (scenario, network, candidate, workload, run): what `e3 run` writes, one
//! JSON object per line in `records.jsonl`, and what `e3 report` reads.

use serde::{Deserialize, Serialize};

use crate::fault::FaultOutcome;

/// How the traffic between two parties travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Straight between the two hosts' addresses (hole punched, same LAN, or a port forward).
    Direct,
    /// Through a relay or hub on the internet host.
    Relay,
    /// The pair could not talk.
    Failed,
    /// The candidate cannot tell.
    Unknown,
}

impl PathKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Relay => "relay",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// The path between parties `a < b`, as observed, and as E3's NAT model predicts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairPath {
    pub a: u16,
    pub b: u16,
    /// At the end of the run (for mpcnet: each link's final route).
    pub path: PathKind,
    /// What the candidate's NAT traversal should achieve on this pair (None: no prediction).
    pub expected: Option<PathKind>,
    /// Round-trip time of this pair at the IP level, as configured (both uplinks' delays).
    pub configured_rtt_ms: f64,
    /// Round-trip time of this pair at the IP level, measured by E3 before the runs (ping
    /// between the two routers, or between the hosts on one LAN).
    pub measured_rtt_ms: Option<f64>,
    /// Round-trip time MPyC saw on this pair (ping_pong workload), milliseconds.
    pub mpc_rtt_ms: Option<f64>,
}

/// Bytes that crossed one party's network interface during the record (setup included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBytes {
    pub party: u16,
    pub sent: u64,
    pub received: u64,
}

/// One (scenario, network, candidate, workload, run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The scenario's name (from its file).
    pub scenario: String,
    /// The network within the scenario, e.g. `home x symmetric` or `rtt-20ms`.
    pub network: String,
    /// For matrix scenarios, the profiles of the row and the column party; else None.
    pub matrix_cell: Option<(String, String)>,
    /// The NAT/firewall profile in front of each party, in party order.
    pub party_profiles: Vec<String>,
    pub candidate: String,
    pub workload: String,
    /// 1-based run number.
    pub run: u32,
    pub parties: u16,
    /// Every party exited 0 and printed the right answer.
    pub success: bool,
    /// One per pair of parties (a < b).
    pub paths: Vec<PairPath>,
    /// From the candidate's start until the last party's MPyC program was connected (the
    /// programs print when: `connected_unix`), seconds.
    pub setup_seconds: Option<f64>,
    /// From the candidate's start until the last party exited, seconds.
    pub wall_seconds: f64,
    /// The programs' own time after connecting (the slowest party), seconds.
    pub mpc_seconds: Option<f64>,
    /// Application bytes MPyC sent per second (all parties together), Mbit/s: bulk workloads.
    pub throughput_mbit_s: Option<f64>,
    pub wire_bytes: Vec<WireBytes>,
    /// Steps a person would take by hand to set this candidate up for these parties
    /// (port forwards, accounts, key exchanges, commands), counted by the adapter.
    pub manual_steps: u32,
    /// Lines of configuration a person would write by hand for these parties.
    pub config_lines: u32,
    /// What went wrong, one line each, most telling first; empty on success.
    pub errors: Vec<String>,
    /// The network's faults injected during the run, each with the evidence it took effect.
    #[serde(default)]
    pub faults: Vec<FaultOutcome>,
}

impl Record {
    /// Whether the run ended well through faults that all took effect (a run whose fault
    /// did not take effect survived nothing).
    pub fn survived_faults(&self) -> Option<bool> {
        if self.faults.is_empty() || !self.faults.iter().all(|fault| fault.took_effect) {
            return None;
        }
        Some(self.success)
    }

    /// Why a fault of the run does not apply to its candidate, if one does not.
    pub fn fault_not_applicable(&self) -> Option<&str> {
        self.faults
            .iter()
            .find_map(|fault| fault.not_applicable.as_deref())
    }

    /// The path of the matrix pair (the row party is party 0, the column party party 1).
    pub fn matrix_path(&self) -> Option<&PairPath> {
        self.matrix_cell.as_ref()?;
        self.paths.iter().find(|pair| pair.a == 0 && pair.b == 1)
    }
}

/// Reads a `records.jsonl` file; a bad line is an error naming its number.
pub fn read_records(text: &str) -> anyhow::Result<Vec<Record>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line)
                .map_err(|error| anyhow::anyhow!("records.jsonl line {}: {error}", number + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_lines_are_named() {
        let record = Record {
            scenario: "s".into(),
            network: "home x none".into(),
            matrix_cell: Some(("home".into(), "none".into())),
            party_profiles: vec!["home".into(), "none".into()],
            candidate: "plain".into(),
            workload: "secret_mean".into(),
            run: 1,
            parties: 2,
            success: true,
            paths: vec![PairPath {
                a: 0,
                b: 1,
                path: PathKind::Direct,
                expected: Some(PathKind::Direct),
                configured_rtt_ms: 0.0,
                measured_rtt_ms: Some(0.1),
                mpc_rtt_ms: None,
            }],
            setup_seconds: Some(0.5),
            wall_seconds: 1.0,
            mpc_seconds: Some(0.1),
            throughput_mbit_s: None,
            wire_bytes: vec![WireBytes {
                party: 0,
                sent: 10,
                received: 20,
            }],
            manual_steps: 1,
            config_lines: 0,
            errors: vec![],
            faults: vec![],
        };
        let line = serde_json::to_string(&record).expect("serializes");
        let text = format!("{line}\n\n{line}\n");
        let read = read_records(&text).expect("reads");
        assert_eq!(read, vec![record.clone(), record]);
        assert_eq!(
            read[0].matrix_path().map(|pair| pair.path),
            Some(PathKind::Direct)
        );
        let error = read_records(&format!("{line}\n{{oops")).expect_err("bad line");
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
