//! E3 end to end, as root: the smoke scenario gives the right answers over plain IP and mpcnet
//! with the predicted paths; a finished, an interrupted and a crashed run leave no namespace,
//! veth, nftables table or process behind.
//!
//! Needs root, `ip`, `nft`, `iptables`, `conntrack`, `ping`, the `mpcnet` binary built beside
//! `e3` (`cargo test --workspace` builds it) and a Python with mpyc in MPCNET_PYTHON. Without
//! root the tests print why and pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e3::netns;
use e3::record::{PathKind, read_records};

mod common;

use common::{E3, root};

/// One test at a time: every `e3 run` removes dead runs' namespaces, which would race with
/// the leftover test's fake one.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What of the root namespace E3 must never change: its links and its nftables ruleset.
fn root_namespace_state() -> (String, String) {
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let ruleset = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft");
    (
        String::from_utf8_lossy(&links.stdout)
            .lines()
            .map(|line| line.split(':').nth(1).unwrap_or("").trim().to_string())
            .collect::<Vec<_>>()
            .join(","),
        String::from_utf8_lossy(&ruleset.stdout).into_owned(),
    )
}

/// The namespaces that E3 process `pid` made and that still exist.
fn namespaces_of(pid: u32) -> Vec<String> {
    netns::existing()
        .expect("listing namespaces")
        .into_iter()
        .filter(|(_, owner)| *owner == pid)
        .map(|(name, _)| name)
        .collect()
}

/// `e3 run scenarios/smoke.toml` with its results in `out`.
fn smoke_run(out: &Path) -> Command {
    let mpcnet = Path::new(E3).with_file_name("mpcnet");
    assert!(
        mpcnet.is_file(),
        "{} is missing: build it with `cargo build -p mpcnet` (cargo test --workspace does)",
        mpcnet.display()
    );
    let mut command = Command::new(E3);
    command
        .current_dir(repository())
        .args(["run", "scenarios/smoke.toml", "--out"])
        .arg(out)
        .stdin(Stdio::null());
    command
}

#[test]
fn smoke_scenario_answers_right_and_leaves_nothing_behind() {
    if !root() {
        return;
    }
    let _turn = one_at_a_time();
    let before = root_namespace_state();
    let (leftover, mut stray) = fake_leftover();
    let out = tempfile::tempdir().expect("tempdir");
    let child = smoke_run(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("e3 run");
    let pid = child.id();
    let output = child.wait_with_output().expect("e3 run finishes");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "e3 run failed: {stderr}");
    // The run began by clearing what a crashed run had left.
    assert!(stderr.contains(&format!("removed {leftover}")), "{stderr}");
    let stray_status = stray.wait().expect("the stray process ends");
    assert!(!stray_status.success(), "the stray process was not killed");

    let text = std::fs::read_to_string(out.path().join("records.jsonl")).expect("records");
    let records = read_records(&text).expect("records parse");
    let candidates: Vec<&str> = records.iter().map(|r| r.candidate.as_str()).collect();
    assert_eq!(candidates, ["plain", "mpcnet"]);
    for record in &records {
        assert!(record.success, "{}: {:?}", record.candidate, record.errors);
        assert_eq!(record.parties, 3);
        assert!(record.mpc_seconds.is_some_and(|s| s > 0.0), "{record:?}");
        let setup = record.setup_seconds.expect("setup time");
        assert!(setup > 0.0 && setup < record.wall_seconds, "{record:?}");
        assert!(
            record
                .wire_bytes
                .iter()
                .all(|w| w.sent > 0 && w.received > 0),
            "{record:?}"
        );
        for pair in &record.paths {
            let name = format!("{} {}-{}", record.candidate, pair.a, pair.b);
            assert_eq!(Some(pair.path), pair.expected, "{name}");
            // The delay line on the symmetric site's uplink: 5 ms each way.
            let configured = if pair.b == 2 { 10.0 } else { 0.0 };
            assert_eq!(pair.configured_rtt_ms, configured, "{name}");
            let measured = pair.measured_rtt_ms.expect("RTT measured");
            assert!(
                measured >= configured && measured < configured + 5.0,
                "{name}: measured {measured} ms for {configured} ms"
            );
        }
    }
    // Two parties share a home LAN (direct); the third sits behind a symmetric NAT, which a
    // port-restricted home NAT cannot punch through: mpcnet relays those two pairs.
    let mpcnet_paths: Vec<PathKind> = records[1].paths.iter().map(|pair| pair.path).collect();
    assert_eq!(
        mpcnet_paths,
        [PathKind::Direct, PathKind::Relay, PathKind::Relay]
    );
    for file in ["report.md", "report.html", "time-lan-symmetric.svg"] {
        assert!(out.path().join(file).is_file(), "{file} missing");
    }

    assert_eq!(namespaces_of(pid), Vec::<String>::new());
    assert_eq!(root_namespace_state(), before, "the root namespace changed");
}

#[test]
fn an_interrupted_run_tears_its_network_down() {
    if !root() {
        return;
    }
    let _turn = one_at_a_time();
    let before = root_namespace_state();
    let out = tempfile::tempdir().expect("tempdir");
    let mut child = smoke_run(out.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("e3 run");
    let pid = child.id();
    // Interrupt once the network is up and a party runs in it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !namespaces_of(pid).iter().any(|name| name.ends_with("-h2"))
        || party_processes(pid).is_empty()
    {
        assert!(Instant::now() < deadline, "the network never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let inside = party_processes(pid);
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("e3 exits");
    assert!(
        !status.success(),
        "an interrupted run must not report success"
    );
    assert_eq!(namespaces_of(pid), Vec::<String>::new());
    for process in inside {
        assert!(!alive(&process), "process {process} survived");
    }
    assert_eq!(root_namespace_state(), before, "the root namespace changed");
}

/// Processes running in the namespaces of E3 process `pid`.
fn party_processes(pid: u32) -> Vec<String> {
    namespaces_of(pid)
        .iter()
        .flat_map(|name| {
            let out = Command::new("ip")
                .args(["netns", "pids", name])
                .output()
                .expect("ip");
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn leftovers_of_a_dead_run_are_removed() {
    if !root() {
        return;
    }
    let _turn = one_at_a_time();
    let (name, mut stray) = fake_leftover();

    let output = Command::new(E3)
        .arg("cleanup")
        .output()
        .expect("e3 cleanup");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains(&name));
    assert!(
        !netns::existing()
            .expect("namespaces")
            .iter()
            .any(|(found, _)| *found == name)
    );
    let stray_status = stray.wait().expect("the stray process ends");
    assert!(!stray_status.success(), "the stray process was not killed");
}

/// A namespace as a crashed E3 run leaves it (its owner pid gone), with a process inside.
fn fake_leftover() -> (String, std::process::Child) {
    // A pid that no longer runs stands for the crashed E3 process.
    let mut gone = Command::new("true").spawn().expect("true");
    let dead_pid = gone.id();
    gone.wait().expect("true exits");
    let name = format!("{}{dead_pid}-h0", netns::PREFIX);
    let status = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("ip");
    assert!(status.success());
    let stray = Command::new("ip")
        .args(["netns", "exec", &name, "sleep", "60"])
        .spawn()
        .expect("a process inside");
    let deadline = Instant::now() + Duration::from_secs(5);
    while party_processes(dead_pid).is_empty() {
        assert!(Instant::now() < deadline, "the stray process never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    (name, stray)
}

/// Whether a process still runs: not gone and not a zombie waiting to be reaped.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}
