//! The MPyC launcher with a real Python and MPyC: under the bootstrap, a listener MPyC opens
//! without a host binds 127.0.0.1 only; the same program without it binds every interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use mpcnet_agent::launcher::{self, Launch};

/// Opens a server the way MPyC does (no host) on MPyC's own event loop and prints its addresses.
const PROBE: &str = r#"
import asyncio
from mpyc.runtime import mpc

async def main():
    server = await mpc._loop.create_server(asyncio.Protocol, port=0)
    print("BOUND", sorted({sock.getsockname()[0] for sock in server.sockets}))
    server.close()

mpc.run(main())
"#;

/// The probe program written to a temporary directory, and the Python with mpyc to run it.
struct Probe {
    python: PathBuf,
    program: PathBuf,
    _dir: tempfile::TempDir,
}

impl Probe {
    async fn new() -> Self {
        let explicit = std::env::var_os("MPCNET_PYTHON").map(PathBuf::from);
        let python = launcher::find_python(explicit.as_deref())
            .expect("python3, or MPCNET_PYTHON naming a Python with mpyc");
        launcher::check_mpyc(&python)
            .await
            .expect("a Python with mpyc (scripts/test.sh makes one)");
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("probe.py");
        std::fs::write(&program, PROBE).expect("probe");
        Self {
            python,
            program,
            _dir: dir,
        }
    }

    /// The probe as party 0 of one, with `args` as its program arguments.
    fn launch(&self, args: &[&str]) -> Launch {
        Launch {
            python: self.python.clone(),
            program: self.program.clone(),
            me: 0,
            addresses: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            args: args.iter().map(|arg| arg.to_string()).collect(),
        }
    }
}

fn bound_addresses(stdout: &[u8]) -> String {
    let stdout = String::from_utf8_lossy(stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("BOUND "))
        .unwrap_or_else(|| panic!("the probe printed no BOUND line: {stdout}"))
        .to_owned()
}

#[tokio::test]
async fn mpyc_listens_on_loopback_only_under_the_bootstrap() {
    let probe = Probe::new().await;
    let bootstrapped = probe
        .launch(&[])
        .command()
        .output()
        .await
        .expect("probe runs");
    assert!(
        bootstrapped.status.success(),
        "{}",
        String::from_utf8_lossy(&bootstrapped.stderr)
    );
    assert_eq!(bound_addresses(&bootstrapped.stdout), "['127.0.0.1']");

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
        let output = probe
            .launch(refused)
            .command()
            .output()
            .await
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{refused:?} was accepted: {stderr}"
        );
        assert!(stderr.contains("refusing to run"), "{stderr}");
    }
    let allowed = probe
        .launch(&["--rounds", "3", "300"])
        .command()
        .output()
        .await
        .expect("runs");
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
}
