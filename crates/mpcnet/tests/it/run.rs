//! `mpcnet run` end to end on loopback with real MPyC: three parties in three homes run each
//! example program and get its known answer, direct-only and relay-only; a stranger's key is
//! refused; missing parties and a missing MPyC are named; private arguments and mpcnet's
//! variables stay out of every process list and of MPyC's environment.

use std::time::Duration;

use crate::support::*;

/// Runs a session of three for `program`, every party with `extra` flags.
fn run_three(program: &str, public_args: &[&str], extra: &[&str]) -> Vec<Finished> {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_session(&server, root.path(), &example(program), public_args);
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, extra))
        .collect();
    run_all(commands, RUN_LIMIT)
}

#[test]
fn secret_mean_gives_its_known_answer() {
    let finished = run_three("secret_mean.py", &[], &[]);
    assert_all_answer(&finished, "RESULT sum=60 mean=20 parties=3");
    for party in &finished {
        assert_eq!(
            party.stderr.matches(": linked, ").count(),
            2,
            "{}",
            party.stderr
        );
    }
}

/// The creator names an example of the server's catalog instead of a file; every party runs it.
#[test]
fn a_session_of_a_catalog_example_gives_its_known_answer() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let created = succeed(mpcnet(
        &root.path().join("alice"),
        &[
            "create",
            "--server",
            &server.address,
            "--parties",
            "3",
            "--example",
            "many-rounds",
            "--party-name",
            "alice",
            "--",
            "100",
        ],
    ));
    let invite = created.trim();
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), invite, name, &[]))
        .collect();
    let finished = run_all(commands, RUN_LIMIT);
    assert_all_answer(&finished, "RESULT counter=6 steps=100");
    assert!(
        finished[1].stderr.contains("program many_rounds.py"),
        "{}",
        finished[1].stderr
    );
}

#[test]
fn bulk_transfer_moves_megabytes_correctly() {
    let finished = run_three("bulk_transfer.py", &["60000"], &[]);
    assert_all_answer(&finished, "correct=True");
    let moved: u64 = finished[0]
        .stderr
        .lines()
        .filter_map(|line| {
            line.split(", ")
                .find_map(|part| part.strip_suffix(" bytes sent")?.parse::<u64>().ok())
        })
        .sum();
    assert!(
        moved > 1_000_000,
        "party 0 sent only {moved} bytes:\n{}",
        finished[0].stderr
    );
}

#[test]
fn two_sessions_in_one_run_reconnect_through_the_forwards() {
    assert_all_answer(
        &run_three("two_sessions.py", &[], &[]),
        "RESULT sum=6 max=3",
    );
}

#[test]
fn direct_only_links_are_direct() {
    let finished = run_three("secret_mean.py", &[], &["--path", "direct-only"]);
    assert_all_answer(&finished, "RESULT sum=60");
    for party in &finished {
        assert!(
            party.stderr.contains("linked, direct 127.0.0.1:"),
            "{}",
            party.stderr
        );
        assert!(!party.stderr.contains("relayed"), "{}", party.stderr);
    }
}

#[test]
fn relay_only_links_go_through_the_relay() {
    let finished = run_three("secret_mean.py", &[], &["--path", "relay-only"]);
    assert_all_answer(&finished, "RESULT sum=60");
    for party in &finished {
        let summary: Vec<&str> = party
            .stderr
            .lines()
            .filter(|line| line.contains("bytes sent"))
            .collect();
        assert_eq!(summary.len(), 2, "{}", party.stderr);
        assert!(
            summary
                .iter()
                .all(|line| line.contains("relayed via https://127.0.0.1:")),
            "{summary:?}"
        );
    }
}

#[test]
fn a_party_that_never_runs_is_named_when_linking_times_out() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_session(&server, root.path(), &example("secret_mean.py"), &[]);
    succeed(mpcnet(
        &root.path().join("carol"),
        &["join", &invite, "--name", "carol"],
    ));
    let commands = ["alice", "bob"]
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &["--timeout", "4s"]))
        .collect();
    for party in run_all(commands, RUN_LIMIT) {
        assert_eq!(party.code, Some(1), "{}", party.stderr);
        assert!(
            party.stderr.contains("could not link with 1"),
            "{}",
            party.stderr
        );
        assert!(party.stderr.contains("(carol): "), "{}", party.stderr);
    }
}

