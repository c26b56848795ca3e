//! Builds a scenario network out of namespaces: an internet router, the internet host (for
//! mediators, relays and hubs), and per site a router with its NAT/firewall profile and link
//! conditions, with the parties' hosts on a LAN bridge behind it.
//!
//! Addresses (all inside namespaces this process made): internet host 198.18.0.2; site k's
//! router 198.18.k.2 on the internet side; its LAN 10.0.k.0/24 behind a NAT, 198.19.k.0/24
//! when public; hosts from .2 up. Every node has one interface to its uplink, `eth0` on hosts
//! and `wan` on routers.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::netns::Namespace;
use crate::scenario::{Link, Network, Profile};

/// The serial number of the next lab this process builds.
static NEXT_LAB: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The host's interface in every host namespace.
pub const HOST_INTERFACE: &str = "eth0";

/// A machine: a namespace with one address.
#[derive(Debug)]
pub struct Host {
    pub namespace: Namespace,
    pub address: Ipv4Addr,
}

/// A site's router.
#[derive(Debug)]
pub struct Router {
    pub namespace: Namespace,
    /// Its address on the internet.
    pub wan: Ipv4Addr,
    pub profile: Profile,
    pub link: Link,
    /// Its address on the LAN, the parties' default route.
    pub lan_gateway: Ipv4Addr,
}

/// A built network; dropping it tears everything down.
#[derive(Debug)]
pub struct Lab {
    /// The delay lines (killed with their namespaces too).
    _delay_lines: Vec<tokio::process::Child>,
    /// One per party, in party order.
    pub hosts: Vec<Host>,
    pub routers: Vec<Router>,
    pub party_sites: Vec<usize>,
    /// The internet host, where mediators, relays and hubs run.
    pub internet_host: Host,
    /// The internet's router: every site and the internet host hang off it.
    pub internet: Namespace,
}

impl Lab {
    /// Builds `network`. `delay_program` is E3's own executable (for `e3 delay`); the delay
    /// lines log into `logs`.
    pub async fn build(
        network: &Network,
        delay_program: &std::path::Path,
        logs: &std::path::Path,
    ) -> anyhow::Result<Self> {
        // Labs of one process are told apart by a serial number: e3-<pid>-<lab>-<node>.
        let lab = NEXT_LAB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let create = |node: &str| Namespace::create(&format!("{lab}-{node}"));
        let internet = create("inet")?;
        internet.sysctl("net.ipv4.ip_forward", "1")?;
        let internet_host = Host {
            namespace: create("internet-host")?,
            address: Ipv4Addr::new(198, 18, 0, 2),
        };
        connect(
            (&internet, "host", Ipv4Addr::new(198, 18, 0, 1)),
            (
                &internet_host.namespace,
                HOST_INTERFACE,
                internet_host.address,
            ),
        )?;
        internet_host
            .namespace
            .ip(&["route", "add", "default", "via", "198.18.0.1"])?;

        let mut routers = Vec::new();
        let mut delay_lines = Vec::new();
        for (index, site) in network.sites.iter().enumerate() {
            let number = u8::try_from(index + 1).context("too many sites")?;
            let namespace = create(&format!("r{number}"))?;
            namespace.sysctl("net.ipv4.ip_forward", "1")?;
            let wan = Ipv4Addr::new(198, 18, number, 2);
            let uplink = format!("site{number}");
            connect(
                (&internet, &uplink, Ipv4Addr::new(198, 18, number, 1)),
                (&namespace, "wan", wan),
            )?;
            namespace.ip(&[
                "route",
                "add",
                "default",
                "via",
                &format!("198.18.{number}.1"),
            ])?;
            let lan = lan_prefix(site.profile, number);
            namespace.ip(&["link", "add", "lan", "type", "bridge"])?;
            namespace.ip(&[
                "addr",
                "add",
                &format!("{}/24", lan_address(lan, 1)),
                "dev",
                "lan",
            ])?;
            namespace.ip(&["link", "set", "lan", "up"])?;
            if !site.profile.is_nat() {
                internet.ip(&[
                    "route",
                    "add",
                    &format!("{}/24", lan_address(lan, 0)),
                    "via",
                    &wan.to_string(),
                ])?;
            }
            namespace.nft(&router_rules(site.profile, site.link.loss_percent))?;
            if let Some(rate) = site.link.rate_mbit {
                shape(&namespace, "wan", rate)?;
                shape(&internet, &uplink, rate)?;
            }
            if site.link.delay_ms > 0.0 {
                delay_lines.push(
                    start_delay_line(&namespace, delay_program, site.link.delay_ms, logs).await?,
                );
            }
            routers.push(Router {
                namespace,
                wan,
                profile: site.profile,
                link: site.link,
                lan_gateway: lan_address(lan, 1),
            });
        }

        let mut hosts = Vec::new();
        let mut on_site = vec![0u8; network.sites.len()];
        for (party, &site) in network.party_sites.iter().enumerate() {
            on_site[site] += 1;
            let number = u8::try_from(site + 1).context("too many sites")?;
            let lan = lan_prefix(network.sites[site].profile, number);
            let address = lan_address(lan, on_site[site] + 1);
            let namespace = create(&format!("h{party}"))?;
            let port = format!("p{party}");
            connect_to_bridge(&routers[site].namespace, &port, &namespace, address)?;
            let gateway = routers[site].lan_gateway.to_string();
            namespace.ip(&["route", "add", "default", "via", &gateway])?;
            hosts.push(Host { namespace, address });
        }
        Ok(Self {
            _delay_lines: delay_lines,
            hosts,
            routers,
            party_sites: network.party_sites.clone(),
            internet_host,
            internet,
        })
    }

