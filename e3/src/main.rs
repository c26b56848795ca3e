//! `e3`: builds namespaced networks behind real NAT, runs MPyC workloads over each candidate,
//! and reports what worked and how fast.

mod delay;
mod record;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// E3, the Extensible Evaluation Environment for MPC networking.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write report.md, report.html and SVG plots from a results directory's records.jsonl.
    Report {
        /// The directory `e3 run` wrote.
        dir: PathBuf,
    },
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
        Command::Report { dir } => report_command(&dir),
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

fn report_command(dir: &std::path::Path) -> anyhow::Result<()> {
    let path = dir.join("records.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?;
    let records = record::read_records(&text)?;
    let written = report::write_report(&records, dir)?;
    for file in written {
        println!("{}", file.display());
    }
    Ok(())
}