#[test]
fn an_unfilled_session_times_out_naming_who_joined() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_session(&server, root.path(), &example("secret_mean.py"), &[]);
    let party = &run_all(
        vec![run_command(
            root.path(),
            &invite,
            "bob",
            &["--timeout", "2s"],
        )],
        RUN_LIMIT,
    )[0];
    assert_eq!(party.code, Some(1), "{}", party.stderr);
    assert!(
        party.stderr.contains("2 of 3 parties joined (alice, bob)"),
        "{}",
        party.stderr
    );
}

#[test]
fn a_python_without_mpyc_is_named_with_the_fix() {
    let root = tempfile::tempdir().expect("tempdir");
    let fake = root.path().join("python-without-mpyc");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'mpyc'\" >&2\nexit 1\n",
    )
    .expect("script");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let invite = "https://127.0.0.1:9/s/pqefabn2dg7nnlx5b5f26yfvpi#mpcnet1.Cxpgj341UBAwcgfQpv6bkkh_MHdmHuA23KjNtiwSk58M5VH_fyjlLvHDapeKLkDgIxYUeQjn7IlgKRSOv1oVpgGMBt4B3A5fbAMul7SFycysNNWiTehA-LDf8dMJzJdfd1qoIz8";
    let output = mpcnet(
        root.path(),
        &[
            "run",
            invite,
            "--yes",
            "--python",
            fake.to_str().expect("utf-8"),
        ],
    );
    assert_fails(&output, 1, "pip install mpyc");
    let missing = mpcnet(
        root.path(),
        &["run", invite, "--yes", "--python", "/nonexistent/python3"],
    );
    assert_fails(&missing, 2, "/nonexistent/python3");
    assert!(
        stderr(&output).contains("No module named 'mpyc'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn running_without_confirmation_needs_yes() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let program = example("secret_mean.py");
    let program = program.to_str().expect("utf-8");
    let invite = succeed(mpcnet(
        &root.path().join("alice"),
        &[
            "create",
            "--server",
            &server.address,
            "--parties",
            "2",
            "--program",
            program,
        ],
    ));
    succeed(mpcnet(
        &root.path().join("bob"),
        &["join", invite.trim(), "--name", "bob"],
    ));
    let output = mpcnet(&root.path().join("bob"), &["run", invite.trim()]);
    assert_fails(&output, 2, "pass --yes");
}

/// A stranger (a key outside the manifest) dials a running party: its connection is closed with
/// the "not a party" code before it can open a stream, and the session computes its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_connection_is_refused_and_the_session_goes_on() {
    use iroh::endpoint::{ConnectionError, Endpoint, PortmapperConfig, presets};

    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite_text = create_session(&server, root.path(), &example("many_rounds.py"), &["300"]);
    let commands: Vec<_> = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite_text, name, &[]))
        .collect();
    let runs = tokio::task::spawn_blocking(move || run_all(commands, RUN_LIMIT));

    let invite: mpcnet_proto::Invite = invite_text.parse().expect("invite");
    let lobby = mpcnet_client::LobbyClient::new(&invite.server).expect("client");
    let waited = tokio::time::Instant::now();
    let target = loop {
        let announced = lobby
            .announcements(&invite.lobby_id())
            .await
            .expect("announcements");
        if let Some(signed) = announced.first() {
            break signed
                .verify_statement(&invite.lobby_id())
                .expect("valid announcement");
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "no party announced its addresses"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let stranger = Endpoint::builder(presets::Minimal)
        .relay_mode(iroh::RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("bind address")
        .portmapper_config(PortmapperConfig::Disabled)
        .bind()
        .await
        .expect("stranger endpoint");
    let key = iroh::PublicKey::from_bytes(&target.party.to_bytes()).expect("key");
    let mut addr = iroh::EndpointAddr::new(key);
    for address in &target.addrs {
        addr = addr.with_ip_addr(*address);
    }
    let connection = stranger
        .connect(addr, mpcnet_agent::endpoint::ALPN)
        .await
        .expect("the handshake completes");
    let reason = tokio::time::timeout(Duration::from_secs(10), connection.closed())
        .await
        .expect("closed by the party");
    match reason {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code,
                mpcnet_agent::wire::CLOSE_NOT_A_PARTY.into(),
                "{close:?}"
            );
        }
        other => panic!("closed for another reason: {other}"),
    }
    assert!(
        connection.open_bi().await.is_err(),
        "a refused stranger cannot open a stream"
    );
    stranger.close().await;

    let finished = runs.await.expect("runs");
    assert_all_answer(&finished, "RESULT counter=6 steps=300");
    let refusals = finished
        .iter()
        .filter(|party| party.stderr.contains("not a party of this session"))
        .count();
    assert_eq!(refusals, 1, "exactly the dialled party logs the refusal");
}

