//! `tinc`: a tinc 1.0 mesh with one reachable node on the internet host (`hub`, TCP and UDP
//! port 443, so even a firewall that lets out only TCP 443 lets parties in). Every party
//! connects to the hub; tinc sends data straight to a peer over UDP when it can and otherwise
//! through the hub (over UDP, or over the TCP meta connections when UDP is blocked).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::overlay::{
    ConfigFiles, HUB_OVERLAY_ADDRESS, Hub, OVERLAY_PREFIX, Protocol, overlay_address, path_text,
};
use crate::netns;
use crate::scenario::Network;
use crate::topology::Lab;

/// The hub's port (TCP for meta connections, UDP for data).
const HUB_PORT: u16 = 443;
/// RSA key size: tinc 1.0's default.
const KEY_BITS: &str = "2048";

#[derive(Debug)]
pub struct Tinc {
    /// Each node's configuration directory, the hub's first.
    dirs: Vec<PathBuf>,
}

impl Tinc {
    /// Writes every node's tinc.conf, host file and tinc-up, makes its key pair, then gives
    /// every node every host file (as a person would exchange them).
    pub fn configure(
        lab: &Lab,
        network: &Network,
        files: &mut ConfigFiles,
    ) -> anyhow::Result<Self> {
        let mut nodes = vec![Node {
            name: "hub".into(),
            address: HUB_OVERLAY_ADDRESS,
            connect_to: None,
            public: Some(format!(
                "Address = {}\nPort = {HUB_PORT}\n",
                lab.internet_host.address
            )),
        }];
        nodes.extend((0..network.parties()).map(|party| Node {
            name: format!("party{party}"),
            address: overlay_address(party),
            connect_to: Some("hub"),
            public: None,
        }));
        let mut dirs = Vec::new();
        for node in &nodes {
            let dir = node.write(files)?;
            netns::run("tincd", &["-c", &path_text(&dir), &format!("-K{KEY_BITS}")])
                .with_context(|| format!("making {}'s key pair", node.name))?;
            dirs.push(dir);
        }
        // Every node learns every other node's host file (its subnet and public key).
        for (from, node) in dirs.iter().zip(&nodes) {
            let host_file = std::fs::read_to_string(from.join("hosts").join(&node.name))?;
            for to in dirs.iter().filter(|to| *to != from) {
                std::fs::write(to.join("hosts").join(&node.name), &host_file)?;
            }
        }
        Ok(Self { dirs })
    }

    pub fn hub(&self, lab: &Lab) -> Hub {
        Hub {
            command: tincd(lab.internet_host.namespace.command("tincd"), &self.dirs[0]),
            protocol: Protocol::Tcp,
            port: HUB_PORT,
        }
    }

    pub fn party_command(&self, lab: &Lab, party: u16) -> tokio::process::Command {
        let command = lab.hosts[usize::from(party)].namespace.command("tincd");
        tincd(command, &self.dirs[usize::from(party) + 1])
    }
}

/// `tincd` in the foreground on config directory `dir`, its pid file there too (the default
/// one is shared by every namespace), logging connections to stderr.
fn tincd(mut command: tokio::process::Command, dir: &Path) -> tokio::process::Command {
    command
        .args(["-D", "-d1", "-c"])
        .arg(dir)
        .arg(format!("--pidfile={}", dir.join("tinc.pid").display()));
    command
}

/// One tinc node as a person would configure it.
struct Node {
    name: String,
    address: std::net::Ipv4Addr,
    connect_to: Option<&'static str>,
    /// For a node others can dial: its host file's Address and Port lines.
    public: Option<String>,
}

impl Node {
    /// Writes tinc.conf, the node's own host file (without its key yet) and tinc-up; returns
    /// the node's directory.
    fn write(&self, files: &mut ConfigFiles) -> anyhow::Result<PathBuf> {
        let name = &self.name;
        let mut conf = format!("Name = {name}\nAddressFamily = ipv4\nInterface = tinc0\n");
        if let Some(hub) = self.connect_to {
            conf.push_str(&format!("ConnectTo = {hub}\n"));
        } else {
            conf.push_str(&format!("Port = {HUB_PORT}\n"));
        }
        files.write(&format!("{name}/tinc.conf"), &conf)?;
        let host = format!(
            "{}Subnet = {}/32\n",
            self.public.as_deref().unwrap_or(""),
            self.address
        );
        files.write(&format!("{name}/hosts/{name}"), &host)?;
        files.write_script(
            &format!("{name}/tinc-up"),
            &format!(
                "#!/bin/sh\nip addr add {}/{OVERLAY_PREFIX} dev \"$INTERFACE\"\n\
                 ip link set \"$INTERFACE\" up\n",
                self.address
            ),
        )?;
        Ok(files.path(name))
    }
}
