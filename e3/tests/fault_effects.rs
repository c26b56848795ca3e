//! Each new fault proves its effect on a tiny lab (as root), without a candidate: a host
//! readdressed behind its NAT (the new address listed, the old gone, its router forwarding
//! from it; put back as built afterwards), a direct cut (packets to the other party's site
//! dropped and counted while the internet host still answers), and a mediator (a stand-in
//! listener on the internet host) killed and restarted. Without root the test says why and
//! passes.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use common::root;
use e3::candidate::{Listening, Mediator, MediatorHandle, Protocol, wait_until_listening};
use e3::fault::{Fault, FaultFile, FaultOutcome, SiteFacts, inject, restore};
use e3::scenario::{Link, Profile, Site};
use e3::topology::Lab;

/// A home site and a public site, one party each.
async fn lab(logs: &Path) -> Lab {
    let site = |profile| Site {
        profile,
        link: Link::default(),
    };
    common::two_party_lab(
        "fault effects",
        [site(Profile::Home), site(Profile::None)],
        logs,
    )
    .await
}

fn fault(kind: &str, site: Option<usize>, duration_s: Option<f64>, action: Option<&str>) -> Fault {
    let file = FaultFile {
        at_s: 0.0,
        site,
        kind: kind.into(),
        duration_s,
        percent: None,
        action: action.map(str::to_string),
    };
    let sites = [SiteFacts {
        nat: true,
        parties: 1,
    }; 2];
    Fault::check(&file, &sites).expect("a valid fault")
}

/// Injects one fault (at once) and returns its outcome.
async fn outcome_of(lab: &Lab, fault: &Fault, mediator: &Mediator) -> FaultOutcome {
    let outcomes = Mutex::new(Vec::new());
    let started = tokio::time::Instant::now();
    inject(
        lab,
        std::slice::from_ref(fault),
        mediator,
        started,
        &outcomes,
    )
    .await;
    let mut outcomes = outcomes.into_inner().expect("outcomes");
    assert_eq!(outcomes.len(), 1);
    let outcome = outcomes.remove(0);
    eprintln!("{}: {}", outcome.fault, outcome.evidence);
    outcome
}

fn pings(lab: &Lab, from: usize, to: Ipv4Addr) -> bool {
    lab.hosts[from]
        .namespace
        .exec("ping", &["-n", "-q", "-c", "1", "-W", "1", &to.to_string()])
        .is_ok()
}

const NO_MEDIATOR: Mediator = Mediator::None("no mediator here");

#[tokio::test]
async fn readdress_moves_the_host_and_is_put_back() {
    if !root() {
        return;
    }
    let logs = tempfile::tempdir().expect("tempdir");
    let lab = lab(logs.path()).await;
    let readdress = fault("readdress", Some(0), None, None);
    let moved = outcome_of(&lab, &readdress, &NO_MEDIATOR).await;
    assert!(moved.took_effect, "{moved:?}");
    let new = Ipv4Addr::new(10, 0, 1, 102);
    assert_eq!(lab.host_addresses(0).expect("addresses"), vec![new]);
    assert!(pings(&lab, 0, lab.hosts[1].address), "NAT after readdress");
    restore(&lab, &[readdress]).expect("restored");
    let built = lab.hosts[0].address;
    assert_eq!(lab.host_addresses(0).expect("addresses"), vec![built]);
}

#[tokio::test]
async fn direct_cut_drops_the_peer_site_but_not_the_internet_host() {
    if !root() {
        return;
    }
    let logs = tempfile::tempdir().expect("tempdir");
    let lab = lab(logs.path()).await;
    let cut = fault("direct-cut", Some(0), Some(3.0), None);
    let (peer, internet_host) = (lab.hosts[1].address, lab.internet_host.address);
    let during = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        (pings(&lab, 0, peer), pings(&lab, 0, internet_host))
    };
    let (outcome, (peer_answered, host_answered)) =
        tokio::join!(outcome_of(&lab, &cut, &NO_MEDIATOR), during);
    assert!(outcome.took_effect, "{outcome:?}");
    assert!(!peer_answered, "the peer's site is cut off");
    assert!(host_answered, "the internet host is not");
    assert!(pings(&lab, 0, peer), "the cut ends");
}

#[tokio::test]
async fn a_mediator_is_killed_and_restarted_through_its_handle() {
    if !root() {
        return;
    }
    let logs = tempfile::tempdir().expect("tempdir");
    let lab = lab(logs.path()).await;
    let handle = MediatorHandle::default();
    let mut listener = lab.internet_host.namespace.command("/usr/bin/python3");
    listener
        .args(["-m", "http.server", "8080"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let listening = Listening {
        protocol: Protocol::Tcp,
        port: 8080,
    };
    let log = logs.path().join("mediator.log");
    handle
        .start(listener, listening, &log)
        .await
        .expect("starts");
    wait_until_listening(&lab.internet_host.namespace, listening, None)
        .await
        .expect("listens");
    let mediator = Mediator::Process(handle.clone());
    let restart = fault("mediator", None, Some(1.0), Some("restart"));
    let restarted = outcome_of(&lab, &restart, &mediator).await;
    assert!(restarted.took_effect, "{restarted:?}");
    assert!(
        restarted.evidence.contains("listens on 8080/tcp"),
        "{restarted:?}"
    );
    let kill = fault("mediator", None, None, Some("kill"));
    let killed = outcome_of(&lab, &kill, &mediator).await;
    assert!(killed.took_effect && !handle.is_running(), "{killed:?}");
    let none = outcome_of(&lab, &kill, &NO_MEDIATOR).await;
    assert_eq!(none.not_applicable.as_deref(), Some("no mediator here"));
}