    pub fn router_of(&self, party: u16) -> &Router {
        &self.routers[self.party_sites[usize::from(party)]]
    }

    /// The address `from` dials to reach `to`'s host: its LAN address on a shared LAN or a
    /// public site, else its router's public address (which needs a port forward).
    pub fn address_for(&self, from: u16, to: u16) -> Ipv4Addr {
        let same_site = self.party_sites[usize::from(from)] == self.party_sites[usize::from(to)];
        let router = self.router_of(to);
        if same_site || !router.profile.is_nat() {
            self.hosts[usize::from(to)].address
        } else {
            router.wan
        }
    }

    /// Forwards TCP `port` on `party`'s router to the party's host (a port forward an admin
    /// would configure by hand). Nothing to do on a public site.
    pub fn forward_tcp_port(&self, party: u16, port: u16) -> anyhow::Result<bool> {
        let router = self.router_of(party);
        if !router.profile.is_nat() {
            return Ok(false);
        }
        let host = self.hosts[usize::from(party)].address;
        router.namespace.nft(&format!(
            "add rule ip e3 prerouting iifname \"wan\" tcp dport {port} dnat to {host}:{port}\n"
        ))?;
        Ok(true)
    }

    /// The addresses other sites see a site's parties at: its router's public address, and
    /// its LAN when the site is public.
    pub fn site_addresses(&self, site: usize) -> Vec<String> {
        let router = &self.routers[site];
        let mut addresses = vec![router.wan.to_string()];
        if !router.profile.is_nat() {
            let [a, b, c, _] = router.lan_gateway.octets();
            addresses.push(format!("{a}.{b}.{c}.0/24"));
        }
        addresses
    }

    /// The IPv4 addresses on `party`'s host interface now.
    pub fn host_addresses(&self, party: u16) -> anyhow::Result<Vec<Ipv4Addr>> {
        let host = &self.hosts[usize::from(party)];
        let listing = host
            .namespace
            .ip(&["-4", "-o", "addr", "show", "dev", HOST_INTERFACE])?;
        Ok(listing.lines().filter_map(inet_address).collect())
    }

