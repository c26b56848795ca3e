//! Sections 5 to 7: the measured round-trip times, the set-up effort and the failures.

use super::document::{Block, Table};
use super::{MISSING, candidates, first_appearance, median, optional};
use crate::record::Record;

/// Section 5: per network and pair, the configured RTT next to the median measured one.
pub(super) fn rtt_section(records: &[Record]) -> Vec<Block> {
    let mut table = Table::new(&[
        "network",
        "pair",
        "configured RTT ms",
        "measured RTT ms (median)",
        "measurements",
    ]);
    for network in first_appearance(records.iter().map(|record| record.network.as_str())) {
        let pairs: Vec<_> = records
            .iter()
            .filter(|record| record.network == network)
            .flat_map(|record| &record.paths)
            .collect();
        let mut keys: Vec<(u16, u16)> = pairs.iter().map(|pair| (pair.a, pair.b)).collect();
        keys.sort_unstable();
        keys.dedup();
        for (a, b) in keys {
            let ours: Vec<_> = pairs.iter().filter(|p| p.a == a && p.b == b).collect();
            let mut measured: Vec<f64> = ours.iter().filter_map(|p| p.measured_rtt_ms).collect();
            let configured = ours.first().map(|pair| pair.configured_rtt_ms);
            table.rows.push(vec![
                network.to_owned(),
                format!("{a}–{b}"),
                optional(configured),
                optional(median(&mut measured)),
                measured.len().to_string(),
            ]);
        }
    }
    if table.rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading {
            level: 2,
            text: "Network RTT check".into(),
        },
        Block::Paragraph(
            "The round-trip time E3 configured between two parties, and what it measured before \
             the runs: the emulated delay was real when they agree."
                .into(),
        ),
        Block::Table(table),
    ]
}

/// Section 6: per candidate and number of parties, the most manual steps and config lines.
pub(super) fn effort_section(records: &[Record]) -> Vec<Block> {
    let mut table = Table::new(&["candidate", "parties", "manual steps", "config lines"]);
    for candidate in candidates(records) {
        let ours: Vec<&Record> = records
            .iter()
            .filter(|r| r.candidate == candidate)
            .collect();
        let mut parties: Vec<u16> = ours.iter().map(|record| record.parties).collect();
        parties.sort_unstable();
        parties.dedup();
        for count in parties {
            let with = || ours.iter().filter(|record| record.parties == count);
            let steps = with().map(|record| record.manual_steps).max().unwrap_or(0);
            let lines = with().map(|record| record.config_lines).max().unwrap_or(0);
            table.rows.push(vec![
                candidate.to_owned(),
                count.to_string(),
                steps.to_string(),
                lines.to_string(),
            ]);
        }
    }
    if table.rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading {
            level: 2,
            text: "Set-up effort".into(),
        },
        Block::Paragraph(
            "What a person would do by hand to set a candidate up for that many parties \
             (the most over all records)."
                .into(),
        ),
        Block::Table(table),
    ]
}

/// Section 7: every failed record and all its errors.
pub(super) fn failures_section(records: &[Record]) -> Vec<Block> {
    let mut table = Table::new(&["network", "candidate", "workload", "run", "errors"]);
    for record in records.iter().filter(|record| !record.success) {
        let errors = if record.errors.is_empty() {
            MISSING.to_owned()
        } else {
            record.errors.join("; ")
        };
        table.rows.push(vec![
            record.network.clone(),
            record.candidate.clone(),
            record.workload.clone(),
            record.run.to_string(),
            errors,
        ]);
    }
    if table.rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading {
            level: 2,
            text: format!("Failures ({})", table.rows.len()),
        },
        Block::Table(table),
    ]
}
