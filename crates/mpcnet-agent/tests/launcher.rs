//! The MPyC launcher with a real Python and MPyC: under the bootstrap, MPyC listens on its own
//! Unix socket of the run's directory and connects to a peer's; any other listener opened
//! without a host binds 127.0.0.1 only; the same program without it binds every interface.
//! Program arguments reach `sys.argv` but no command line, and they cannot set MPyC's own
//! options.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use mpcnet_agent::launcher::{self, Launch};
use mpcnet_agent::python::ChosenPython;
use mpcnet_agent::sockets::SocketDir;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

/// On MPyC's own event loop, opens servers the way MPyC does (no host): on its own party's port
/// when it has a socket path (under the bootstrap), and on port 0; prints where they listen.
/// Under the bootstrap it also connects to party 1 the way MPyC does and says hello, if party 1
/// listens.
const PROBE: &str = r#"
import asyncio, os
from mpyc.runtime import mpc

async def main():
    own = mpc.parties[mpc.pid]
    if own.host.startswith("/"):
        server = await mpc._loop.create_server(asyncio.Protocol, port=own.port)
        print("MPYC", [sock.getsockname() for sock in server.sockets])
        server.close()
        peer = mpc.parties[1]
        if os.path.exists(peer.host):
            connection = mpc._loop.create_connection(asyncio.Protocol, peer.host, peer.port)
            transport, _ = await connection
            transport.write(b"hello from 0")
            transport.close()
    other = await mpc._loop.create_server(asyncio.Protocol, port=0)
    print("BOUND", sorted({sock.getsockname()[0] for sock in other.sockets}))
    other.close()

mpc.run(main())
"#;

/// The probe program written to a temporary directory, the Python with mpyc to run it, and
/// the sockets of the probe's run: party 0's (the probe's own) and party 1's (the test's).
struct Probe {
    python: PathBuf,
    program: PathBuf,
    sockets: SocketDir,
    _dir: tempfile::TempDir,
}

impl Probe {
    async fn new() -> Self {
        Self::with_program(PROBE).await
    }

    async fn with_program(text: &str) -> Self {
        let explicit = std::env::var_os("MPCNET_PYTHON").map(PathBuf::from);
        let python = ChosenPython::choose(explicit.as_deref())
            .expect("python3, or MPCNET_PYTHON naming a Python with mpyc")
            .path;
        launcher::check_mpyc(&python)
            .await
            .expect("a Python with mpyc (scripts/test.sh makes one)");
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("probe.py");
        std::fs::write(&program, text).expect("probe");
        Self {
            python,
            program,
            sockets: SocketDir::create().expect("socket directory"),
            _dir: dir,
        }
    }

    /// The probe as party 0 of two, with `args` as its program arguments.
    fn launch(&self, args: &[&str]) -> Launch {
        Launch {
            python: self.python.clone(),
            program: self.program.clone(),
            me: 0,
            sockets: vec![self.sockets.party(0), self.sockets.party(1)],
            args: args.iter().map(|arg| arg.to_string()).collect(),
        }
    }

    /// Runs the probe with `args` to its end, its output captured.
    async fn output(&self, args: &[&str]) -> Output {
        self.launch(args)
            .spawn_with(captured)
            .await
            .expect("probe starts")
            .wait_with_output()
            .await
            .expect("probe runs")
    }
}

fn captured(command: &mut tokio::process::Command) {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
}

/// What the probe printed after `label`.
fn printed(stdout: &[u8], label: &str) -> String {
    let stdout = String::from_utf8_lossy(stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("the probe printed no {label} line: {stdout}"))
        .to_owned()
}

fn bound_addresses(stdout: &[u8]) -> String {
    printed(stdout, "BOUND")
}

