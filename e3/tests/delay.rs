//! End-to-end test of the userspace delay line (`e3 delay`) between two network namespaces.
//!
//! Needs root (network namespaces, iptables, NFQUEUE) plus `ip`, `iptables`, iputils `ping` and
//! `iperf3`; without root it prints a note and passes. Namespace `a` queues both directions of
//! its veth to NFQUEUE 0 and runs the delay line, so a round trip from `a` crosses it twice.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The E3 binary under test.
const E3: &str = env!("CARGO_BIN_EXE_e3");

/// Whether this process runs with effective uid 0.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            Some(line.split_whitespace().nth(2)? == "0")
        })
        .unwrap_or(false)
}

/// Two namespaces joined by a veth; both are deleted on drop, also when the test panics.
struct Pair {
    a: String,
    b: String,
    addr_b: String,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `program args`, bounded by `limit`; returns stdout, or a description of the failure.
async fn try_run(program: &str, args: &[&str], limit: Duration) -> Result<String, String> {
    let what = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(limit, output).await {
        Err(_) => Err(format!("`{what}` did not finish within {limit:?}")),
        Ok(Err(err)) => Err(format!("cannot run `{what}`: {err}")),
        Ok(Ok(out)) if !out.status.success() => Err(format!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Ok(out)) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
    }
}

/// Like [`try_run`], but panics on failure.
async fn run(program: &str, args: &[&str], limit: Duration) -> String {
    try_run(program, args, limit)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

/// Runs `args` inside namespace `ns`, bounded by `limit`, panicking on failure.
async fn ns_run(ns: &str, args: &[&str], limit: Duration) -> String {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run("ip", &full, limit).await
}

/// Creates the namespaces, the veth (10.254.x.1 in `a`, .2 in `b`) and the NFQUEUE rules in `a`.
async fn setup() -> Pair {
    let pid = std::process::id();
    let x = pid % 250 + 1;
    let pair = Pair {
        a: format!("e3test-delay-{pid}-a"),
        b: format!("e3test-delay-{pid}-b"),
        addr_b: format!("10.254.{x}.2"),
    };
    let t = Duration::from_secs(10);
    for ns in [&pair.a, &pair.b] {
        run("ip", &["netns", "add", ns], t).await;
        run("ip", &["-n", ns, "link", "set", "lo", "up"], t).await;
    }
    let addr_a = format!("10.254.{x}.1/24");
    let addr_b = format!("{}/24", pair.addr_b);
    #[rustfmt::skip]
    let commands: [&[&str]; 5] = [
        &["-n", &pair.a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", &pair.b],
        &["-n", &pair.a, "addr", "add", &addr_a, "dev", "veth-a"],
        &["-n", &pair.b, "addr", "add", &addr_b, "dev", "veth-b"],
        &["-n", &pair.a, "link", "set", "veth-a", "up"],
        &["-n", &pair.b, "link", "set", "veth-b", "up"],
    ];
    for args in commands {
        run("ip", args, t).await;
    }
    for (chain, dir) in [("OUTPUT", "-o"), ("PREROUTING", "-i")] {
        #[rustfmt::skip]
        let rule = [
            "iptables", "-t", "mangle", "-A", chain, dir, "veth-a",
            "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass",
        ];
        ns_run(&pair.a, &rule, t).await;
    }
    pair
}

/// Ping statistics: packets received and the average round trip in ms.
#[derive(Debug)]
struct PingStats {
    received: u32,
    avg_ms: f64,
}

/// Parses iputils ping's summary (`10 packets transmitted, 10 received, ...` and
/// `rtt min/avg/max/mdev = 1/2/3/4 ms`).
fn parse_ping(output: &str) -> Option<PingStats> {
    let counts = output.lines().find(|l| l.contains("packets transmitted"))?;
    let received = counts.split(", ").nth(1)?.split(' ').next()?.parse().ok()?;
    let rtt = output.lines().find(|l| l.contains("min/avg/max"))?;
    let avg_ms = rtt
        .split('=')
        .nth(1)?
        .trim()
        .split('/')
        .nth(1)?
        .parse()
        .ok()?;
    Some(PingStats { received, avg_ms })
}

/// Pings `dst` from `ns` `count` times, 50 ms apart. `-U` reports user-to-user latency: by
/// default ping uses the kernel's receive timestamp, taken before the PREROUTING delay.
async fn ping(ns: &str, dst: &str, count: u32) -> Option<PingStats> {
    let count = count.to_string();
    let args = [
        "netns", "exec", ns, "ping", "-U", "-n", "-q", "-c", &count, "-i", "0.05", "-W", "2", dst,
    ];
    let out = try_run("ip", &args, Duration::from_secs(30)).await.ok()?;
    parse_ping(&out)
}

/// The `id_sequence` of NFQUEUE 0 in `ns` (how many packets it ever queued), if it is bound.
async fn queued_so_far(ns: &str) -> Option<u64> {
    let table = ns_run(
        ns,
        &["cat", "/proc/net/netfilter/nfnetlink_queue"],
        Duration::from_secs(5),
    )
    .await;
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some("0"))?;
    line.split_whitespace().nth(7)?.parse().ok()
}

/// Starts `e3 delay --queue 0` in `ns` (killed on drop) and waits until it is bound: until the
/// queue shows up and a single ping takes at least `min_rtt_ms`. Bounded to 10 s.
async fn start_delay(pair: &Pair, delay_ms: &str, min_rtt_ms: f64) -> Child {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.a, E3, "delay", "--queue", "0"])
        .args(["--delay-ms", delay_ms])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {E3} delay: {err}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the delay line exited early ({status})");
        }
        if queued_so_far(&pair.a).await.is_some() {
            last = ping(&pair.a, &pair.addr_b, 1).await;
            if last.as_ref().is_some_and(|p| p.avg_ms >= min_rtt_ms) {
                return child;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the delay line ({delay_ms} ms) did not take effect within 10 s; last ping: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills a delay line and waits for it, so its queue is free again.
async fn stop(mut child: Child) {
    if let Ok(Some(status)) = child.try_wait() {
        panic!("the delay line died during the test ({status})");
    }
    let _ = child.kill().await;
}

#[tokio::test]
async fn delay_line_between_namespaces() {
    if !is_root() {
        println!("skipping the delay line test: it needs root (network namespaces, NFQUEUE)");
        return;
    }
    let pair = setup().await;
    let (a, b) = (pair.a.as_str(), pair.addr_b.as_str());

    // Without a delay line the rules bypass the queue: no delay.
    let base = ping(a, b, 5).await.expect("baseline ping failed");
    println!("baseline RTT without a delay line: {:.3} ms", base.avg_ms);
    assert!(base.avg_ms < 5.0, "baseline RTT too high: {base:?}");

    // 20 ms one way, applied on the way out and on the way back.
    let line = start_delay(&pair, "20", 30.0).await;
    let stats = ping(a, b, 10)
        .await
        .expect("ping through the 20 ms delay line failed");
    println!("RTT through the 20 ms delay line: {:.3} ms", stats.avg_ms);
    assert_eq!(stats.received, 10, "packets lost: {stats:?}");
    assert!(
        (40.0..=55.0).contains(&stats.avg_ms),
        "RTT {:.3} ms is not 40..55 ms",
        stats.avg_ms
    );
    stop(line).await;

    // Throughput at 5 ms one way: 20 MB from b to a. The data is delayed on a's PREROUTING, the
    // ACKs on a's OUTPUT. (Data *sent* from a would be throttled by TCP small queues, since the
    // held packets still count against the sending socket; E3 delays forwarded traffic.)
    let line = start_delay(&pair, "5", 8.0).await;
    let mut server = Command::new("ip")
        .args(["netns", "exec", &pair.b, "iperf3", "-s", "-1", "-B", b])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start iperf3 (is it installed?)");
    let listening = Instant::now() + Duration::from_secs(5);
    while ns_run(
        &pair.b,
        &["ss", "-Hltn", "sport = :5201"],
        Duration::from_secs(5),
    )
    .await
    .trim()
    .is_empty()
    {
        assert!(Instant::now() < listening, "iperf3 server did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued_before = queued_so_far(a).await.expect("queue 0 not bound");
    let started = Instant::now();
    let report = ns_run(
        a,
        &["iperf3", "-c", b, "-R", "-n", "20M", "-J"],
        Duration::from_secs(30),
    )
    .await;
    let elapsed = started.elapsed();
    let queued = queued_so_far(a).await.expect("queue 0 not bound") - queued_before;
    let report: serde_json::Value = serde_json::from_str(&report).expect("iperf3 JSON");
    let bits_per_second = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("iperf3 reported no throughput");
    let mbit = bits_per_second / 1e6;
    println!(
        "TCP through the 5 ms delay line: {mbit:.1} Mbit/s, 20 MB in {:.2} s, {queued} packets queued",
        elapsed.as_secs_f64()
    );
    let _ = server.wait().await;
    let after = ping(a, b, 5).await.expect("ping after the transfer failed");
    println!("RTT through the 5 ms delay line: {:.3} ms", after.avg_ms);
    assert!(mbit >= 50.0, "only {mbit:.1} Mbit/s through the delay line");
    assert!(
        queued >= 100,
        "only {queued} packets went through the queue"
    );
    assert!(
        (10.0..=15.0).contains(&after.avg_ms),
        "RTT {:.3} ms is not 10..15 ms",
        after.avg_ms
    );
    stop(line).await;

    // A zero delay passes packets straight through the queue.
    let line = start_delay(&pair, "0", 0.0).await;
    let queued_before = queued_so_far(a).await.expect("queue 0 not bound");
    let zero = ping(a, b, 10)
        .await
        .expect("ping through the 0 ms delay line failed");
    let queued = queued_so_far(a).await.expect("queue 0 not bound") - queued_before;
    println!(
        "RTT through the 0 ms delay line: {:.3} ms ({queued} packets queued)",
        zero.avg_ms
    );
    assert_eq!(zero.received, 10, "packets lost: {zero:?}");
    assert!(
        zero.avg_ms < 5.0,
        "RTT {:.3} ms with zero delay",
        zero.avg_ms
    );
    assert!(queued >= 20, "only {queued} packets went through the queue");
    stop(line).await;
}
