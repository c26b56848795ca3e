//! `mpcnet demo`: a whole session on this machine. An embedded lobby and relay on loopback, N
//! parties as separate `mpcnet run` processes with separate identities, one of the project's
//! example programs; prints each party's result and each link's path.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mpcnet_agent::launcher;
use mpcnet_agent::python::{ChosenPython, PythonOrigin};
use mpcnet_client::Home;
use mpcnet_client::session::{self, SessionPlan};
use mpcnet_server::{Limits, ServeConfig};

use crate::cli::{DemoArgs, DemoProgram};

/// Party names, in index order.
const NAMES: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

impl DemoProgram {
    /// The program, from the catalog built into the binary.
    fn example(self) -> &'static mpcnet_server::catalog::Example {
        let value = clap::ValueEnum::to_possible_value(&self);
        value
            .and_then(|value| mpcnet_server::catalog::find(value.get_name()))
            .expect("every demo program is in the catalog")
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let python = python_with_mpyc(args.python.as_deref()).await?;
    // A fresh directory with a random name, only ours (0700): homes, server and program live here.
    let work = tempfile::Builder::new()
        .prefix("mpcnet-demo-")
        .tempdir()
        .context("making the demo's directory")?;
    run_in(work.path(), &python, &args).await
}

async fn run_in(work: &Path, python: &Path, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let server = mpcnet_server::spawn(ServeConfig {
        listen: "127.0.0.1:0".parse()?,
        data_dir: work.join("server"),
        certificate_files: None,
        public_names: Vec::new(),
        metrics_listen: None,
        lobby_ttl: Duration::from_secs(3600),
        address_discovery: true,
        limits: Limits {
            max_program_bytes: 1 << 20,
            max_lobbies: 1,
            max_lobbies_per_creator: 1,
            connections: mpcnet_server::ConnectionLimits {
                total: 256,
                per_ip: 64,
                new_per_ip: mpcnet_server::Limits::default().connections.new_per_ip,
            },
            ..Limits::default()
        },
    })
    .await
    .context("starting the embedded lobby and relay")?;
    eprintln!("demo: lobby and relay at {}", server.address);

    let example = args.program.example();
    let file_name = example.file_name;
    // A bundle is written packed, as `mpcnet pack` would (its name less `.tar` is its folder's).
    let program = match example.main {
        Some(_) => work.join(format!("{file_name}.tar")),
        None => work.join(file_name),
    };
    std::fs::write(&program, &example.program)?;
    let names: Vec<String> = (0..usize::from(args.parties))
        .map(|index| {
            NAMES
                .get(index)
                .map_or_else(|| format!("party{index}"), |name| name.to_string())
        })
        .collect();
    let creator_home = Home::open(work.join(&names[0]))?;
    let (creator, _) = creator_home.identity()?;
    let plan = SessionPlan {
        server: server.address.clone(),
        parties: args.parties,
        program: program.clone(),
        main: example.main.as_ref().map(ToString::to_string),
        name: Some(format!("mpcnet demo: {file_name}")),
        party_name: names[0].clone(),
        args: Vec::new(),
        extra_relays: Vec::new(),
        seats: Vec::new(),
        require_identity: None,
        prove: None,
        roles: example.roles.clone(),
    };
    let invite = session::create(&creator, &plan)
        .await
        .context("creating the demo session")?;
    eprintln!(
        "demo: {} parties run {file_name}, each as its own `mpcnet run` process",
        args.parties
    );

    let started = Instant::now();
    let path_value = clap::ValueEnum::to_possible_value(&args.path).context("path policy name")?;
    let path_name = path_value.get_name();
    let executable = std::env::current_exe().context("locating the mpcnet executable")?;
    let mut children = Vec::new();
    for name in &names {
        let child = tokio::process::Command::new(&executable)
            .args([
                "run",
                "--yes",
                "--name",
                name,
                "--bind",
                "127.0.0.1:0",
                "--path",
            ])
            .arg(path_name)
            .arg("--python")
            .arg(python)
            .env("MPCNET_HOME", work.join(name))
            .env("MPCNET_INVITE", invite.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a party")?;
        children.push((name, child));
    }
    let mut failed = false;
    for (name, child) in children {
        let output = child.wait_with_output().await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let result = stdout
            .lines()
            .find(|line| line.starts_with("RESULT"))
            .unwrap_or("(no result)");
        println!("{name:>6}: {result}");
        for line in stderr.lines().filter(|line| line.contains("bytes sent")) {
            println!("        {}", line.trim_start_matches("mpcnet: "));
        }
        if !output.status.success() {
            failed = true;
            eprintln!(
                "demo: {name} failed ({}); its log:\n{stderr}",
                output.status
            );
        }
    }
    println!(
        "demo: {} parties finished in {:.1} s",
        args.parties,
        started.elapsed().as_secs_f64()
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A Python that imports mpyc: the one `ChosenPython` picks (named, the installed environment's,
/// python3 on PATH), else, for a source build whose python3 lacks mpyc, a venv in the user's
/// cache directory, made here with `pip install mpyc`. Says which one it uses.
async fn python_with_mpyc(named: Option<&Path>) -> anyhow::Result<PathBuf> {
    let chosen = ChosenPython::choose(named);
    if let Ok(python) = &chosen {
        match launcher::check_mpyc(&python.path).await {
            Ok(version) => {
                eprintln!("demo: Python {python}, MPyC {version}");
                return Ok(python.path.clone());
            }
            Err(error) if python.origin != PythonOrigin::SearchPath => return Err(error.into()),
            Err(_) => {}
        }
    }
    let venv = cache_dir()?.join("venv");
    let venv_python = venv.join("bin/python");
    if let Ok(version) = launcher::check_mpyc(&venv_python).await {
        eprintln!(
            "demo: Python {} (the demo's venv), MPyC {version}",
            venv_python.display()
        );
        return Ok(venv_python);
    }
    let system_python = chosen.context("the demo needs python3 to make a venv with mpyc")?;
    eprintln!(
        "demo: no Python with mpyc found; making one in {} ...",
        venv.display()
    );
    step(&system_python.path, &["-m", "venv"], &venv).await?;
    eprintln!("demo: pip install mpyc ...");
    step(
        &venv_python,
        &[
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "mpyc",
        ],
        Path::new(""),
    )
    .await?;
    let version = launcher::check_mpyc(&venv_python).await?;
    eprintln!(
        "demo: Python {} (the demo's venv, made now), MPyC {version}",
        venv_python.display()
    );
    Ok(venv_python)
}

/// Runs `program args [path]` with its output shown, failing unless it succeeds.
async fn step(program: &Path, args: &[&str], path: &Path) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    if !path.as_os_str().is_empty() {
        command.arg(path);
    }
    let status = command
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .await?;
    anyhow::ensure!(
        status.success(),
        "{} {} failed ({status})",
        program.display(),
        args.join(" ")
    );
    Ok(())
}

/// `$XDG_CACHE_HOME/mpcnet`, else `~/.cache/mpcnet`.
fn cache_dir() -> anyhow::Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(cache) = non_empty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(cache).join("mpcnet"));
    }
    let home = non_empty("HOME").context("no HOME to keep the demo's venv in")?;
    Ok(PathBuf::from(home).join(".cache/mpcnet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_program_is_in_the_catalog() {
        for program in <DemoProgram as clap::ValueEnum>::value_variants() {
            let example = program.example();
            let bundle = example.main.is_some();
            assert!(
                bundle || example.file_name.ends_with(".py"),
                "{}",
                example.file_name
            );
            assert!(bundle || String::from_utf8_lossy(&example.program).contains("mpc.run"));
        }
    }
}
