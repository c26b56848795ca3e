//! `nebula`: a Nebula overlay with its own certificate authority, made per network. The
//! lighthouse on the internet host tells parties each other's addresses and relays for the
//! pairs whose NATs do not let them punch through (Nebula's relay, as Nebula documents it);
//! parties punch (`punchy`) and use the lighthouse as their relay. Nebula runs over UDP only.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::overlay::{
    ConfigFiles, HUB_OVERLAY_ADDRESS, Hub, OVERLAY_PREFIX, Protocol, overlay_address, path_text,
};
use crate::netns;
use crate::scenario::Network;
use crate::topology::Lab;

/// Every node's UDP port.
const PORT: u16 = 4242;

#[derive(Debug)]
pub struct Nebula {
    lighthouse_config: PathBuf,
    party_configs: Vec<PathBuf>,
}

impl Nebula {
    /// Makes the CA, a certificate per node, and the configs.
    pub fn configure(
        lab: &Lab,
        network: &Network,
        files: &mut ConfigFiles,
    ) -> anyhow::Result<Self> {
        let pki = files.path("pki");
        std::fs::create_dir_all(&pki)?;
        let ca_cert = pki.join("ca.crt");
        let ca_key = pki.join("ca.key");
        netns::run(
            "nebula-cert",
            &[
                "ca",
                "-name",
                "e3 lab",
                "-duration",
                "24h",
                "-out-crt",
                &path_text(&ca_cert),
                "-out-key",
                &path_text(&ca_key),
            ],
        )?;
        let sign = |name: &str, address| -> anyhow::Result<(PathBuf, PathBuf)> {
            let (cert, key) = (
                pki.join(format!("{name}.crt")),
                pki.join(format!("{name}.key")),
            );
            netns::run(
                "nebula-cert",
                &[
                    "sign",
                    "-ca-crt",
                    &path_text(&ca_cert),
                    "-ca-key",
                    &path_text(&ca_key),
                    "-name",
                    name,
                    "-ip",
                    &format!("{address}/{OVERLAY_PREFIX}"),
                    "-out-crt",
                    &path_text(&cert),
                    "-out-key",
                    &path_text(&key),
                ],
            )
            .with_context(|| format!("signing {name}'s certificate"))?;
            Ok((cert, key))
        };

        let (cert, key) = sign("lighthouse", HUB_OVERLAY_ADDRESS)?;
        let lighthouse = format!(
            "{}lighthouse:\n  am_lighthouse: true\nlisten:\n  host: 0.0.0.0\n  port: {PORT}\n\
             relay:\n  am_relay: true\ntun:\n  disabled: true\n{}",
            pki_section(&ca_cert, &cert, &key),
            COMMON
        );
        let lighthouse_config = files.write("lighthouse.yml", &lighthouse)?;

        let mut party_configs = Vec::new();
        for party in 0..network.parties() {
            let (cert, key) = sign(&format!("party{party}"), overlay_address(party))?;
            let config = format!(
                "{}static_host_map:\n  \"{HUB_OVERLAY_ADDRESS}\": [\"{}:{PORT}\"]\n\
                 lighthouse:\n  am_lighthouse: false\n  hosts:\n    - \"{HUB_OVERLAY_ADDRESS}\"\n\
                 listen:\n  host: 0.0.0.0\n  port: {PORT}\n\
                 punchy:\n  punch: true\n  respond: true\n\
                 relay:\n  relays:\n    - {HUB_OVERLAY_ADDRESS}\n  use_relays: true\n\
                 tun:\n  dev: nebula1\n{}",
                pki_section(&ca_cert, &cert, &key),
                lab.internet_host.address,
                COMMON
            );
            party_configs.push(files.write(&format!("party{party}.yml"), &config)?);
        }
        Ok(Self {
            lighthouse_config,
            party_configs,
        })
    }

    pub fn hub(&self, lab: &Lab) -> Hub {
        let mut command = lab.internet_host.namespace.command("nebula");
        command.arg("-config").arg(&self.lighthouse_config);
        Hub {
            command,
            protocol: Protocol::Udp,
            port: PORT,
        }
    }

    pub fn party_command(&self, lab: &Lab, party: u16) -> tokio::process::Command {
        let mut command = lab.hosts[usize::from(party)].namespace.command("nebula");
        command
            .arg("-config")
            .arg(&self.party_configs[usize::from(party)]);
        command
    }
}

/// Logging and a firewall that lets every member of the overlay in (MPyC's ports vary).
const COMMON: &str = "logging:\n  level: info\nfirewall:\n  outbound:\n    - port: any\n      \
                      proto: any\n      host: any\n  inbound:\n    - port: any\n      \
                      proto: any\n      host: any\n";

fn pki_section(ca: &Path, cert: &Path, key: &Path) -> String {
    format!(
        "pki:\n  ca: {}\n  cert: {}\n  key: {}\n",
        path_text(ca),
        path_text(cert),
        path_text(key)
    )
}
