//! `wireguard`: a static WireGuard mesh (userspace wireguard-go over TUN), written the way the
//! design notes' example has a person write it: a key pair per party, and per peer its public
//! key, its overlay address, its endpoint where one is reachable and a keepalive. WireGuard has
//! no NAT traversal and no relay: a peer behind a NAT has no endpoint the others can dial, so
//! two parties behind different NATs never reach each other.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;

use super::overlay::{ConfigFiles, OVERLAY_PREFIX, overlay_address, spawn_logged, udp_blocked};
use crate::netns;
use crate::scenario::Network;
use crate::topology::Lab;

/// Every party's UDP port.
const LISTEN_PORT: u16 = 51_820;
/// Where wireguard-go puts its control sockets: shared by every namespace of the machine.
const SOCKET_DIR: &str = "/var/run/wireguard";

/// The serial number of the next mesh this process configures (part of interface names).
static NEXT_MESH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[derive(Debug)]
pub struct Wireguard {
    /// Each party's config file.
    configs: Vec<PathBuf>,
    /// Each party's interface name, unique on the machine: wireguard-go's control socket is
    /// named after it in a folder every namespace shares.
    interfaces: Vec<String>,
}

impl Wireguard {
    pub fn configure(
        lab: &Lab,
        network: &Network,
        files: &mut ConfigFiles,
    ) -> anyhow::Result<Self> {
        let parties = network.parties();
        let mesh = NEXT_MESH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let interfaces: Vec<String> = (0..parties)
            .map(|party| format!("wg{}-{mesh}-{party}", std::process::id()))
            .collect();
        if let Some(long) = interfaces.iter().find(|name| name.len() > 15) {
            bail!("interface name {long} is over 15 characters");
        }
        let mut public_keys = Vec::new();
        let mut private_keys = Vec::new();
        for _ in 0..parties {
            let private = netns::run("wg", &["genkey"])?.trim().to_string();
            let public = netns::run_with_input("wg", &["pubkey"], Some(&private))?;
            private_keys.push(private);
            public_keys.push(public.trim().to_string());
        }
        let mut configs = Vec::new();
        for me in 0..parties {
            let mut config = format!(
                "[Interface]\nPrivateKey = {}\nListenPort = {LISTEN_PORT}\n",
                private_keys[usize::from(me)]
            );
            for peer in (0..parties).filter(|&peer| peer != me) {
                config.push_str(&format!(
                    "\n[Peer]\nPublicKey = {}\nAllowedIPs = {}/32\n",
                    public_keys[usize::from(peer)],
                    overlay_address(peer)
                ));
                if reachable_endpoint(network, me, peer) {
                    config.push_str(&format!(
                        "Endpoint = {}:{LISTEN_PORT}\n",
                        lab.hosts[usize::from(peer)].address
                    ));
                }
                // Keeps this party's NAT mapping open, so a peer it dialled can answer.
                config.push_str("PersistentKeepalive = 25\n");
            }
            configs.push(files.write(&format!("party{me}.conf"), &config)?);
        }
        Ok(Self {
            configs,
            interfaces,
        })
    }

    /// Starts wireguard-go, and once its control socket is there, loads the config and brings
    /// the interface up with the party's overlay address.
    pub async fn start_party(
        &self,
        lab: &Lab,
        party: u16,
        log: &Path,
    ) -> anyhow::Result<tokio::process::Child> {
        let namespace = &lab.hosts[usize::from(party)].namespace;
        let interface = &self.interfaces[usize::from(party)];
        let mut command = namespace.command("wireguard-go");
        command
            .args(["-f", interface])
            .env("WG_PROCESS_FOREGROUND", "1")
            .env("LOG_LEVEL", "verbose");
        let mut daemon = spawn_logged(command, log)?;
        let socket = Path::new(SOCKET_DIR).join(format!("{interface}.sock"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            if let Some(status) = daemon.try_wait()? {
                bail!("wireguard-go exited ({status}) before making {interface}");
            }
            if Instant::now() > deadline {
                bail!("wireguard-go made no {} in 5 s", socket.display());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let config = self.configs[usize::from(party)]
            .to_string_lossy()
            .into_owned();
        namespace.exec("wg", &["setconf", interface, &config])?;
        let address = format!("{}/{OVERLAY_PREFIX}", overlay_address(party));
        namespace.ip(&["addr", "add", &address, "dev", interface])?;
        namespace.ip(&["link", "set", interface, "up"])?;
        Ok(daemon)
    }

    /// Removes the control sockets a killed wireguard-go leaves behind.
    pub fn remove_sockets(&self) {
        for interface in &self.interfaces {
            let _ = std::fs::remove_file(Path::new(SOCKET_DIR).join(format!("{interface}.sock")));
        }
    }
}

/// Can `me` be given an endpoint for `peer` that it can dial: on one LAN, or a public peer?
fn reachable_endpoint(network: &Network, me: u16, peer: u16) -> bool {
    network.same_site(me, peer) || !network.party_profile(peer).is_nat()
}

/// Why a WireGuard mesh cannot connect `a` and `b`, if it cannot.
pub fn no_route(network: &Network, a: u16, b: u16) -> Option<String> {
    if network.same_site(a, b) {
        return None;
    }
    if let Some(blocked) = udp_blocked(network, a, b, "WireGuard runs over UDP only") {
        return Some(blocked);
    }
    (network.party_profile(a).is_nat() && network.party_profile(b).is_nat()).then(|| {
        "both behind NAT: neither has an endpoint the other can dial, and WireGuard has no \
         NAT traversal and no relay"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Profile;

    #[test]
    fn only_pairs_with_a_dialable_endpoint_connect() {
        use Profile::{Home, None as Public, Symmetric, TcpOnly};
        // Parties 0 and 1 share the first home LAN; the second home site stays empty.
        let profiles = [Home, Home, Public, Symmetric, TcpOnly];
        let network = Network::of_profiles(&profiles, vec![0, 0, 2, 3, 4]);
        assert_eq!(no_route(&network, 0, 1), None, "one LAN");
        assert_eq!(no_route(&network, 0, 2), None, "a public peer");
        assert_eq!(no_route(&network, 2, 3), None, "a public peer");
        let nat = no_route(&network, 0, 3).expect("two NATs");
        assert!(nat.starts_with("both behind NAT"), "{nat}");
        let udp = no_route(&network, 2, 4).expect("UDP blocked");
        assert!(udp.starts_with("party 4's firewall drops UDP"), "{udp}");
        assert!(reachable_endpoint(&network, 0, 1) && reachable_endpoint(&network, 3, 2));
        assert!(!reachable_endpoint(&network, 2, 3));
    }
}