#[test]
fn the_demo_runs_a_session_of_separate_processes() {
    let root = tempfile::tempdir().expect("tempdir");
    let finished = &run_all(
        vec![mpcnet_command(root.path(), &["demo", "--parties", "4"])],
        RUN_LIMIT,
    )[0];
    assert_eq!(
        finished.code,
        Some(0),
        "{}\n{}",
        finished.stdout,
        finished.stderr
    );
    assert_eq!(
        finished
            .stdout
            .matches("RESULT sum=100 mean=25 parties=4")
            .count(),
        4,
        "{}",
        finished.stdout
    );
    assert_eq!(
        finished.stdout.matches(" bytes sent").count(),
        4 * 3,
        "a line per link: {}",
        finished.stdout
    );
}

#[test]
fn status_shows_each_link_while_the_session_runs() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_session(&server, root.path(), &example("many_rounds.py"), &["1000"]);
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &[]))
        .collect();
    let runs = std::thread::spawn(move || run_all(commands, RUN_LIMIT));
    let running = wait_until_running(&root.path().join("bob"), &invite);
    let links = running["run"]["links"].as_array().expect("links");
    assert_eq!(links.len(), 2, "{running}");
    for link in links {
        assert_eq!(link["state"], "connected", "{link}");
        assert!(
            link["route"]["kind"] == "direct" || link["route"]["kind"] == "relay",
            "{link}"
        );
        assert!(link["rtt_ms"].as_f64().is_some(), "{link}");
    }
    let bob = root.path().join("bob");
    let shown = succeed(mpcnet(&bob, &["status", &invite]));
    assert!(shown.contains("run      running"), "{shown}");
    assert_all_answer(&runs.join().expect("runs"), "RESULT counter=6 steps=1000");
    assert_eq!(status_json(&bob, &invite)["run"]["state"], "finished");
}

/// Runs a long session and sends `signal` to carol's `mpcnet run` once it runs; returns
/// (the other two, carol).
fn signal_carol_mid_run(signal: &str) -> (Vec<Finished>, Finished) {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_session(
        &server,
        root.path(),
        &example("many_rounds.py"),
        &["100000"],
    );
    let commands: Vec<_> = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &[]))
        .collect();
    let runs = std::thread::spawn(move || run_all(commands, RUN_LIMIT));
    let started = std::time::Instant::now();
    let running = wait_until_running(&root.path().join("carol"), &invite);
    let pid = running["run"]["pid"].as_u64().expect("the run's pid");
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let mut finished = runs.join().expect("runs");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the runs did not stop promptly"
    );
    let carol = finished.pop().expect("carol");
    (finished, carol)
}

/// Ctrl-C on one party stops its run and its MPyC, and it tells the others, who stop naming it.
#[test]
fn an_interrupted_party_stops_and_the_others_name_it() {
    let (others, carol) = signal_carol_mid_run("-INT");
    assert_fails_with(&carol, "interrupted");
    for party in &others {
        assert_eq!(party.code, Some(1), "{}", party.stderr);
        assert!(
            blamed_party(&party.stderr).is_some_and(|p| p.ends_with(" (carol)")),
            "{}",
            party.stderr
        );
    }
}

