//! Session benchmark: real MPyC over mpcnet against MPyC over plain TCP, measured side by side
//! (interleaved) in one run on loopback, all parties on this machine.
//!
//! Prints, for three and for eight parties, as medians over `MPCNET_BENCH_REPEATS` runs
//! (default 3), each next to its target:
//! - the many-rounds example's step time over mpcnet and over plain TCP, and their ratio;
//! - the time from the last party's `mpcnet run` (its join) until every party has started MPyC;
//! - the peak resident memory of an `mpcnet run` process (the agent, not the Python it starts).
//!
//! `MPCNET_BENCH_STEPS` sets the example's steps (default 300). Under `cargo test` a tiny run
//! (three parties, a few steps, once; `mode.rs`) checks every party's answer and figure, so a
//! broken session or a changed `RESULT` line fails it. The Python is `MPCNET_PYTHON` (which must
//! import mpyc), else the project's `.venv`; with neither the tiny run says "skipped".

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use e3::workload::{self, ResultLine};

#[path = "../../mpcnet-agent/benches/support/mode.rs"]
mod mode;

use mode::Mode;

const MPCNET: &str = env!("CARGO_BIN_EXE_mpcnet");
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A party count and issue 15's target for mpcnet's step time over plain TCP's.
#[derive(Clone, Copy)]
struct Case {
    parties: u16,
    ratio_target: f64,
}

/// What one benchmark run does.
struct Plan {
    cases: Vec<Case>,
    steps: String,
    repeats: usize,
}

impl Plan {
    fn new(mode: Mode) -> Self {
        let three = Case {
            parties: 3,
            ratio_target: 1.15,
        };
        let eight = Case {
            parties: 8,
            ratio_target: 1.25,
        };
        Self {
            cases: mode.pick(vec![three, eight], vec![three]),
            steps: mode.size("MPCNET_BENCH_STEPS", 300, 10).to_string(),
            repeats: mode.size("MPCNET_BENCH_REPEATS", 3, 1),
        }
    }
}

/// One case's figures, one entry per repeat.
#[derive(Default)]
struct Figures {
    plain: Vec<f64>,
    over_mpcnet: Vec<f64>,
    to_start: Vec<f64>,
    peak_rss_kib: Vec<f64>,
}

fn main() -> anyhow::Result<()> {
    let mode = Mode::from_args();
    let Some(python) = python_with_mpyc()? else {
        anyhow::ensure!(mode == Mode::Tiny, "{NO_PYTHON}");
        println!("session benchmark skipped: {NO_PYTHON}");
        return Ok(());
    };
    let plan = Plan::new(mode);
    let program = Path::new(WORKSPACE).join("examples/many_rounds.py");
    println!(
        "session benchmark ({mode}): many_rounds.py {} steps on loopback, {} runs each, MPyC from {}",
        plan.steps,
        plan.repeats,
        python.display()
    );
    let mut figures: Vec<Figures> = plan.cases.iter().map(|_| Figures::default()).collect();
    for _ in 0..plan.repeats {
        for (case, figures) in plan.cases.iter().zip(&mut figures) {
            figures
                .plain
                .push(plain_mpyc(&python, &program, case.parties, &plan.steps)?);
            let run = mpcnet_session(&python, &program, case.parties, &plan.steps)?;
            figures.over_mpcnet.push(run.step_seconds);
            figures.to_start.push(run.last_join_to_start);
            figures.peak_rss_kib.push(run.peak_rss_kib);
        }
    }
    for (case, mut figures) in plan.cases.iter().zip(figures) {
        print_figures(case, &mut figures);
    }
    Ok(())
}

const NO_PYTHON: &str = "MPCNET_PYTHON is not set and the project's .venv has no mpyc \
    (`source scripts/python-env.sh` makes it and sets MPCNET_PYTHON)";

/// `MPCNET_PYTHON`, which must import mpyc; else the project's `.venv` if it does; else none.
fn python_with_mpyc() -> anyhow::Result<Option<PathBuf>> {
    if let Some(python) = std::env::var_os("MPCNET_PYTHON").map(PathBuf::from) {
        anyhow::ensure!(
            imports_mpyc(&python),
            "MPCNET_PYTHON={} cannot import mpyc",
            python.display()
        );
        return Ok(Some(python));
    }
    let venv = Path::new(WORKSPACE).join(".venv/bin/python");
    Ok(imports_mpyc(&venv).then_some(venv))
}

