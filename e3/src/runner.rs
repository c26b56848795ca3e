//! `e3 run`: for every network of a scenario, build it, measure its RTTs, then run every
//! (candidate, workload, run) on it and append one record each to `records.jsonl`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::signal::unix::{SignalKind, signal};

use crate::candidate::{Candidate, Effort, Observation, RunOutcome, Tools, pairs};
use crate::fault::{self, Fault, FaultOutcome};
use crate::netns;
use crate::record::{PairPath, PathKind, Record, WireBytes};
use crate::report::slug;
use crate::scenario::{Network, Scenario, Workload};
use crate::topology::{HOST_INTERFACE, Lab};
use crate::workload::{self, ResultLine};

/// What `e3 run` needs besides the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario_file: PathBuf,
    pub out: PathBuf,
    pub tools: Tools,
    /// E3's own executable (the delay line runs as `e3 delay`).
    pub e3: PathBuf,
}

/// How a scenario run went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub records: usize,
    pub failed: usize,
}

/// Runs a scenario; Ctrl-C or SIGTERM stops it, tearing the current network down.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> anyhow::Result<Summary> {
    netns::require_root()?;
    for name in netns::remove_leftovers()? {
        eprintln!("e3: removed {name}, left by an E3 run that died");
    }
    let records_file = options.out.join("records.jsonl");
    if records_file.exists() {
        anyhow::bail!(
            "{} already holds results: pick another --out or remove it",
            options.out.display()
        );
    }
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    std::fs::copy(&options.scenario_file, options.out.join("scenario.toml"))
        .context("copying the scenario file")?;
    // Listen before building anything: a signal that came first would kill us uncleaned.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::select! {
        summary = run_networks(scenario, options, &records_file) => summary,
        _ = interrupt.recv() => anyhow::bail!("interrupted; the network was torn down"),
        _ = terminate.recv() => anyhow::bail!("terminated; the network was torn down"),
        _ = hangup.recv() => anyhow::bail!("hung up; the network was torn down"),
    }
}

async fn run_networks(
    scenario: &Scenario,
    options: &RunOptions,
    records_file: &Path,
) -> anyhow::Result<Summary> {
    let total = scenario.networks.len()
        * scenario.candidates.len()
        * scenario.workloads.len()
        * usize::try_from(scenario.runs).unwrap_or(usize::MAX);
    let progress = Progress::new(total as u64);
    let mut records = std::fs::File::create(records_file)?;
    let mut summary = Summary::default();
    let mut write = |record: Record| -> anyhow::Result<()> {
        summary.records += 1;
        summary.failed += usize::from(!record.success);
        writeln!(records, "{}", serde_json::to_string(&record)?)?;
        progress.record(&record);
        Ok(())
    };
    for network in &scenario.networks {
        progress.network(&network.name);
        let network_logs = options.out.join("logs").join(slug(&network.name));
        let lab = match Lab::build(network, &options.e3, &network_logs).await {
            Ok(lab) => lab,
            Err(error) => {
                // Every record of this network fails with the reason; the next network may work.
                for context in contexts(scenario, network, &[]) {
                    write(context.failed(format!("building the network: {error:#}")))?;
                }
                continue;
            }
        };
        let measured = measure_rtts(&lab, network);
        for candidate_name in &scenario.candidates {
            let logs = network_logs.join(candidate_name);
            let mut candidate =
                Candidate::prepare(candidate_name, &lab, network, &options.tools, &logs).await;
            for context in contexts(scenario, network, &measured) {
                if context.candidate != candidate_name {
                    continue;
                }
                let record = match &mut candidate {
                    Ok(candidate) => {
                        let name = format!("{}-{}", context.workload.name, context.run);
                        run_one(&lab, candidate, &context, &logs.join(slug(&name))).await
                    }
                    Err(error) => context.failed(format!("setting up: {error:#}")),
                };
                write(record)?;
            }
            drop(candidate);
            lab.remove_port_forwards()?;
        }
    }
    progress.finish();
    Ok(summary)
}