    /// Moves `party`'s host from address `from` to `to` on its LAN: the old address removed,
    /// the new one added, the default route through its router again, and its router's port
    /// forwards pointed at the new address.
    pub fn move_host(&self, party: u16, from: Ipv4Addr, to: Ipv4Addr) -> anyhow::Result<()> {
        let namespace = &self.hosts[usize::from(party)].namespace;
        let router = self.router_of(party);
        // Removed first: a second address in the subnet would be a secondary one, which the
        // kernel deletes with the primary.
        namespace.ip(&["addr", "del", &format!("{from}/24"), "dev", HOST_INTERFACE])?;
        namespace.ip(&["addr", "add", &format!("{to}/24"), "dev", HOST_INTERFACE])?;
        let gateway = router.lan_gateway.to_string();
        namespace.ip(&["route", "replace", "default", "via", &gateway])?;
        if router.profile.is_nat() {
            move_port_forwards(&router.namespace, from, to)?;
        }
        Ok(())
    }

    /// Forgets every NAT mapping and connection, so one run's state cannot help the next.
    pub fn flush_connection_tracking(&self) -> anyhow::Result<()> {
        for router in &self.routers {
            router.namespace.exec("conntrack", &["-F"])?;
        }
        Ok(())
    }

    /// Removes the port forwards (a candidate's), so the next candidate runs without them.
    pub fn remove_port_forwards(&self) -> anyhow::Result<()> {
        for router in self.routers.iter().filter(|router| router.profile.is_nat()) {
            router.namespace.nft("flush chain ip e3 prerouting\n")?;
        }
        Ok(())
    }

    /// Fails if a delay line is no longer bound to its queue (packets would then pass
    /// undelayed, by --queue-bypass).
    pub fn check_delay_lines(&self) -> anyhow::Result<()> {
        for router in self
            .routers
            .iter()
            .filter(|router| router.link.delay_ms > 0.0)
        {
            let bound = router
                .namespace
                .exec("cat", &["/proc/net/netfilter/nfnetlink_queue"])?;
            if bound.trim().is_empty() {
                anyhow::bail!(
                    "the delay line of {} died: its packets passed undelayed (see its log)",
                    router.namespace.name()
                );
            }
        }
        Ok(())
    }

    /// Round-trip time between two parties at the IP level, the average of five pings: between
    /// their routers' public addresses (so the firewall cannot stop it, and both uplinks'
    /// conditions count) or host to host on one LAN.
    pub fn measure_rtt_ms(&self, a: u16, b: u16) -> anyhow::Result<f64> {
        let (from, to) = if self.party_sites[usize::from(a)] == self.party_sites[usize::from(b)] {
            (
                &self.hosts[usize::from(a)].namespace,
                self.hosts[usize::from(b)].address,
            )
        } else {
            (&self.router_of(a).namespace, self.router_of(b).wan)
        };
        let output = from.exec(
            "ping",
            &[
                // -U: time replies in user space, after the delay line has held them.
                "-U",
                "-n",
                "-q",
                "-c",
                "5",
                "-i",
                "0.05",
                "-W",
                "2",
                &to.to_string(),
            ],
        )?;
        parse_ping_average(&output).with_context(|| format!("ping output: {output}"))
    }
}

/// The first three octets of a site's LAN: private behind a NAT, public otherwise.
fn lan_prefix(profile: Profile, site_number: u8) -> [u8; 3] {
    if profile.is_nat() {
        [10, 0, site_number]
    } else {
        [198, 19, site_number]
    }
}

fn lan_address(prefix: [u8; 3], host: u8) -> Ipv4Addr {
    Ipv4Addr::new(prefix[0], prefix[1], prefix[2], host)
}

/// A veth pair between two namespaces, each end addressed in a /24 and up.
fn connect(
    (a, a_name, a_address): (&Namespace, &str, Ipv4Addr),
    (b, b_name, b_address): (&Namespace, &str, Ipv4Addr),
) -> anyhow::Result<()> {
    a.ip(&[
        "link",
        "add",
        a_name,
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "netns",
        b.name(),
    ])?;
    a.ip(&["addr", "add", &format!("{a_address}/24"), "dev", a_name])?;
    b.ip(&["addr", "add", &format!("{b_address}/24"), "dev", b_name])?;
    a.ip(&["link", "set", a_name, "up"])?;
    b.ip(&["link", "set", b_name, "up"])?;
    Ok(())
}

