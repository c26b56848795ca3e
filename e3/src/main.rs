//! `e3`: builds namespaced networks behind real NAT, runs MPyC workloads over each candidate,
//! and reports what worked and how fast.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use e3::candidate::{self, Tools};
use e3::runner::{self, RunOptions};
use e3::scenario::{Profile, Scenario};
use e3::{delay, netns, record, report, workload};

/// E3, the Extensible Evaluation Environment for MPC networking.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario (needs root) and write records.jsonl, logs and the report.
    Run {
        /// The scenario file, e.g. scenarios/nat-matrix.toml.
        scenario: PathBuf,
        /// Where results go [default: results/<scenario name>-<unix time>].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The Python that has mpyc [default: $MPCNET_PYTHON, else python3].
        #[arg(long, env = "E3_PYTHON", value_name = "PATH")]
        python: Option<PathBuf>,
        /// The mpcnet binary [default: `mpcnet` next to e3, else on PATH].
        #[arg(long, env = "E3_MPCNET", value_name = "PATH")]
        mpcnet: Option<PathBuf>,
    },
    /// Write report.md, report.html and SVG plots from a results directory's records.jsonl.
    Report {
        /// The directory `e3 run` wrote.
        dir: PathBuf,
    },
    /// List the scenarios in a directory, the candidates, workloads and NAT profiles.
    List {
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Remove the namespaces (and the processes in them) of E3 runs that died.
    Cleanup,
    /// Hold every packet of an NFQUEUE queue for a fixed time (runs inside a router namespace).
    #[command(hide = true)]
    Delay {
        #[arg(long)]
        queue: u16,
        /// One-way delay in milliseconds.
        #[arg(long)]
        delay_ms: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            scenario,
            out,
            python,
            mpcnet,
        } => run_command(&scenario, out, python, mpcnet),
        Command::Report { dir } => report_command(&dir),
        Command::List { dir } => list_command(&dir),
        Command::Cleanup => netns::remove_leftovers().map(|removed| {
            for name in &removed {
                println!("removed {name}");
            }
            println!("{} leftover namespaces removed", removed.len());
        }),
        Command::Delay { queue, delay_ms } => {
            delay::run(queue, Duration::from_secs_f64(delay_ms / 1000.0))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("e3: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(
    scenario_file: &Path,
    out: Option<PathBuf>,
    python: Option<PathBuf>,
    mpcnet: Option<PathBuf>,
) -> anyhow::Result<()> {
    let scenario = Scenario::load(scenario_file, candidate::NAMES, workload::CHECKS)?;
    let e3 = std::env::current_exe().context("locating e3's own executable")?;
    let out = out.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        PathBuf::from("results").join(format!("{}-{now}", scenario.name))
    });
    let python = python
        .or_else(|| std::env::var_os("MPCNET_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let mpcnet = mpcnet.unwrap_or_else(|| {
        let beside = e3.with_file_name("mpcnet");
        if beside.is_file() {
            beside
        } else {
            PathBuf::from("mpcnet")
        }
    });
    let options = RunOptions {
        scenario_file: scenario_file.to_path_buf(),
        out: absolute(&out)?,
        tools: Tools {
            python: absolute_program(&python),
            mpcnet: absolute_program(&mpcnet),
        },
        e3,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(runner::run(&scenario, &options))?;
    report_command(&options.out)?;
    eprintln!(
        "e3: {} records, {} failed; results in {}",
        summary.records,
        summary.failed,
        options.out.display()
    );
    Ok(())
}

/// Processes in namespaces start elsewhere: give them absolute paths.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(std::env::current_dir()?.join(path))
}

/// A path with a slash made absolute; a bare name is left for PATH.
fn absolute_program(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        absolute(program).unwrap_or_else(|_| program.to_path_buf())
    } else {
        program.to_path_buf()
    }
}

fn report_command(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("records.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let records = record::read_records(&text)?;
    for file in report::write_report(&records, dir)? {
        println!("{}", file.display());
    }
    Ok(())
}

fn list_command(dir: &Path) -> anyhow::Result<()> {
    println!("scenarios in {}:", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    for file in files {
        match Scenario::load(&file, candidate::NAMES, workload::CHECKS) {
            Ok(scenario) => println!(
                "  {:<28} {} networks, {} workloads, candidates {}: {}",
                file.display(),
                scenario.networks.len(),
                scenario.workloads.len(),
                scenario.candidates.join(", "),
                scenario.description
            ),
            Err(error) => println!("  {:<28} BROKEN: {error:#}", file.display()),
        }
    }
    println!("candidates: {}", candidate::NAMES.join(", "));
    println!("workloads (answer checks): {}", workload::CHECKS.join(", "));
    println!("NAT/firewall profiles:");
    for profile in Profile::ALL {
        println!("  {:<12} {}", profile.as_str(), profile.describe());
    }
    Ok(())
}
