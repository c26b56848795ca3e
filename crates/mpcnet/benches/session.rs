//! Session benchmark: real MPyC over mpcnet against MPyC over plain TCP, measured side by side
//! (interleaved) in one run on loopback, three parties on this machine.
//!
//! Prints, as medians over `MPCNET_BENCH_REPEATS` runs (default 3):
//! - the many-rounds example's step time over mpcnet and over plain TCP, and their ratio;
//! - the time from the last party's `mpcnet run` (its join) until every party has started MPyC;
//! - the peak resident memory of an `mpcnet run` process (the agent, not the Python it starts).
//!
//! Needs `MPCNET_PYTHON` (a Python with mpyc; scripts/bench.sh sets it).

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MPCNET: &str = env!("CARGO_BIN_EXE_mpcnet");
const STEPS: &str = "300";
const NAMES: [&str; 3] = ["alice", "bob", "carol"];

fn main() -> anyhow::Result<()> {
    let python = std::env::var("MPCNET_PYTHON").map_err(|_| {
        anyhow::anyhow!("set MPCNET_PYTHON to a Python with mpyc (scripts/bench.sh does)")
    })?;
    let repeats: usize = std::env::var("MPCNET_BENCH_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/many_rounds.py");
    println!(
        "session benchmark: many_rounds.py {STEPS} steps, 3 parties on loopback, {repeats} runs each"
    );

    let (mut plain, mut over_mpcnet, mut to_start, mut peak_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats {
        plain.push(plain_mpyc(&python, &program)?);
        let run = mpcnet_session(&python, &program)?;
        over_mpcnet.push(run.step_seconds);
        to_start.push(run.last_join_to_start);
        peak_rss.push(run.peak_rss_kib);
    }
    let (plain, over_mpcnet) = (median(&mut plain), median(&mut over_mpcnet));
    println!(
        "many-rounds steps: plain TCP {plain:.3} s, mpcnet {over_mpcnet:.3} s, ratio {:.2}x (target <= 1.15x)",
        over_mpcnet / plain
    );
    println!(
        "last join to MPyC started at every party: {:.3} s (target < 1 s)",
        median(&mut to_start)
    );
    println!(
        "agent peak RSS: {:.1} MB median, {:.1} MB max (target < 40 MB)",
        median(&mut peak_rss) / 1024.0,
        peak_rss.iter().copied().fold(0.0, f64::max) / 1024.0
    );
    Ok(())
}

/// MPyC over plain TCP: three processes with `-P 127.0.0.1:PORT`; returns the slowest party's step time.
fn plain_mpyc(python: &str, program: &Path) -> anyhow::Result<f64> {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
    let children = (0..3)
        .map(|index| {
            let mut command = Command::new(python);
            command.arg(program).args(["-I", &index.to_string()]);
            for port in &ports {
                command.args(["-P", &format!("127.0.0.1:{port}")]);
            }
            command.arg(STEPS);
            spawn(command)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outputs = finish(children)?;
    slowest_steps(&outputs)
}

struct MpcnetRun {
    step_seconds: f64,
    last_join_to_start: f64,
    peak_rss_kib: f64,
}

/// The same program through `mpcnet serve` + three `mpcnet run`; the third party starts last.
fn mpcnet_session(python: &str, program: &Path) -> anyhow::Result<MpcnetRun> {
    let work = std::env::temp_dir().join(format!(
        "mpcnet-bench-{}-{}",
        std::process::id(),
        free_port()?
    ));
    let mut server = Command::new(MPCNET)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--data",
        ])
        .arg(work.join("server"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut address = String::new();
    BufReader::new(server.stdout.take().expect("piped")).read_line(&mut address)?;
    let created = Command::new(MPCNET)
        .args([
            "create",
            "--server",
            address.trim(),
            "--parties",
            "3",
            "--party-name",
            "alice",
            "--program",
        ])
        .arg(program)
        .args(["--", STEPS])
        .env("MPCNET_HOME", work.join("alice"))
        .output()?;
    anyhow::ensure!(
        created.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let invite = String::from_utf8(created.stdout)?.trim().to_owned();

    let run = |name: &str| {
        let mut command = Command::new(MPCNET);
        command
            .args([
                "run",
                &invite,
                "--yes",
                "--name",
                name,
                "--bind",
                "127.0.0.1:0",
                "--python",
                python,
            ])
            .env("MPCNET_HOME", work.join(name));
        spawn(command)
    };
    let first_two: Vec<Party> = NAMES[..2]
        .iter()
        .map(|name| run(name))
        .collect::<anyhow::Result<_>>()?;
    for party in &first_two {
        party.wait_for_line("waiting for the session to fill", Duration::from_secs(30))?;
    }
    let last_join = Instant::now();
    let mut parties = first_two;
    parties.push(run(NAMES[2])?);
    let mut started = Vec::new();
    for party in &parties {
        started.push(party.wait_for_line("starting many_rounds.py", Duration::from_secs(60))?);
    }
    let last_join_to_start = started
        .iter()
        .map(|at| at.duration_since(last_join).as_secs_f64())
        .fold(0.0, f64::max);
    let pids: Vec<u32> = parties.iter().map(|party| party.child.id()).collect();
    let mut peak_rss_kib = 0.0f64;
    let outputs = finish_watching(parties, |_| {
        for pid in &pids {
            peak_rss_kib = peak_rss_kib.max(high_water_mark_kib(*pid).unwrap_or(0.0));
        }
    })?;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&work);
    Ok(MpcnetRun {
        step_seconds: slowest_steps(&outputs)?,
        last_join_to_start,
        peak_rss_kib,
    })
}

/// A started process whose stdout and stderr lines arrive, with their arrival time, on channels.
struct Party {
    child: Child,
    stdout: mpsc::Receiver<(Instant, String)>,
    stderr: mpsc::Receiver<(Instant, String)>,
    seen: std::cell::RefCell<Vec<String>>,
}

impl Party {
    /// Waits for a stderr line containing `text`; returns when it arrived.
    fn wait_for_line(&self, text: &str, limit: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(remaining) {
                Ok((at, line)) if line.contains(text) => return Ok(at),
                Ok((_, line)) => self.seen.borrow_mut().push(line),
                Err(_) => anyhow::bail!(
                    "no {text:?} within {limit:?}; saw: {:?}",
                    self.seen.borrow()
                ),
            }
        }
    }
}

fn spawn(mut command: Command) -> anyhow::Result<Party> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let lines = |pipe: Box<dyn std::io::Read + Send>| {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = sender.send((Instant::now(), line));
            }
        });
        receiver
    };
    let stdout = lines(Box::new(child.stdout.take().expect("piped")));
    let stderr = lines(Box::new(child.stderr.take().expect("piped")));
    Ok(Party {
        child,
        stdout,
        stderr,
        seen: Default::default(),
    })
}

