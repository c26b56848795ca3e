//! NAT and firewall profiles as E3 builds them, observed on the wire (as root, RFC 4787 terms):
//! one lab with a site per profile, a UDP/TCP server on the internet host that records each
//! datagram's source as it sees it and answers from the port it was sent to and from a port it
//! was not, and from every party a client that sends a burst to two ports and tries two TCP
//! ports. Each profile's mapping, filtering and firewall must show as documented.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{E3, root};
use e3::scenario::{Link, Network, Profile, Site};
use e3::topology::Lab;
use serde::Deserialize;

/// The profiles under test: one site each, with one party, in party order.
const PROFILES: [Profile; 5] = [
    Profile::Home,
    Profile::Symmetric,
    Profile::UdpBlocked,
    Profile::TcpOnly,
    Profile::None,
];

/// The two UDP ports the server answers on (STUN's, as a mediator would use them).
const UDP_PORTS: [u16; 2] = [3478, 3479];
/// The server's UDP port that is never sent to but answers too: only an unfiltered client hears it.
const SILENT_PORT: u16 = 3480;

/// The internet host's server: `python3 -c SERVER <address> <observations file> <lifetime s>`.
/// Writes one JSON line per event, flushed: `ready` once bound, `udp` per datagram on 3478 or
/// 3479 (its payload and source as seen here), `tcp` per accepted connection. Answers each
/// datagram from the socket it came in on and from the 3480 socket.
const SERVER: &str = r#"
import json, select, socket, sys, time
address, path, lifetime = sys.argv[1], sys.argv[2], float(sys.argv[3])
out = open(path, "w", buffering=1)
def note(**event):
    out.write(json.dumps(event) + "\n")
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    return s
answering = [udp(3478), udp(3479)]
silent = udp(3480)
listening = []
for port in (22, 443):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(16)
    listening.append(s)
note(event="ready")
deadline = time.monotonic() + lifetime
while (left := deadline - time.monotonic()) > 0:
    readable, _, _ = select.select(answering + listening, [], [], left)
    for s in readable:
        port = s.getsockname()[1]
        if s in answering:
            payload, client = s.recvfrom(2048)
            note(event="udp", payload=payload.decode(errors="replace"), client_ip=client[0],
                 client_port=client[1], server_port=port)
            reply = b"from %d" % port
            s.sendto(reply, client)
            silent.sendto(b"from 3480", client)
        else:
            connection, client = s.accept()
            note(event="tcp", client_ip=client[0], server_port=port)
            connection.close()
"#;

/// A party's client: `python3 -c CLIENT <server> <label>`. From one UDP socket, 5 datagrams
/// 1 ms apart to 3478, then 5 to 3479 (payload: the label), then 0.5 s of collecting replies;
/// then a TCP connect (1 s timeout) to 22 and to 443. Prints one JSON line.
const CLIENT: &str = r#"
import json, socket, sys, time
server, label = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
for port in (3478, 3479):
    for _ in range(5):
        try:
            s.sendto(label.encode(), (server, port))
        except OSError:
            pass
        time.sleep(0.001)
replies_from = set()
deadline = time.monotonic() + 0.5
while (left := deadline - time.monotonic()) > 0:
    s.settimeout(left)
    try:
        _, source = s.recvfrom(2048)
    except (socket.timeout, OSError):
        break
    replies_from.add(source[1])
tcp_ok = []
for port in (22, 443):
    try:
        socket.create_connection((server, port), timeout=1).close()
        tcp_ok.append(port)
    except OSError:
        pass
print(json.dumps({"local_port": s.getsockname()[1], "replies_from": sorted(replies_from),
                  "tcp_ok": tcp_ok}), flush=True)
"#;

/// One line of the server's observations.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Observation {
    Ready,
    Udp {
        payload: String,
        client_ip: Ipv4Addr,
        client_port: u16,
        server_port: u16,
    },
    Tcp {
        client_ip: Ipv4Addr,
        server_port: u16,
    },
}

/// A datagram as the server saw it arrive.
#[derive(Debug, Clone, Copy)]
struct Seen {
    client_ip: Ipv4Addr,
    client_port: u16,
    server_port: u16,
}

