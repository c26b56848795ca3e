//! Sections 3 and 4: the time each candidate took per (network, workload), its overhead
//! relative to the `plain` baseline, as tables and bar charts, and mpcnet side by side with
//! every other overlay.

use super::document::{Block, Table};
use super::plot::{self, Bar, GroupedBars, HorizontalBar, HorizontalBars, Series};
use super::{BASELINE, CHALLENGER, Files, candidates, first_appearance, median, number, optional};
use crate::record::Record;

/// The runs of one (network, workload, candidate); the medians are over the successful ones.
#[derive(Debug, Clone, PartialEq)]
struct Summary<'a> {
    network: &'a str,
    workload: &'a str,
    candidate: &'a str,
    /// The candidate's index among all candidates, for its colour.
    color: usize,
    ok: usize,
    total: usize,
    setup: Option<f64>,
    wall: Option<f64>,
    mpc: Option<f64>,
    throughput: Option<f64>,
    /// The median over every pair of every successful run.
    mpc_rtt: Option<f64>,
}

impl Summary<'_> {
    /// The median MPC time, else the median wall time (then `true`).
    fn time(&self) -> Option<(f64, bool)> {
        match (self.mpc, self.wall) {
            (Some(mpc), _) => Some((mpc, false)),
            (None, Some(wall)) => Some((wall, true)),
            (None, None) => None,
        }
    }
}

/// Every (network, workload, candidate) with records, networks and workloads in order of first
/// appearance, candidates in their global order.
fn summaries(records: &[Record]) -> Vec<Summary<'_>> {
    let candidates = candidates(records);
    let mut summaries = Vec::new();
    for network in first_appearance(records.iter().map(|record| record.network.as_str())) {
        let in_network: Vec<&Record> = records.iter().filter(|r| r.network == network).collect();
        for workload in first_appearance(in_network.iter().map(|r| r.workload.as_str())) {
            for (color, candidate) in candidates.iter().enumerate() {
                let runs: Vec<&Record> = in_network
                    .iter()
                    .filter(|r| r.workload == workload && r.candidate == *candidate)
                    .copied()
                    .collect();
                if runs.is_empty() {
                    continue;
                }
                let ok: Vec<&Record> = runs.iter().filter(|r| r.success).copied().collect();
                let of = |value: fn(&Record) -> Option<f64>| {
                    median(&mut ok.iter().filter_map(|r| value(r)).collect::<Vec<_>>())
                };
                let mut rtts: Vec<f64> = ok
                    .iter()
                    .flat_map(|r| r.paths.iter().filter_map(|pair| pair.mpc_rtt_ms))
                    .collect();
                summaries.push(Summary {
                    network,
                    workload,
                    candidate,
                    color,
                    ok: ok.len(),
                    total: runs.len(),
                    setup: of(|r| r.setup_seconds),
                    wall: of(|r| Some(r.wall_seconds)),
                    mpc: of(|r| r.mpc_seconds),
                    throughput: of(|r| r.throughput_mbit_s),
                    mpc_rtt: median(&mut rtts),
                });
            }
        }
    }
    summaries
}

/// Sections 3 and 4, and their SVGs.
pub(super) fn sections(records: &[Record], files: &mut Files) -> anyhow::Result<Vec<Block>> {
    let summaries = summaries(records);
    let mut blocks = time_section(records, &summaries, files)?;
    blocks.extend(overhead_section(&summaries, files)?);
    blocks.extend(rivals_section(&summaries));
    Ok(blocks)
}

