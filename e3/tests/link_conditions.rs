//! Link conditions as E3 builds them, measured (as root): one-way delay by the NFQUEUE delay
//! line, rate by tbf, loss by nftables, each on one site's uplink between two public sites.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::root;
use e3::scenario::{Link, Profile, Site};
use e3::topology::{Lab, parse_ping_average};

/// Two public sites, one party each; the second site's uplink has `link`.
async fn lab(link: Link, logs: &Path) -> Lab {
    let site = |link| Site {
        profile: Profile::None,
        link,
    };
    common::two_party_lab("conditions", [site(Link::default()), site(link)], logs).await
}

/// `ping` from party 0 to party 1 (user-space timestamps, so the inbound delay counts).
fn ping(lab: &Lab, count: u32, interval: &str) -> String {
    let target = lab.hosts[1].address.to_string();
    let count = count.to_string();
    let args = [
        "-U", "-n", "-q", "-c", &count, "-i", interval, "-W", "1", &target,
    ];
    // ping exits 1 when replies are missing; its summary is still what the tests read.
    lab.hosts[0]
        .namespace
        .exec("ping", &args)
        .unwrap_or_else(|error| error.to_string())
}

fn average_rtt_ms(ping: &str) -> f64 {
    parse_ping_average(ping).unwrap_or_else(|| panic!("no RTT in {ping}"))
}

/// TCP throughput from party 0 to party 1, Mbit/s, by iperf3.
async fn throughput_mbit(lab: &Lab) -> f64 {
    let server = lab.hosts[1].address.to_string();
    let _listening = lab.hosts[1]
        .namespace
        .command("iperf3")
        .args(["-s", "-1", "-B", &server])
        .stdout(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    // Until the server listens, iperf3 reports "connection refused" in its JSON.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let report = lab.hosts[0]
            .namespace
            .exec("iperf3", &["-c", &server, "-t", "2", "-J"])
            .unwrap_or_else(|error| error.to_string());
        let rate = serde_json::from_str::<serde_json::Value>(&report)
            .ok()
            .and_then(|json| json["end"]["sum_received"]["bits_per_second"].as_f64());
        match rate {
            Some(rate) => return rate / 1e6,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None => panic!("iperf3 measured nothing: {report}"),
        }
    }
}

#[tokio::test]
async fn the_delay_line_delays_both_ways_and_keeps_throughput() {
    if !root() {
        return;
    }
    let logs = tempfile::tempdir().expect("tempdir");
    // 20 ms each way on one uplink: 40 ms round trip.
    let far = lab(
        Link {
            delay_ms: 20.0,
            ..Link::default()
        },
        logs.path(),
    )
    .await;
    let rtt = average_rtt_ms(&ping(&far, 10, "0.05"));
    assert!(
        (40.0..46.0).contains(&rtt),
        "{rtt} ms through a 2 x 20 ms delay line"
    );
    drop(far);

    let near = lab(
        Link {
            delay_ms: 5.0,
            ..Link::default()
        },
        logs.path(),
    )
    .await;
    let mbit = throughput_mbit(&near).await;
    assert!(mbit > 50.0, "only {mbit} Mbit/s through a 5 ms delay line");
    let rtt = average_rtt_ms(&ping(&near, 10, "0.05"));
    assert!((10.0..14.0).contains(&rtt), "{rtt} ms after the transfer");
}

#[tokio::test]
async fn rate_and_loss_take_effect() {
    if !root() {
        return;
    }
    let logs = tempfile::tempdir().expect("tempdir");
    // 20 % loss each way on one uplink: a round trip survives with 0.8 x 0.8 = 64 %.
    let lossy = lab(
        Link {
            loss_percent: 20.0,
            ..Link::default()
        },
        logs.path(),
    )
    .await;
    let ping = ping(&lossy, 300, "0.002");
    let loss: f64 = ping
        .split(", ")
        .find_map(|part| part.strip_suffix("% packet loss"))
        .and_then(|percent| percent.parse().ok())
        .unwrap_or_else(|| panic!("no loss figure in {ping}"));
    assert!(
        (22.0..=50.0).contains(&loss),
        "{loss} % lost for an expected 36 %"
    );
    drop(lossy);

    let slow = lab(
        Link {
            rate_mbit: Some(20.0),
            ..Link::default()
        },
        logs.path(),
    )
    .await;
    let mbit = throughput_mbit(&slow).await;
    assert!(
        (14.0..=21.0).contains(&mbit),
        "{mbit} Mbit/s through a 20 Mbit/s uplink"
    );
}