/// Every (candidate, workload, run) of a network, in run order.
fn contexts<'a>(
    scenario: &'a Scenario,
    network: &'a Network,
    measured_rtts: &'a [(u16, u16, Option<f64>)],
) -> impl Iterator<Item = RecordContext<'a>> {
    scenario.candidates.iter().flat_map(move |candidate| {
        scenario.workloads.iter().flat_map(move |workload| {
            (1..=scenario.runs).map(move |run| RecordContext {
                scenario,
                network,
                candidate,
                workload,
                run,
                measured_rtts,
            })
        })
    })
}

/// Everything a record says besides the run's outcome.
struct RecordContext<'a> {
    scenario: &'a Scenario,
    network: &'a Network,
    candidate: &'a str,
    workload: &'a Workload,
    run: u32,
    measured_rtts: &'a [(u16, u16, Option<f64>)],
}

impl RecordContext<'_> {
    fn record(
        &self,
        success: bool,
        paths: Vec<PairPath>,
        wall_seconds: f64,
        errors: Vec<String>,
    ) -> Record {
        let network = self.network;
        Record {
            scenario: self.scenario.name.clone(),
            network: network.name.clone(),
            matrix_cell: network
                .matrix_cell
                .map(|(row, column)| (row.as_str().to_string(), column.as_str().to_string())),
            party_profiles: (0..network.parties())
                .map(|party| network.party_profile(party).as_str().to_string())
                .collect(),
            candidate: self.candidate.to_string(),
            workload: self.workload.name.clone(),
            run: self.run,
            parties: network.parties(),
            success,
            paths,
            setup_seconds: None,
            wall_seconds,
            mpc_seconds: None,
            throughput_mbit_s: None,
            wire_bytes: Vec::new(),
            manual_steps: 0,
            config_lines: 0,
            errors,
            faults: Vec::new(),
        }
    }

    /// A record for a run that could not even start.
    fn failed(&self, error: String) -> Record {
        let paths = pairs(self.network.parties())
            .map(|(a, b)| self.pair(a, b, PathKind::Failed, None, None))
            .collect();
        self.record(false, paths, 0.0, vec![error])
    }

    fn pair(
        &self,
        a: u16,
        b: u16,
        path: PathKind,
        expected: Option<PathKind>,
        mpc_rtt_ms: Option<f64>,
    ) -> PairPath {
        PairPath {
            a,
            b,
            path,
            expected,
            configured_rtt_ms: self.network.configured_rtt_ms(a, b),
            measured_rtt_ms: self
                .measured_rtts
                .iter()
                .find(|(x, y, _)| (*x, *y) == (a, b))
                .and_then(|(_, _, rtt)| *rtt),
            mpc_rtt_ms,
        }
    }
}

/// One (candidate, workload, run) on a built lab, which is put back as built after (once the
/// candidate was observed: a host moved back meanwhile would change the paths it sees).
async fn run_one(
    lab: &Lab,
    candidate: &mut Candidate,
    context: &RecordContext<'_>,
    logs: &Path,
) -> Record {
    let record = run_and_judge(lab, candidate, context, logs).await;
    if let Err(error) = fault::restore(lab, &context.network.faults) {
        eprintln!("e3: could not put the network back as built after its faults: {error:#}");
    }
    record
}