/// Section 3: the table over all networks, and a bar chart per non-matrix network.
fn time_section(
    records: &[Record],
    summaries: &[Summary],
    files: &mut Files,
) -> anyhow::Result<Vec<Block>> {
    if summaries.is_empty() {
        return Ok(Vec::new());
    }
    let mut table = Table::new(&[
        "network",
        "workload",
        "candidate",
        "runs ok/total",
        "setup s",
        "wall s",
        "MPC s",
        "throughput Mbit/s",
        "MPC RTT ms",
    ]);
    for summary in summaries {
        table.rows.push(vec![
            summary.network.to_owned(),
            summary.workload.to_owned(),
            summary.candidate.to_owned(),
            format!("{}/{}", summary.ok, summary.total),
            optional(summary.setup),
            optional(summary.wall),
            optional(summary.mpc),
            optional(summary.throughput),
            optional(summary.mpc_rtt),
        ]);
    }
    let mut blocks = vec![
        Block::Heading {
            level: 2,
            text: "Time per workload".into(),
        },
        Block::Paragraph(
            "Medians over the successful runs. Setup: from the candidate's start until every \
             party was connected; wall: until the last party exited; MPC: the programs' own \
             time after connecting; MPC RTT: over every pair of every run."
                .into(),
        ),
        Block::Table(table),
    ];
    let networks = first_appearance(records.iter().map(|record| record.network.as_str()));
    for network in networks {
        if records
            .iter()
            .any(|record| record.network == network && record.matrix_cell.is_some())
        {
            continue;
        }
        let ours: Vec<&Summary> = summaries.iter().filter(|s| s.network == network).collect();
        if let Some(chart) = time_chart(network, &ours) {
            let file = files.svg_name(&format!("time-{network}"));
            files.write(&file, &plot::grouped_bars(&chart)?)?;
            blocks.push(Block::Image {
                alt: format!("Median time per workload on {network}"),
                file,
            });
        }
    }
    Ok(blocks)
}

/// The grouped bars of one network: a group per workload, a bar per candidate; None if no bar.
fn time_chart(network: &str, summaries: &[&Summary]) -> Option<GroupedBars> {
    let workloads = first_appearance(summaries.iter().map(|s| s.workload));
    let times: Vec<(f64, bool)> = summaries.iter().filter_map(|s| s.time()).collect();
    let walls = times.iter().filter(|(_, is_wall)| *is_wall).count();
    let y_desc = match (times.len(), walls) {
        (0, _) => return None,
        (_, 0) => "median MPC time (s)",
        (all, walls) if walls == all => "median wall time (s)",
        _ => "median MPC time (s); * = wall time",
    };
    let mut series = Vec::new();
    for candidate in first_appearance(summaries.iter().map(|s| s.candidate)) {
        let ours: Vec<&Summary> = summaries
            .iter()
            .filter(|s| s.candidate == candidate)
            .copied()
            .collect();
        let values = workloads
            .iter()
            .map(|workload| {
                let summary = ours.iter().find(|s| s.workload == *workload)?;
                let (value, is_wall) = summary.time()?;
                let marker = if is_wall { "*" } else { "" };
                Some(Bar {
                    value,
                    label: format!("{}{marker}", number(value)),
                })
            })
            .collect();
        series.push(Series {
            name: candidate.to_owned(),
            color: ours.first().map_or(0, |s| s.color),
            values,
        });
    }
    Some(GroupedBars {
        title: format!("{network}: time per workload"),
        y_desc: y_desc.into(),
        groups: workloads.iter().map(|w| (*w).to_owned()).collect(),
        series,
    })
}

/// `numerator / denominator` when both are known and the denominator is positive.
fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    let denominator = denominator.filter(|value| *value > 0.0)?;
    Some(numerator? / denominator)
}