/// A party killed outright says nothing, but its relay connection closes: the others, finding
/// it unreachable, hear from the lobby that it is gone and stop within seconds, naming it,
/// instead of waiting out their patience (two minutes) or hanging like MPyC would.
#[test]
fn a_party_killed_outright_is_named_as_lost() {
    let (others, carol) = signal_carol_mid_run("-KILL");
    assert_eq!(carol.code, None, "killed by a signal");
    // The first to notice names carol as lost and tells the other, who may stop on that report.
    for party in &others {
        assert_eq!(party.code, Some(1), "{}", party.stderr);
        let named = party.stderr.contains("(carol) while MPyC was running")
            || blamed_party(&party.stderr).is_some_and(|p| p.ends_with(" (carol)"));
        assert!(named, "{}", party.stderr);
    }
    let noticed = others
        .iter()
        .filter(|party| party.stderr.contains("while MPyC was running: it is gone"))
        .count();
    assert!(noticed >= 1, "nobody heard that carol was gone: {others:?}");
    // Before that, progress said so: unreachable, and how long the run would wait.
    assert!(
        others.iter().any(|party| party
            .stderr
            .lines()
            .any(|line| line.contains("(carol): unreachable for ")
                && line.contains("waiting for any path (direct or relayed) for up to 120 s"))),
        "{others:?}"
    );
}

/// Party 1's program fails after connecting: its run exits with the program's code, and the
/// others stop naming it instead of waiting for its messages forever, as MPyC alone would.
#[test]
fn a_failing_party_stops_the_others() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let program = root.path().join("fails_at_one.py");
    std::fs::write(&program, FAILS_AT_PARTY_ONE).expect("program");
    let invite = create_session(&server, root.path(), &program, &[]);
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &[]))
        .collect();
    let started = std::time::Instant::now();
    let finished = run_all(commands, RUN_LIMIT);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the parties did not stop promptly"
    );
    let failed: Vec<&Finished> = finished
        .iter()
        .filter(|party| party.code == Some(3))
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "exactly party 1 exits with its program's code: {finished:?}"
    );
    let others: Vec<&Finished> = finished
        .iter()
        .filter(|party| party.code != Some(3))
        .collect();
    // Each other party hears a failure report: from party 1 itself, or from the party that
    // stopped because of it, whichever arrives first; none waits for a link to time out.
    for party in others {
        assert_eq!(party.code, Some(1), "{}", party.stderr);
        assert!(
            blamed_party(&party.stderr).is_some_and(|p| p.starts_with("party 1 (")),
            "{}",
            party.stderr
        );
        assert!(!party.stderr.contains("lost party"), "{}", party.stderr);
    }
    // Every party told the lobby how its run ended, and `status` shows it, signed by each.
    let status = status_json(&root.path().join("alice"), &invite);
    let runs: Vec<&serde_json::Value> = status["parties"]
        .as_array()
        .expect("parties")
        .iter()
        .map(|party| &party["run"])
        .collect();
    assert_eq!(runs[1]["kind"], "finished", "{status}");
    assert_eq!(runs[1]["exit_code"], 3, "{status}");
    for other in [runs[0], runs[2]] {
        assert_eq!(other["kind"], "failed", "{status}");
        assert!(
            other["reason"]
                .as_str()
                .is_some_and(|r| blamed_party(r).is_some_and(|p| p.starts_with("party 1 ("))),
            "{status}"
        );
    }
    let shown = succeed(mpcnet(&root.path().join("bob"), &["status", &invite]));
    assert!(shown.contains("run finished with exit code 3"), "{shown}");
}

/// Once connected, prints its last two arguments (public: a file; private: a marker) and its
/// environment's names, then waits until that file exists.
const SHOWS_ITS_ARGS: &str = r#"import json, os, sys, time
from mpyc.runtime import mpc


async def main():
    await mpc.start()
    print("ARGS", json.dumps(sys.argv[-2:]), flush=True)
    print("ENV", json.dumps(sorted(os.environ)), flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[-2]) and time.monotonic() < deadline:
        time.sleep(0.05)
    await mpc.shutdown()


mpc.run(main())
"#;

/// The processes whose parent is `pid`.
fn children_of(pid: u64) -> Vec<u64> {
    let entries = std::fs::read_dir("/proc").expect("/proc");
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
            let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            after_comm.split_whitespace().nth(1) == Some(pid.to_string().as_str())
        })
        .collect()
}

fn proc_text(pid: u64, what: &str) -> String {
    let bytes = std::fs::read(format!("/proc/{pid}/{what}")).unwrap_or_default();
    String::from_utf8_lossy(&bytes).replace('\0', " ")
}

