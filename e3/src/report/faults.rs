//! The "Faults survived" section: for every network with faults, whether each candidate's
//! runs came through them with the right answer, and what each fault was seen to do.

use super::document::{Block, Table};
use super::{first_appearance, number};
use crate::record::Record;

/// The section, or nothing when no record had faults.
pub(super) fn faults_section(records: &[Record]) -> Vec<Block> {
    let faulted: Vec<&Record> = records.iter().filter(|r| !r.faults.is_empty()).collect();
    if faulted.is_empty() {
        return Vec::new();
    }
    let networks = first_appearance(faulted.iter().map(|r| r.network.as_str()));
    let mut header = vec!["candidate"];
    header.extend(networks.iter().copied());
    let mut table = Table::new(&header);
    for candidate in first_appearance(faulted.iter().map(|r| r.candidate.as_str())) {
        let mut row = vec![candidate.to_string()];
        for network in &networks {
            let runs: Vec<&&Record> = faulted
                .iter()
                .filter(|r| r.candidate == candidate && r.network == *network)
                .collect();
            row.push(cell(&runs));
        }
        table.rows.push(row);
    }
    let mut blocks = vec![
        Block::Heading {
            level: 2,
            text: "Faults survived".into(),
        },
        Block::Paragraph(
            "Each network's faults hit it while every candidate ran (times from the start of \
             the run). Survived: every party printed the right answer; lost: the run failed \
             (first error shown); not proven: a fault did not take effect, so the run shows \
             nothing; not applicable: the candidate has nothing the fault hits (a mediator \
             fault on a candidate without one). Wall time in seconds."
                .into(),
        ),
        Block::Table(table),
    ];
    blocks.push(Block::List(evidence(&faulted, &networks)));
    blocks
}

/// One cell: how the runs of a candidate on a network went through its faults.
fn cell(runs: &[&&Record]) -> String {
    let outcomes: Vec<String> = runs.iter().map(|record| outcome(record)).collect();
    if outcomes.is_empty() {
        super::MISSING.into()
    } else {
        outcomes.join("; ")
    }
}

/// How one run went through its faults.
fn outcome(record: &Record) -> String {
    if let Some(why) = record.fault_not_applicable() {
        return format!("not applicable: {why}");
    }
    match record.survived_faults() {
        Some(true) => format!("survived ({} s)", number(record.wall_seconds)),
        Some(false) => format!(
            "lost: {}",
            record
                .errors
                .first()
                .map_or("no error recorded", String::as_str)
        ),
        None => "not proven".into(),
    }
}

/// Per network, each fault and what its first run saw it do.
fn evidence(faulted: &[&Record], networks: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for network in networks {
        for record in faulted.iter().filter(|r| r.network == *network) {
            for fault in &record.faults {
                let applied = fault.applied_at_s.map_or("not applied".to_string(), |at| {
                    format!("applied at {} s", number(at))
                });
                lines.push(format!(
                    "{network}, {}: {}; {applied}; {}",
                    record.candidate, fault.fault, fault.evidence
                ));
            }
        }
    }
    lines
}