fn finish(parties: Vec<Party>) -> anyhow::Result<Vec<String>> {
    finish_watching(parties, |_| {})
}

/// Waits for every party (at most two minutes), calling `watch` every 20 ms; returns each stdout.
fn finish_watching(
    mut parties: Vec<Party>,
    mut watch: impl FnMut(&[Party]),
) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while parties
        .iter_mut()
        .any(|party| matches!(party.child.try_wait(), Ok(None)))
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "a party did not finish within two minutes"
        );
        watch(&parties);
        std::thread::sleep(Duration::from_millis(20));
    }
    parties
        .into_iter()
        .map(|party| {
            let status = party.child.wait_with_output()?.status;
            let stdout: Vec<String> = party.stdout.try_iter().map(|(_, line)| line).collect();
            let stderr: Vec<String> = party.stderr.try_iter().map(|(_, line)| line).collect();
            anyhow::ensure!(status.success(), "a party failed ({status}): {stderr:?}");
            Ok(stdout.join("\n"))
        })
        .collect()
}

/// The largest `seconds=` of the parties' RESULT lines.
fn slowest_steps(outputs: &[String]) -> anyhow::Result<f64> {
    outputs
        .iter()
        .map(|output| {
            let line = output
                .lines()
                .find(|line| line.starts_with("RESULT counter=6"))
                .ok_or_else(|| anyhow::anyhow!("no correct RESULT in {output:?}"))?;
            let seconds = line
                .split("seconds=")
                .nth(1)
                .ok_or_else(|| anyhow::anyhow!("no seconds in {line:?}"))?;
            Ok(seconds.trim().parse::<f64>()?)
        })
        .try_fold(0.0f64, |slowest, seconds: anyhow::Result<f64>| {
            Ok(slowest.max(seconds?))
        })
}

/// A process's peak resident set size (VmHWM), in KiB.
fn high_water_mark_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