/// The pid of `run_pid`'s MPyC, once it has started under the bootstrap.
fn mpyc_of(run_pid: u64) -> u64 {
    let what = format!("MPyC under {run_pid}");
    poll_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        &what,
        || {
            children_of(run_pid)
                .into_iter()
                .find(|child| proc_text(*child, "cmdline").contains("mpcnet's MPyC bootstrap"))
        },
    )
}

/// Each party's private argument comes from a file and reaches its program's `sys.argv`, but
/// neither `mpcnet run`'s command line nor python's shows it; MPyC's environment holds no
/// `MPCNET_*` variable, although the invite came in `MPCNET_INVITE`.
#[test]
fn private_arguments_and_mpcnet_variables_stay_out_of_sight() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let program = root.path().join("shows_its_args.py");
    std::fs::write(&program, SHOWS_ITS_ARGS).expect("program");
    let release = root.path().join("release");
    let release = release.to_str().expect("utf-8").to_owned();
    let invite = create_session(&server, root.path(), &program, &[&release]);
    let markers: Vec<String> = PARTIES
        .iter()
        .map(|name| format!("private-{name}-{}", std::process::id()))
        .collect();
    let commands = PARTIES
        .iter()
        .zip(&markers)
        .map(|(name, marker)| {
            let file = root.path().join(format!("{name}.args"));
            std::fs::write(&file, format!("{marker}\n")).expect("args file");
            let file = file.to_str().expect("utf-8");
            let mut command = mpcnet_command(
                &root.path().join(name),
                &["run", "--yes", "--name", name, "--bind", "127.0.0.1:0"],
            );
            command
                .args(["--timeout", "60s", "--private-args-file", file])
                .env("MPCNET_INVITE", &invite);
            command
        })
        .collect();
    let runs = std::thread::spawn(move || run_all(commands, RUN_LIMIT));
    for (name, marker) in PARTIES.iter().zip(&markers) {
        let running = wait_until_running(&root.path().join(name), &invite);
        let run_pid = running["run"]["pid"].as_u64().expect("the run's pid");
        let mpyc = mpyc_of(run_pid);
        for pid in [run_pid, mpyc] {
            let command_line = proc_text(pid, "cmdline");
            assert!(!command_line.contains(marker.as_str()), "{command_line}");
        }
        let environment = proc_text(mpyc, "environ");
        assert!(!environment.contains("MPCNET_"), "{environment}");
        assert!(proc_text(run_pid, "environ").contains("MPCNET_INVITE="));
    }
    std::fs::write(&release, "").expect("release");
    let finished = runs.join().expect("runs");
    for ((name, party), marker) in PARTIES.iter().zip(&finished).zip(&markers) {
        assert_eq!(party.code, Some(0), "{name}: {}", party.stderr);
        let args = serde_json::json!([release, marker]).to_string();
        let shown = party
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix("ARGS "))
            .unwrap_or_else(|| panic!("{name} printed no ARGS: {}", party.stdout));
        let shown: serde_json::Value = serde_json::from_str(shown).expect("ARGS JSON");
        assert_eq!(shown.to_string(), args, "{name}");
        let environment = party.stdout.lines().find(|line| line.starts_with("ENV "));
        let environment = environment.unwrap_or_else(|| panic!("{name} printed no ENV"));
        assert!(!environment.contains("MPCNET_"), "{name}: {environment}");
    }
}

#[test]
fn a_relay_restart_under_relayed_links_loses_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("server");
    let server = Server::start(&data, "127.0.0.1:0");
    let listen = format!("127.0.0.1:{}", server.port());
    let invite = create_session(&server, root.path(), &example("many_rounds.py"), &["1500"]);
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &["--path", "relay-only"]))
        .collect();
    let running = std::thread::spawn(move || run_all(commands, Duration::from_secs(240)));
    wait_until_running(&root.path().join("alice"), &invite);
    std::thread::sleep(Duration::from_secs(2));
    // The fault: the only relay of links that may use nothing else is gone for 3 s, while the
    // computation runs (checked on both sides of the outage).
    drop(server);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !running.is_finished(),
        "the run ended before the relay came back"
    );
    let restarted = Server::start(&data, &listen);
    let finished = running.join().expect("the parties' runs");
    assert_all_answer(&finished, "RESULT counter=6 steps=1500");
    drop(restarted);
}