/// A host on a router's LAN bridge.
fn connect_to_bridge(
    router: &Namespace,
    port: &str,
    host: &Namespace,
    address: Ipv4Addr,
) -> anyhow::Result<()> {
    router.ip(&[
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        HOST_INTERFACE,
        "netns",
        host.name(),
    ])?;
    router.ip(&["link", "set", port, "master", "lan", "up"])?;
    host.ip(&[
        "addr",
        "add",
        &format!("{address}/24"),
        "dev",
        HOST_INTERFACE,
    ])?;
    host.ip(&["link", "set", HOST_INTERFACE, "up"])?;
    Ok(())
}

/// The address in a line of `ip -o addr`: `2: eth0    inet 10.0.1.2/24 scope global eth0 …`.
fn inet_address(line: &str) -> Option<Ipv4Addr> {
    let mut fields = line.split_whitespace();
    fields.find(|field| *field == "inet")?;
    fields.next()?.split('/').next()?.parse().ok()
}

/// Points a router's port forwards (its `prerouting` DNAT rules) at `to` instead of `from`.
fn move_port_forwards(router: &Namespace, from: Ipv4Addr, to: Ipv4Addr) -> anyhow::Result<()> {
    let listing = router.exec("nft", &["-a", "list", "chain", "ip", "e3", "prerouting"])?;
    let old = format!("dnat to {from}:");
    let mut replaced = String::new();
    for line in listing.lines().filter(|line| line.contains(&old)) {
        let Some((rule, handle)) = line.trim().rsplit_once(" # handle ") else {
            continue;
        };
        let rule = rule.replace(&old, &format!("dnat to {to}:"));
        replaced.push_str(&format!(
            "replace rule ip e3 prerouting handle {handle} {rule}\n"
        ));
    }
    if !replaced.is_empty() {
        router.nft(&replaced)?;
    }
    Ok(())
}

/// A router's nftables ruleset: NAT, firewall, and packet loss on its uplink.
fn router_rules(profile: Profile, loss_percent: f64) -> String {
    let public = !profile.is_nat();
    let masquerade = match profile {
        Profile::None => "",
        // A fresh random port for every new mapping: endpoint-dependent.
        Profile::Symmetric => "oifname \"wan\" masquerade fully-random",
        // Linux keeps the inside port when it can: one mapping for every destination.
        _ => "oifname \"wan\" masquerade",
    };
    let lan_out = match profile {
        Profile::UdpBlocked => "iifname \"lan\" meta l4proto udp drop\n    iifname \"lan\" accept",
        Profile::TcpOnly => "iifname \"lan\" tcp dport { 80, 443 } accept",
        _ => "iifname \"lan\" accept",
    };
    // Without a NAT, nothing filters. Behind one, only replies and port forwards come in; new
    // inbound packets to the router die in `input` before conntrack records them (a recorded
    // one would clash with a later outbound mapping and break endpoint independence).
    let policy = if public { "accept" } else { "drop" };
    let loss = if loss_percent > 0.0 {
        let per_ten_thousand = (loss_percent * 100.0).round();
        format!(
            "  chain loss_in {{ type filter hook prerouting priority -300; iifname \"wan\" numgen random mod 10000 < {per_ten_thousand} drop; }}\n  \
             chain loss_out {{ type filter hook postrouting priority 300; oifname \"wan\" numgen random mod 10000 < {per_ten_thousand} drop; }}\n"
        )
    } else {
        String::new()
    };
    format!(
        "table ip e3 {{\n  \
         chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n  \
         chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; {masquerade}; }}\n  \
         chain input {{ type filter hook input priority filter; policy {policy};\n    \
         ct state established,related accept\n    iifname != \"wan\" accept\n    icmp type echo-request accept\n  }}\n  \
         chain forward {{ type filter hook forward priority filter; policy {policy};\n    \
         ct state established,related accept\n    ct status dnat accept\n    {lan_out}\n  }}\n\
         {loss}}}\n"
    )
}

