//! `n2n`: a supernode on the internet host, an edge per party (n2n 1.3, Debian's). Edges of one
//! community share a key and find each other through the supernode, which relays between
//! edges that cannot reach each other directly. n2n runs over UDP only; its layer 2 overlay
//! needs ARP, so each edge gets a fixed MAC address and a fixed port, as n2n advises.

use anyhow::Context;

use super::overlay::{ConfigFiles, Hub, Protocol, overlay_address};
use crate::scenario::Network;
use crate::topology::Lab;

/// The supernode's UDP port.
const PORT: u16 = 7654;
/// Every edge's own UDP port: fixed, like its MAC, so that a restarted edge is the peer the
/// others and the supernode remember (with a new port they wait minutes for stale entries).
const EDGE_PORT: u16 = 7700;
/// The community every party joins.
const COMMUNITY: &str = "e3lab";

#[derive(Debug)]
pub struct N2n {
    /// The community's shared key (n2n has no per-party keys).
    key: String,
    /// The edge command line each party runs, as it was written down for that party.
    edges: Vec<Vec<String>>,
}

impl N2n {
    /// Draws the community key and writes each party's edge command line.
    pub fn configure(
        lab: &Lab,
        network: &Network,
        files: &mut ConfigFiles,
    ) -> anyhow::Result<Self> {
        let key = random_key()?;
        let supernode = format!("{}:{PORT}", lab.internet_host.address);
        let mut edges = Vec::new();
        for party in 0..network.parties() {
            let [high, low] = party.to_be_bytes();
            let edge: Vec<String> = [
                "-d",
                "n2n0",
                "-a",
                &overlay_address(party).to_string(),
                "-c",
                COMMUNITY,
                "-l",
                &supernode,
                "-m",
                &format!("02:e3:00:00:{high:02x}:{low:02x}"),
                "-p",
                &EDGE_PORT.to_string(),
            ]
            .into_iter()
            .map(str::to_string)
            .collect();
            // What the party types (the key comes in N2N_KEY, kept off the command line).
            files.write(
                &format!("party{party}.sh"),
                &format!("N2N_KEY=<community key> edge {}\n", edge.join(" ")),
            )?;
            edges.push(edge);
        }
        Ok(Self { key, edges })
    }

    pub fn hub(&self, lab: &Lab) -> Hub {
        let mut command = lab.internet_host.namespace.command("supernode");
        command.args(["-l", &PORT.to_string()]);
        Hub {
            command,
            protocol: Protocol::Udp,
            port: PORT,
        }
    }

    pub fn party_command(&self, lab: &Lab, party: u16) -> tokio::process::Command {
        let mut command = lab.hosts[usize::from(party)].namespace.command("edge");
        command
            .args(&self.edges[usize::from(party)])
            .env("N2N_KEY", &self.key);
        command
    }
}

/// 32 random hexadecimal characters from the kernel's generator.
fn random_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
