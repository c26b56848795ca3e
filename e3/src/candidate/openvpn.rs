//! `openvpn`: a star. An OpenVPN server on the internet host (UDP, TLS with a certificate
//! authority made per network), every party a client with a fixed overlay address given by
//! the server per certificate name; parties reach each other through the server
//! (`client-to-client`), never directly.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::overlay::{ConfigFiles, Hub, Protocol, overlay_address, path_text};
use crate::netns;
use crate::scenario::Network;
use crate::topology::Lab;

/// The server's UDP port.
const PORT: u16 = 1194;

#[derive(Debug)]
pub struct Openvpn {
    server_config: PathBuf,
    party_configs: Vec<PathBuf>,
}

impl Openvpn {
    /// Makes the CA, the server's and every party's certificate, and the configs.
    pub fn configure(
        lab: &Lab,
        network: &Network,
        files: &mut ConfigFiles,
    ) -> anyhow::Result<Self> {
        let pki = Pki::new(&files.path("pki"))?;
        let (server_cert, server_key) = pki.sign("server", "serverAuth")?;
        let ccd = files.path("ccd");
        std::fs::create_dir_all(&ccd)?;
        let server = format!(
            "dev tun\nproto udp4\nlocal {}\nport {PORT}\ntopology subnet\n\
             server 10.99.0.0 255.255.255.0 nopool\nclient-config-dir {}\nccd-exclusive\n\
             client-to-client\nca {}\ncert {}\nkey {}\ndh none\nkeepalive 2 10\n\
             disable-dco\nverb 3\n",
            lab.internet_host.address,
            ccd.display(),
            pki.ca.display(),
            server_cert.display(),
            server_key.display()
        );
        let server_config = files.write("server.conf", &server)?;
        let mut party_configs = Vec::new();
        for party in 0..network.parties() {
            let name = format!("party{party}");
            files.write(
                &format!("ccd/{name}"),
                &format!("ifconfig-push {} 255.255.255.0\n", overlay_address(party)),
            )?;
            let (cert, key) = pki.sign(&name, "clientAuth")?;
            let client = format!(
                "client\ndev tun\nproto udp4\nremote {} {PORT}\nnobind\nca {}\ncert {}\n\
                 key {}\nremote-cert-tls server\nverify-x509-name server name\n\
                 disable-dco\nverb 3\n",
                lab.internet_host.address,
                pki.ca.display(),
                cert.display(),
                key.display()
            );
            party_configs.push(files.write(&format!("{name}.conf"), &client)?);
        }
        Ok(Self {
            server_config,
            party_configs,
        })
    }

    pub fn hub(&self, lab: &Lab) -> Hub {
        let mut command = lab.internet_host.namespace.command("openvpn");
        command.arg("--config").arg(&self.server_config);
        Hub {
            command,
            protocol: Protocol::Udp,
            port: PORT,
        }
    }

    pub fn party_command(&self, lab: &Lab, party: u16) -> tokio::process::Command {
        let mut command = lab.hosts[usize::from(party)].namespace.command("openvpn");
        command
            .arg("--config")
            .arg(&self.party_configs[usize::from(party)]);
        command
    }
}

/// A certificate authority made with `openssl` (P-256 keys), valid for two days.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    ca_key: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (ca, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (key_path, cert_path) = (path_text(&ca_key), path_text(&ca));
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(NEW_KEY);
        args.extend_from_slice(&["-days", "2", "-subj", "/CN=e3 lab CA"]);
        args.extend_from_slice(&["-keyout", &key_path, "-out", &cert_path]);
        netns::run("openssl", &args).context("making the CA")?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca,
            ca_key,
        })
    }

    /// A key and a certificate named `name` for `usage` (serverAuth or clientAuth).
    fn sign(&self, name: &str, usage: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let path = |extension: &str| self.dir.join(format!("{name}.{extension}"));
        let (key, request, extensions, cert) = (path("key"), path("csr"), path("ext"), path("crt"));
        let (key_path, request_path) = (path_text(&key), path_text(&request));
        let subject = format!("/CN={name}");
        let mut args = vec!["req"];
        args.extend_from_slice(NEW_KEY);
        args.extend_from_slice(&["-subj", &subject]);
        args.extend_from_slice(&["-keyout", &key_path, "-out", &request_path]);
        netns::run("openssl", &args)?;
        std::fs::write(
            &extensions,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage={usage}\n"
            ),
        )?;
        netns::run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &path_text(&request),
                "-CA",
                &path_text(&self.ca),
                "-CAkey",
                &path_text(&self.ca_key),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &path_text(&extensions),
                "-out",
                &path_text(&cert),
            ],
        )
        .with_context(|| format!("signing {name}'s certificate"))?;
        Ok((cert, key))
    }
}

/// `openssl req` options for a new unencrypted P-256 key.
const NEW_KEY: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];