fn imports_mpyc(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import mpyc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn print_figures(case: &Case, figures: &mut Figures) {
    let parties = case.parties;
    let (plain, over_mpcnet) = (median(&mut figures.plain), median(&mut figures.over_mpcnet));
    println!(
        "{parties} parties, many-rounds steps: plain TCP {plain:.3} s, mpcnet {over_mpcnet:.3} s, ratio {:.2}x (target <= {:.2}x)",
        over_mpcnet / plain,
        case.ratio_target
    );
    println!(
        "{parties} parties, last join to MPyC started at every party: {:.3} s (target < 1 s)",
        median(&mut figures.to_start)
    );
    println!(
        "{parties} parties, agent peak RSS: {:.1} MB median, {:.1} MB max (target < 40 MB)",
        median(&mut figures.peak_rss_kib) / 1024.0,
        figures.peak_rss_kib.iter().copied().fold(0.0, f64::max) / 1024.0
    );
}

/// MPyC over plain TCP: a process per party with `-P 127.0.0.1:PORT` for every party; returns
/// the slowest party's step time.
fn plain_mpyc(python: &Path, program: &Path, parties: u16, steps: &str) -> anyhow::Result<f64> {
    let ports: Vec<u16> = (0..parties)
        .map(|_| free_port())
        .collect::<anyhow::Result<_>>()?;
    let children = (0..parties)
        .map(|index| {
            let mut command = Command::new(python);
            command.arg(program).args(["-I", &index.to_string()]);
            for port in &ports {
                command.args(["-P", &format!("127.0.0.1:{port}")]);
            }
            command.arg(steps);
            spawn(command)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outputs = finish(children)?;
    slowest_steps(&outputs, parties, steps)
}

struct MpcnetRun {
    step_seconds: f64,
    last_join_to_start: f64,
    peak_rss_kib: f64,
}

/// The same program through `mpcnet serve` + an `mpcnet run` per party; the last party starts
/// once the others wait for it.
fn mpcnet_session(
    python: &Path,
    program: &Path,
    parties: u16,
    steps: &str,
) -> anyhow::Result<MpcnetRun> {
    let work = tempfile::tempdir()?;
    let (_server, address) = serve(&work.path().join("server"))?;
    let names: Vec<String> = (0..parties).map(|index| format!("party{index}")).collect();
    let invite = create(&address, &names[0], parties, program, steps, work.path())?;
    let run = |name: &str| {
        let mut command = Command::new(MPCNET);
        command
            .args(["run", &invite, "--yes", "--name", name])
            .args(["--bind", "127.0.0.1:0", "--python"])
            .arg(python)
            .env("MPCNET_HOME", work.path().join(name));
        spawn(command)
    };
    let (last_name, first_names) = names.split_last().context("no parties")?;
    let mut started_parties: Vec<Party> = first_names
        .iter()
        .map(|name| run(name))
        .collect::<anyhow::Result<_>>()?;
    for party in &started_parties {
        party.wait_for_line("waiting for the session to fill", Duration::from_secs(30))?;
    }
    let last_join = Instant::now();
    started_parties.push(run(last_name)?);
    let mut started = Vec::new();
    for party in &started_parties {
        started.push(party.wait_for_line("starting many_rounds.py", Duration::from_secs(60))?);
    }
    let last_join_to_start = started
        .iter()
        .map(|at| at.duration_since(last_join).as_secs_f64())
        .fold(0.0, f64::max);
    let pids: Vec<u32> = started_parties
        .iter()
        .map(|party| party.child.id())
        .collect();
    let mut peak_rss_kib = 0.0f64;
    let outputs = finish_watching(started_parties, || {
        for pid in &pids {
            peak_rss_kib = peak_rss_kib.max(high_water_mark_kib(*pid).unwrap_or(0.0));
        }
    })?;
    Ok(MpcnetRun {
        step_seconds: slowest_steps(&outputs, parties, steps)?,
        last_join_to_start,
        peak_rss_kib,
    })
}

/// Starts `mpcnet serve` on loopback; returns it (killed when dropped) and its `--server` value.
fn serve(data: &Path) -> anyhow::Result<(Party, String)> {
    let mut command = Command::new(MPCNET);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .arg("--data")
        .arg(data);
    let server = spawn(command)?;
    let (_, address) = server
        .stdout
        .recv_timeout(Duration::from_secs(60))
        .context("the server printed no address")?;
    Ok((server, address))
}

/// `mpcnet create` by the first party (its home under `work`); returns the invite.
fn create(
    address: &str,
    creator: &str,
    parties: u16,
    program: &Path,
    steps: &str,
    work: &Path,
) -> anyhow::Result<String> {
    let created = Command::new(MPCNET)
        .args([
            "create",
            "--server",
            address,
            "--parties",
            &parties.to_string(),
        ])
        .args(["--party-name", creator, "--program"])
        .arg(program)
        .args(["--", steps])
        .env("MPCNET_HOME", work.join(creator))
        .output()?;
    anyhow::ensure!(
        created.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    Ok(String::from_utf8(created.stdout)?.trim().to_owned())
}

/// A started process, killed when dropped, whose stdout and stderr lines arrive, with their
/// arrival time, on channels.
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

impl Drop for Party {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    finish_watching(parties, || {})
}

/// Waits for every party (at most two minutes), calling `watch` every 20 ms; returns each stdout.
fn finish_watching(
    mut parties: Vec<Party>,
    mut watch: impl FnMut(),
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
        watch();
        std::thread::sleep(Duration::from_millis(20));
    }
    parties
        .iter_mut()
        .map(|party| {
            let status = party.child.wait()?;
            let stdout = rest_of(&party.stdout);
            anyhow::ensure!(
                status.success(),
                "a party failed ({status}): {:?}",
                rest_of(&party.stderr)
            );
            Ok(stdout.join("\n"))
        })
        .collect()
}

/// The lines still to come from an exited process's pipe: until it closes, or for 10 s at most
/// (a process it started may hold the pipe open).
fn rest_of(lines: &mpsc::Receiver<(Instant, String)>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    std::iter::from_fn(|| {
        let remaining = deadline.saturating_duration_since(Instant::now());
        lines.recv_timeout(remaining).ok().map(|(_, line)| line)
    })
    .collect()
}

/// The largest `seconds` of the parties' RESULT lines, each checked for the right answer.
fn slowest_steps(outputs: &[String], parties: u16, steps: &str) -> anyhow::Result<f64> {
    let mut slowest = 0.0f64;
    for output in outputs {
        let result =
            ResultLine::find(output).with_context(|| format!("no RESULT line in {output:?}"))?;
        workload::check("many_rounds", &[steps.to_owned()], parties, &result)
            .map_err(|wrong| anyhow::anyhow!("wrong answer: {wrong} ({output:?})"))?;
        let seconds = result
            .seconds()
            .with_context(|| format!("no seconds=NUMBER in {output:?}"))?;
        slowest = slowest.max(seconds);
    }
    Ok(slowest)
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