/// Section 4: each candidate's median time over the baseline's, where both have successful runs.
fn overhead_section(summaries: &[Summary], files: &mut Files) -> anyhow::Result<Vec<Block>> {
    let mut table = Table::new(&[
        "network",
        "workload",
        "candidate",
        "MPC s",
        &format!("{BASELINE} MPC s"),
        "MPC-time ratio",
        "wall-time ratio",
    ]);
    let mut bars = Vec::new();
    for summary in summaries
        .iter()
        .filter(|s| s.candidate != BASELINE && s.ok > 0)
    {
        let Some(baseline) = summaries.iter().find(|s| {
            s.candidate == BASELINE
                && s.network == summary.network
                && s.workload == summary.workload
                && s.ok > 0
        }) else {
            continue;
        };
        let mpc_ratio = ratio(summary.mpc, baseline.mpc);
        let wall_ratio = ratio(summary.wall, baseline.wall);
        table.rows.push(vec![
            summary.network.to_owned(),
            summary.workload.to_owned(),
            summary.candidate.to_owned(),
            optional(summary.mpc),
            optional(baseline.mpc),
            optional(mpc_ratio),
            optional(wall_ratio),
        ]);
        let shown = mpc_ratio.map(|r| (r, "")).or(wall_ratio.map(|r| (r, "*")));
        if let Some((value, marker)) = shown {
            bars.push(HorizontalBar {
                label: format!(
                    "{} / {} / {}",
                    summary.network, summary.workload, summary.candidate
                ),
                value,
                value_label: format!("{}{marker}", number(value)),
                color: summary.color,
            });
        }
    }
    if table.rows.is_empty() {
        return Ok(Vec::new());
    }
    let chart = HorizontalBars {
        title: format!("Time relative to {BASELINE}"),
        x_desc: format!("median MPC time / {BASELINE}'s (black line: {BASELINE}; * = wall time)"),
        reference: 1.0,
        bars,
    };
    let file = files.svg_name("overhead");
    files.write(&file, &plot::horizontal_bars(&chart)?)?;
    Ok(vec![
        Block::Heading {
            level: 2,
            text: format!("Overhead relative to {BASELINE}"),
        },
        Block::Paragraph(format!(
            "The ratio of a candidate's median time to {BASELINE}'s on the same network and \
             workload, both measured in this results directory; above 1 is slower."
        )),
        Block::Table(table),
        Block::Image {
            alt: format!("Time relative to {BASELINE}"),
            file,
        },
    ])
}

/// Section 4b: on latency and throughput workloads, mpcnet's MPC round trip, throughput and MPC
/// time over each other overlay's, on the same network and workload in the same results.
fn rivals_section(summaries: &[Summary]) -> Vec<Block> {
    let mut table = Table::new(&[
        "network",
        "workload",
        "rival",
        &format!("{CHALLENGER} MPC RTT ms"),
        "rival MPC RTT ms",
        "RTT ratio",
        &format!("{CHALLENGER} Mbit/s"),
        "rival Mbit/s",
        "throughput ratio",
        "MPC-time ratio",
    ]);
    for ours in summaries
        .iter()
        .filter(|s| s.candidate == CHALLENGER && s.ok > 0)
    {
        // Latency and throughput workloads: the figures the overlays are compared on.
        if ours.mpc_rtt.is_none() && ours.throughput.is_none() {
            continue;
        }
        for rival in summaries.iter().filter(|s| {
            s.network == ours.network
                && s.workload == ours.workload
                && ![CHALLENGER, BASELINE].contains(&s.candidate)
                && s.ok > 0
        }) {
            table.rows.push(vec![
                ours.network.to_owned(),
                ours.workload.to_owned(),
                rival.candidate.to_owned(),
                optional(ours.mpc_rtt),
                optional(rival.mpc_rtt),
                optional(ratio(ours.mpc_rtt, rival.mpc_rtt)),
                optional(ours.throughput),
                optional(rival.throughput),
                optional(ratio(ours.throughput, rival.throughput)),
                optional(ratio(ours.mpc, rival.mpc)),
            ]);
        }
    }
    if table.rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading {
            level: 2,
            text: format!("{CHALLENGER} against the other overlays"),
        },
        Block::Paragraph(format!(
            "Medians over the successful runs of the same network and workload, measured in \
             this results directory. RTT ratio: {CHALLENGER}'s MPC round trip over the rival's \
             (below 1: lower latency); throughput ratio: {CHALLENGER}'s over the rival's (above \
             1: faster); MPC-time ratio: {CHALLENGER}'s time over the rival's (below 1: quicker)."
        )),
        Block::Table(table),
    ]
}