/// Runs one (candidate, workload, run) with its faults, observes the candidate and judges it.
async fn run_and_judge(
    lab: &Lab,
    candidate: &mut Candidate,
    context: &RecordContext<'_>,
    logs: &Path,
) -> Record {
    if let Err(error) = lab.flush_connection_tracking() {
        return context.failed(format!("flushing NAT state: {error:#}"));
    }
    let before = wire_bytes(lab);
    let faults = &context.network.faults;
    let (outcome, fault_outcomes) =
        run_with_faults(lab, candidate, context.workload, faults, logs).await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            let mut record = context.failed(format!("{error:#}"));
            record.faults = fault_outcomes;
            return record;
        }
    };
    let after = wire_bytes(lab);
    let (party_errors, results) = check_parties(context, &outcome);
    let success =
        party_errors.is_empty() && outcome.parties.len() == usize::from(context.network.parties());
    let observation = candidate.observe(lab, success).await;
    let verdict = Verdict {
        success,
        party_errors,
        results: &results,
    };
    let mut record = judge(candidate, context, &outcome, &observation, verdict);
    if let Err(error) = lab.check_delay_lines() {
        // The emulated delay may have been missing for part of the run: do not trust it.
        record.success = false;
        record.errors.insert(0, format!("{error:#}"));
    }
    if let Some(connected) = results
        .iter()
        .map(|r| r.as_ref()?.connected_unix())
        .collect::<Option<Vec<f64>>>()
    {
        let last = connected.iter().copied().fold(f64::MIN, f64::max);
        record.setup_seconds = record
            .success
            .then_some((last - outcome.started_unix).max(0.0));
    }
    record.wire_bytes = after
        .iter()
        .zip(&before)
        .zip(0u16..)
        .map(
            |(((sent, received), (sent_before, received_before)), party)| WireBytes {
                party,
                sent: sent.saturating_sub(*sent_before),
                received: received.saturating_sub(*received_before),
            },
        )
        .collect();
    let Effort {
        manual_steps,
        config_lines,
    } = candidate.effort();
    record.manual_steps = manual_steps;
    record.config_lines = config_lines;
    record.faults = fault_outcomes;
    record
}

/// Runs the candidate while `faults` hit the network at their times; a fault still under way
/// when the run ends is undone then. Returns the run and what each fault did.
async fn run_with_faults(
    lab: &Lab,
    candidate: &mut Candidate,
    workload: &Workload,
    faults: &[Fault],
    logs: &Path,
) -> (anyhow::Result<RunOutcome>, Vec<FaultOutcome>) {
    let started = tokio::time::Instant::now();
    let outcomes = std::sync::Mutex::new(Vec::new());
    let mediator = candidate.mediator();
    let outcome = {
        let run = candidate.run(lab, workload, logs);
        tokio::pin!(run);
        tokio::select! {
            outcome = &mut run => outcome,
            () = fault::inject(lab, faults, &mediator, started, &outcomes) => run.await,
        }
    };
    let mut outcomes = outcomes
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    fault::not_reached(faults, &mut outcomes, started.elapsed());
    (outcome, outcomes)
}

/// Each party's RESULT line, and what was wrong with each party that failed.
fn check_parties(
    context: &RecordContext<'_>,
    outcome: &RunOutcome,
) -> (Vec<String>, Vec<Option<ResultLine>>) {
    let workload = context.workload;
    let parties = context.network.parties();
    let mut party_errors = Vec::new();
    let mut results = Vec::new();
    for (party, ended) in outcome.parties.iter().enumerate() {
        let result = ResultLine::find(&ended.stdout);
        let problem = match (ended.exit_code, &result) {
            (None, _) => Some(format!("timed out after {} s", workload.timeout_s)),
            (Some(0), Some(result)) => {
                workload::check(&workload.check, &workload.args, parties, result)
                    .err()
                    .map(|wrong| format!("wrong answer: {wrong}"))
            }
            (Some(0), None) => Some("printed no RESULT line".to_string()),
            (Some(code), _) => Some(format!("exit code {code}")),
        };
        if let Some(problem) = problem {
            let last_words = ended.stderr_tail.lines().last().unwrap_or("");
            party_errors.push(
                format!("party {party}: {problem}: {last_words}")
                    .trim_end_matches([' ', ':'])
                    .to_string(),
            );
        }
        results.push(result);
    }
    (party_errors, results)
}

/// What the parties' own output says about a run.
struct Verdict<'a> {
    /// Every party exited 0 with the right answer.
    success: bool,
    party_errors: Vec<String>,
    results: &'a [Option<ResultLine>],
}