#[tokio::test]
async fn mpyc_meets_its_agent_on_the_runs_sockets_and_opens_no_port_but_loopback() {
    let probe = Probe::new().await;
    let agent = tokio::net::UnixListener::bind(probe.sockets.party(1)).expect("party 1's socket");
    let bootstrapped = probe.output(&[]).await;
    assert!(
        bootstrapped.status.success(),
        "{}",
        String::from_utf8_lossy(&bootstrapped.stderr)
    );
    let own = probe.sockets.party(0);
    assert_eq!(
        printed(&bootstrapped.stdout, "MPYC"),
        format!("['{}']", own.display())
    );
    assert_eq!(bound_addresses(&bootstrapped.stdout), "['127.0.0.1']");
    let (mut connection, _) = agent
        .accept()
        .await
        .expect("MPyC connected to party 1's socket");
    let mut hello = String::new();
    connection.read_to_string(&mut hello).await.expect("read");
    assert_eq!(hello, "hello from 0");

    let plain = tokio::process::Command::new(&probe.python)
        .arg(&probe.program)
        .output()
        .await
        .expect("probe runs");
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(
        bound_addresses(&plain.stdout).contains("0.0.0.0"),
        "without the bootstrap MPyC binds every interface"
    );
}

#[tokio::test]
async fn program_arguments_cannot_set_mpycs_own_options() {
    let probe = Probe::new().await;
    for refused in [
        &["-T", "0"][..],
        &["--thr=0"],
        &["-T0"],
        &["-P", "evil.example:7000"],
        &["--ssl"],
        &["-B", "5000"],
    ] {
        let output = probe.output(refused).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{refused:?} was accepted: {stderr}"
        );
        assert!(stderr.contains("refusing to run"), "{stderr}");
    }
    let allowed = probe.output(&["--rounds", "3", "300"]).await;
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
}

/// Prints its argv and its environment's names, then waits until the file its first program
/// argument names exists (argv: ..., that file, a marker, one more).
const SHOWS_ITS_ARGV: &str = r#"
import json, os, sys, time
from mpyc.runtime import mpc

print("ARGV", json.dumps(sys.argv), flush=True)
print("ENV", json.dumps(sorted(os.environ)), flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(sys.argv[-3]) and time.monotonic() < deadline:
    time.sleep(0.05)
"#;

/// What /proc shows every user of the machine about `pid`: its command line; and what the
/// same user sees: its environment.
fn proc_text(pid: u32, what: &str) -> String {
    let bytes = std::fs::read(Path::new("/proc").join(pid.to_string()).join(what))
        .unwrap_or_else(|e| panic!("/proc/{pid}/{what}: {e}"));
    String::from_utf8_lossy(&bytes).replace('\0', " ")
}

#[tokio::test]
async fn program_arguments_reach_sys_argv_but_no_command_line() {
    let probe = Probe::with_program(SHOWS_ITS_ARGV).await;
    let release = probe._dir.path().join("release");
    let release = release.to_str().expect("utf-8");
    let marker = format!("private-{}", std::process::id());
    let mut child = probe
        .launch(&[release, &marker, "two words"])
        .spawn_with(captured)
        .await
        .expect("probe starts");
    let pid = child.id().expect("running");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    while printed.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("the probe prints in time")
            .expect("stdout");
        match line {
            Some(line) if line.starts_with("ARGV ") || line.starts_with("ENV ") => {
                printed.push(line)
            }
            Some(_) => {}
            None => panic!("the probe ended early: {printed:?}"),
        }
    }
    let command_line = proc_text(pid, "cmdline");
    let environment = proc_text(pid, "environ");
    std::fs::write(release, "").expect("release");
    let output = child.wait_with_output().await.expect("probe ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let program = probe.program.to_str().expect("utf-8");
    let argv: Vec<String> =
        serde_json::from_str(printed[0].trim_start_matches("ARGV ")).expect("argv JSON");
    // MPyC takes its own options (-I, -P) out of sys.argv as it starts; the rest is the program's.
    let expected = [program, release, &marker, "two words"];
    assert_eq!(argv, expected);
    assert!(!command_line.contains(&marker), "{command_line}");
    assert!(!environment.contains("MPCNET_"), "{environment}");
    assert!(!printed[1].contains("MPCNET_"), "{}", printed[1]);
}