/// Limits an interface's egress to `rate_mbit` with a token bucket (tbf).
fn shape(namespace: &Namespace, interface: &str, rate_mbit: f64) -> anyhow::Result<()> {
    let bytes_per_second = rate_mbit * 1e6 / 8.0;
    // A burst of 5 ms of traffic (at least a few full packets) and at most 50 ms queued.
    let burst = (bytes_per_second * 0.005).max(6000.0).round();
    namespace.exec(
        "tc",
        &[
            "qdisc",
            "add",
            "dev",
            interface,
            "root",
            "tbf",
            "rate",
            &format!("{}kbit", (rate_mbit * 1000.0).round()),
            "burst",
            &format!("{burst}"),
            "latency",
            "50ms",
        ],
    )?;
    Ok(())
}

/// Sends every packet crossing the router's uplink, both ways, through an `e3 delay` process
/// that holds it `delay_ms` (this kernel may lack netem), and waits until it is bound.
async fn start_delay_line(
    router: &Namespace,
    delay_program: &std::path::Path,
    delay_ms: f64,
    logs: &std::path::Path,
) -> anyhow::Result<tokio::process::Child> {
    std::fs::create_dir_all(logs)?;
    let log = std::fs::File::create(logs.join(format!("delay-{}.log", router.name())))?;
    // The raw table runs before conntrack: packets wait *before* the NAT sees them, so a burst
    // of a new flow makes one mapping (queued after conntrack, each packet of the burst would
    // get its own unconfirmed entry, and a symmetric NAT a port of its own). The uplink both
    // ways: in from the internet, in from the LAN (routed, bridged LAN traffic never gets
    // here), and the router's own packets out.
    for rule in [
        ["-A", "PREROUTING", "-i", "wan"],
        ["-A", "PREROUTING", "-i", "lan"],
        ["-A", "OUTPUT", "-o", "wan"],
    ] {
        let mut args = vec!["-t", "raw"];
        args.extend_from_slice(&rule);
        args.extend_from_slice(&["-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"]);
        router.exec("iptables", &args)?;
    }
    let child = router
        .command(delay_program)
        .args(["delay", "--queue", "0", "--delay-ms", &delay_ms.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the delay line")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let bound = router.exec("cat", &["/proc/net/netfilter/nfnetlink_queue"])?;
        if !bound.trim().is_empty() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            bail!(
                "the delay line in {} did not bind its queue in 5 s",
                router.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The average of ping's summary line `rtt min/avg/max/mdev = 0.1/0.2/0.3/0.0 ms`.
pub fn parse_ping_average(output: &str) -> Option<f64> {
    let line = output.lines().find(|line| line.contains("min/avg/max"))?;
    line.split('=')
        .nth(1)?
        .trim()
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary_is_parsed() {
        let output = "--- 198.18.2.2 ping statistics ---\n5 packets transmitted, 5 received, 0% packet loss, time 201ms\nrtt min/avg/max/mdev = 20.101/20.342/20.911/0.301 ms\n";
        assert_eq!(parse_ping_average(output), Some(20.342));
        assert_eq!(
            parse_ping_average("5 packets transmitted, 0 received"),
            None
        );
    }

    #[test]
    fn host_addresses_are_read_from_ip() {
        let line = "2: eth0    inet 10.0.1.102/24 scope global eth0\\       valid_lft forever";
        assert_eq!(inet_address(line), Some(Ipv4Addr::new(10, 0, 1, 102)));
        assert_eq!(inet_address("2: eth0 link/ether 02:00:00:00:00:01"), None);
    }

    #[test]
    fn rulesets_match_their_profiles() {
        assert!(router_rules(Profile::Symmetric, 0.0).contains("masquerade fully-random"));
        assert!(router_rules(Profile::Home, 0.0).contains("oifname \"wan\" masquerade;"));
        assert!(!router_rules(Profile::None, 0.0).contains("masquerade"));
        assert!(router_rules(Profile::TcpOnly, 0.0).contains("tcp dport { 80, 443 } accept"));
        assert!(router_rules(Profile::UdpBlocked, 0.0).contains("udp drop"));
        assert!(router_rules(Profile::Home, 1.5).contains("mod 10000 < 150 drop"));
    }
}