/// Turns a run into a record: paths compared with expectations, figures taken from the
/// parties' RESULT lines.
fn judge(
    candidate: &Candidate,
    context: &RecordContext<'_>,
    outcome: &RunOutcome,
    observation: &Observation,
    verdict: Verdict<'_>,
) -> Record {
    let network = context.network;
    let Verdict {
        success,
        party_errors,
        results,
    } = verdict;
    // The candidate's own diagnosis (e.g. "no route: …") says more than a party's time-out.
    let errors: Vec<String> = observation
        .errors
        .iter()
        .cloned()
        .chain(party_errors)
        .collect();

    // The programs name parties by MPyC id; the record by E3 party.
    let mpc_rtt = |a: u16, b: u16| {
        let pid = |party: u16| {
            observation
                .mpc_pids
                .get(usize::from(party))
                .copied()
                .flatten()
        };
        let (pa, pb) = (pid(a)?, pid(b)?);
        let (low, high) = (pa.min(pb), pa.max(pb));
        results
            .iter()
            .flatten()
            .flat_map(ResultLine::pair_rtts_ms)
            .find(|(x, y, _)| (*x, *y) == (low, high))
            .map(|(_, _, ms)| ms)
    };
    let paths = observation
        .paths
        .iter()
        .map(|&(a, b, path)| {
            let path = if success || path != PathKind::Unknown {
                path
            } else {
                PathKind::Failed
            };
            let expected = candidate.expected_path(network, a, b);
            context.pair(a, b, path, Some(expected), mpc_rtt(a, b))
        })
        .collect();
    let mut record = context.record(success, paths, outcome.wall.as_secs_f64(), errors);
    let seconds: Vec<f64> = results
        .iter()
        .flatten()
        .filter_map(ResultLine::seconds)
        .collect();
    if success && seconds.len() == results.len() {
        let slowest = seconds.iter().copied().fold(0.0, f64::max);
        record.mpc_seconds = Some(slowest);
        let bytes: Vec<f64> = results
            .iter()
            .flatten()
            .filter_map(ResultLine::bytes_sent)
            .collect();
        if bytes.len() == results.len() && slowest > 0.0 {
            record.throughput_mbit_s = Some(bytes.iter().sum::<f64>() * 8.0 / slowest / 1e6);
        }
    }
    record
}

/// Each party's (sent, received) bytes on its host interface; zeros if unreadable.
fn wire_bytes(lab: &Lab) -> Vec<(u64, u64)> {
    lab.hosts
        .iter()
        .map(|host| {
            host.namespace
                .interface_bytes(HOST_INTERFACE)
                .unwrap_or((0, 0))
        })
        .collect()
}

/// The IP-level RTT of every pair; None (with a warning) where ping got no answer.
fn measure_rtts(lab: &Lab, network: &Network) -> Vec<(u16, u16, Option<f64>)> {
    pairs(network.parties())
        .map(|(a, b)| {
            let rtt = lab
                .measure_rtt_ms(a, b)
                .map_err(|error| eprintln!("e3: {}: no RTT for {a}-{b}: {error:#}", network.name))
                .ok();
            (a, b, rtt)
        })
        .collect()
}

/// A progress bar on a terminal, one line per record otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} [{elapsed_precise}, ~{eta} left] {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar }
    }

    fn network(&self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("building {name}"));
        }
    }

    fn record(&self, record: &Record) {
        let routes: Vec<String> = record
            .paths
            .iter()
            .map(|pair| format!("{}-{} {}", pair.a, pair.b, pair.path.as_str()))
            .collect();
        let line = format!(
            "{} {} | {} | {} #{}: {:.2} s, {}{}",
            if record.success { "ok  " } else { "FAIL" },
            record.network,
            record.candidate,
            record.workload,
            record.run,
            record.wall_seconds,
            routes.join(", "),
            record
                .errors
                .first()
                .map(|error| format!(" | {error}"))
                .unwrap_or_default()
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
                bar.set_message(format!("{} | {}", record.network, record.candidate));
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