/// What a client reports of its own side.
#[derive(Debug, Deserialize)]
struct Report {
    local_port: u16,
    replies_from: BTreeSet<u16>,
    tcp_ok: BTreeSet<u16>,
}

/// One site per profile, one party each; the symmetric site's uplink delays 5 ms, so each
/// 5-datagram burst (4 ms long) is all queued before its first datagram gets through: one
/// mapping only if the delay line holds packets before conntrack sees them.
fn network() -> Network {
    let sites = PROFILES
        .iter()
        .map(|&profile| Site {
            profile,
            link: if profile == Profile::Symmetric {
                Link {
                    delay_ms: 5.0,
                    ..Link::default()
                }
            } else {
                Link::default()
            },
        })
        .collect();
    Network {
        name: "nat-profiles".into(),
        sites,
        party_sites: (0..PROFILES.len()).collect(),
        matrix_cell: None,
        faults: Vec::new(),
    }
}

/// The observations file's lines so far (the last may be cut short while the server writes).
fn observations(path: &Path) -> Vec<Observation> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Starts the server on the internet host and waits (at most 5 s) until it is bound.
async fn start_server(lab: &Lab, dir: &Path) -> tokio::process::Child {
    let file = dir.join("observations.jsonl");
    let stderr = std::fs::File::create(dir.join("server.err")).expect("server stderr file");
    let mut server = lab
        .internet_host
        .namespace
        .command("python3")
        .arg("-c")
        .arg(SERVER)
        .arg(lab.internet_host.address.to_string())
        .arg(&file)
        .arg("20")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("starting the server");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if observations(&file)
            .iter()
            .any(|event| matches!(event, Observation::Ready))
        {
            return server;
        }
        let exited = server.try_wait().expect("polling the server");
        if exited.is_some() || Instant::now() > deadline {
            let errors = std::fs::read_to_string(dir.join("server.err")).unwrap_or_default();
            panic!("the server is not ready ({exited:?}): {errors}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs every party's client at once and returns their reports, in party order (all within 5 s).
async fn run_clients(lab: &Lab) -> Vec<Report> {
    let server = lab.internet_host.address.to_string();
    let clients: Vec<_> = lab
        .hosts
        .iter()
        .enumerate()
        .map(|(party, host)| {
            host.namespace
                .command("python3")
                .args(["-c", CLIENT, &server, &party.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting a client")
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut reports = Vec::new();
    for (party, client) in clients.into_iter().enumerate() {
        let output = tokio::time::timeout_at(deadline, client.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("party {party}'s client ran over 5 s"))
            .expect("waiting for a client");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
            panic!(
                "party {party}'s client said {stdout:?} ({error}); stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        reports.push(report);
    }
    reports
}

/// The source ports the server saw on datagrams sent to `server_port`.
fn source_ports(seen: &[Seen], server_port: u16) -> BTreeSet<u16> {
    seen.iter()
        .filter(|datagram| datagram.server_port == server_port)
        .map(|datagram| datagram.client_port)
        .collect()
}

/// Checks one party's datagrams (as the server saw them) and report against its profile;
/// returns a one-line summary of the mapping.
fn check(
    profile: Profile,
    host: Ipv4Addr,
    wan: Ipv4Addr,
    seen: &[Seen],
    report: &Report,
) -> String {
    let name = profile.as_str();
    let sources: BTreeSet<Ipv4Addr> = seen.iter().map(|datagram| datagram.client_ip).collect();
    let [first, second] = UDP_PORTS.map(|port| source_ports(seen, port));
    let all_ports: BTreeSet<u16> = first.union(&second).copied().collect();
    let summary = format!(
        "{name}: local port {}, seen from {sources:?} ports {first:?} (to 3478) {second:?} \
         (to 3479), replies from {:?}, tcp ok {:?}",
        report.local_port, report.replies_from, report.tcp_ok
    );
    let context = format!("{summary}; datagrams {seen:?}");
    let both: BTreeSet<u16> = UDP_PORTS.into();
    let all_three: BTreeSet<u16> = [3478, 3479, SILENT_PORT].into();
    let tcp_both: BTreeSet<u16> = [22, 443].into();
    match profile {
        Profile::Home => {
            assert_eq!(seen.len(), 10, "{context}");
            assert_eq!(
                sources,
                [wan].into(),
                "home: NATed to the router\n{context}"
            );
            assert_eq!(
                all_ports.len(),
                1,
                "home: one mapping for both destinations (endpoint-independent)\n{context}"
            );
            assert_eq!(
                report.replies_from, both,
                "home: replies from the ports it sent to only (port-restricted)\n{context}"
            );
            assert_eq!(report.tcp_ok, tcp_both, "{context}");
        }
        Profile::Symmetric => {
            assert_eq!(seen.len(), 10, "{context}");
            assert_eq!(
                sources,
                [wan].into(),
                "symmetric: NATed to the router\n{context}"
            );
            assert_eq!(
                (first.len(), second.len()),
                (1, 1),
                "symmetric: a delayed burst of a new flow gets one mapping\n{context}"
            );
            assert_ne!(
                first, second,
                "symmetric: a mapping per destination (endpoint-dependent)\n{context}"
            );
            assert_eq!(
                report.replies_from, both,
                "symmetric: replies from the ports it sent to only\n{context}"
            );
            assert_eq!(report.tcp_ok, tcp_both, "{context}");
        }
        Profile::UdpBlocked => {
            assert!(seen.is_empty(), "udp-blocked: UDP got out\n{context}");
            assert!(report.replies_from.is_empty(), "{context}");
            assert_eq!(report.tcp_ok, tcp_both, "{context}");
        }
        Profile::TcpOnly => {
            assert!(seen.is_empty(), "tcp-only: UDP got out\n{context}");
            assert!(report.replies_from.is_empty(), "{context}");
            assert_eq!(
                report.tcp_ok,
                [443].into(),
                "tcp-only: TCP out to 443 only\n{context}"
            );
        }
        Profile::None => {
            assert_eq!(seen.len(), 10, "{context}");
            assert_eq!(sources, [host].into(), "none: not NATed\n{context}");
            assert_eq!(
                all_ports,
                [report.local_port].into(),
                "none: the host's own port\n{context}"
            );
            assert_eq!(
                report.replies_from, all_three,
                "none: unfiltered, even the port it never sent to answers\n{context}"
            );
            assert_eq!(report.tcp_ok, tcp_both, "{context}");
        }
        Profile::SameLan => unreachable!("not under test"),
    }
    summary
}

#[tokio::test]
async fn each_profile_maps_and_filters_as_documented() {
    if !root() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::build(&network(), Path::new(E3), &dir.path().join("logs"))
        .await
        .expect("lab");
    let mut server = start_server(&lab, dir.path()).await;
    let reports = run_clients(&lab).await;
    server.kill().await.expect("stopping the server");

    let events = observations(&dir.path().join("observations.jsonl"));
    let mut seen = vec![Vec::new(); PROFILES.len()];
    for event in &events {
        if let Observation::Udp {
            payload,
            client_ip,
            client_port,
            server_port,
        } = event
        {
            let party: usize = payload
                .parse()
                .unwrap_or_else(|_| panic!("a datagram from no party: {payload:?}"));
            seen[party].push(Seen {
                client_ip: *client_ip,
                client_port: *client_port,
                server_port: *server_port,
            });
        }
    }
    for (party, profile) in PROFILES.into_iter().enumerate() {
        let host = lab.hosts[party].address;
        let wan = lab.routers[party].wan;
        let summary = check(profile, host, wan, &seen[party], &reports[party]);
        eprintln!("{summary}");
        // The server saw the same TCP connections the client made, from the same address.
        let source = if profile.is_nat() { wan } else { host };
        assert_eq!(
            tcp_accepted(&events, source),
            reports[party].tcp_ok,
            "{summary}; the server's TCP accepts from {source}"
        );
    }
    eprintln!("took {:.1} s", started.elapsed().as_secs_f64());
}

/// The server ports of the TCP connections the server accepted from `source`.
fn tcp_accepted(events: &[Observation], source: Ipv4Addr) -> BTreeSet<u16> {
    events
        .iter()
        .filter_map(|event| match event {
            Observation::Tcp {
                client_ip,
                server_port,
                ..
            } if *client_ip == source => Some(*server_port),
            _ => None,
        })
        .collect()
}
