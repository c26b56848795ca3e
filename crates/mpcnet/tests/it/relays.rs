//! A session with more than one relay: the lobby server's own and one `mpcnet relay` on
//! another port. The relay admits only the parties the lobby names for the session, and when
//! the relay that carries the links dies for good (the lobby server with it), they move to the
//! other and the MPC completes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The relays that carry `status`'s links (the `via` of each relayed route).
fn carrying_relays(status: &Value) -> Vec<String> {
    let links = status["run"]["links"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    links
        .iter()
        .filter(|link| link["route"]["kind"] == "relay")
        .filter_map(|link| link["route"]["via"].as_str().map(str::to_owned))
        .collect()
}

/// Polls alice's status until both her links are relayed; returns their relays.
fn wait_until_relayed(root: &std::path::Path, invite: &str) -> Vec<String> {
    let what = "alice's links both relayed";
    poll_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        what,
        || {
            let relays = carrying_relays(&status_json(&root.join("alice"), invite));
            Some(relays).filter(|relays| relays.len() == 2)
        },
    )
}

#[test]
fn links_move_to_another_relay_when_theirs_dies_for_good() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let relay = Server::start_relay(&root.path().join("relay"), &server.address);
    let invite = create_session_with(
        &server,
        root.path(),
        &example("many_rounds.py"),
        &["--relay", &relay.address],
        &["1500"],
    );
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &["--path", "relay-only"]))
        .collect();
    let running = std::thread::spawn(move || run_all(commands, Duration::from_secs(240)));
    wait_until_running(&root.path().join("alice"), &invite);
    let carrying = wait_until_relayed(root.path(), &invite);
    // Every party homes on the plan's first relay, the lobby server's, so links ride it; a
    // link may also ride the other (dials name every relay, and a party that dialed through
    // it is there too), so at least one of alice's is on the relay about to die.
    let lobby_port = format!(":{}/", server.port());
    assert!(
        carrying.iter().any(|via| via.contains(&lobby_port)),
        "none of alice's links is on the lobby server's relay ({}): {carrying:?}",
        server.address
    );
    // The fault: the relay that carries every link dies for good, lobby and all, while the
    // computation runs.
    drop(server);
    let killed_at = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !running.is_finished(),
        "the run ended before its relay was killed"
    );
    let finished = running.join().expect("the parties' runs");
    eprintln!("the run ended {:?} after the kill", killed_at.elapsed());
    assert_all_answer(&finished, "RESULT counter=6 steps=1500");
    for (name, party) in PARTIES.iter().zip(&finished) {
        assert!(
            party.stderr.contains("reconnected"),
            "{name}'s links never took a new carrier:\n{}",
            party.stderr
        );
    }
    drop(relay);
}
