//! Two agents linked directly on loopback in one process, for the delivery test and the forward
//! benchmark (included by both with `#[path]`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mpcnet_agent::endpoint::{self, PathPolicy, RelayPlan, SessionRelay};
use mpcnet_agent::link::{Peer, PeerLink};
use mpcnet_agent::mesh;
use mpcnet_proto::Identity;

/// What must outlive a linked pair's links: the endpoints, and the meshes (whose drop closes
/// the links); and how party 0 dials party 1 again.
#[allow(dead_code)] // held; `redial` read by the tests that need it
pub struct Alive {
    endpoints: [iroh::Endpoint; 2],
    meshes: [mesh::Mesh; 2],
    pub redial: mpcnet_agent::control::Redial,
}

impl Alive {
    /// Closes both endpoints (their links with them), as an agent does at its end.
    #[allow(dead_code)] // hostile_peer.rs holds its pair to the end of the test instead
    pub async fn close(self) {
        for endpoint in &self.endpoints {
            endpoint.close().await;
        }
    }
}

/// Party 0 and party 1 linked directly; returns (0's link to 1, 1's link to 0) and what must
/// outlive them.
pub async fn linked_pair() -> anyhow::Result<(PeerLink, PeerLink, Alive)> {
    let relay = RelayPlan {
        relays: vec![SessionRelay {
            url: "https://127.0.0.1:1".parse()?,
            quic_port: None,
            pin: None,
        }],
    };
    let loopback = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let zero = endpoint::bind(
        &Identity::generate(),
        &relay,
        PathPolicy::DirectOnly,
        loopback,
        endpoint::DEFAULT_PATIENCE,
    )
    .await?;
    let one = endpoint::bind(
        &Identity::generate(),
        &relay,
        PathPolicy::DirectOnly,
        loopback,
        endpoint::DEFAULT_PATIENCE,
    )
    .await?;
    let book = HashMap::from([
        (zero.id(), zero.addr().ip_addrs().copied().collect()),
        (one.id(), one.addr().ip_addrs().copied().collect()),
    ]);
    let (_writer, addresses) = tokio::sync::watch::channel(book);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let zero_peers = [Peer {
        index: 1,
        name: "one".into(),
        key: one.id(),
    }];
    let one_peers = [Peer {
        index: 0,
        name: "zero".into(),
        key: zero.id(),
    }];
    let plan = |endpoint, me, peers| mesh::MeshPlan {
        endpoint,
        me,
        peers,
        relay: &relay,
        policy: PathPolicy::DirectOnly,
    };
    let (zero_links, one_links) = tokio::try_join!(
        mesh::link_all(
            plan(&zero, 0, &zero_peers),
            addresses.clone(),
            deadline,
            |_| {}
        ),
        mesh::link_all(
            plan(&one, 1, &one_peers),
            addresses.clone(),
            deadline,
            |_| {}
        ),
    )?;
    Ok((
        zero_links.links[0].clone(),
        one_links.links[0].clone(),
        Alive {
            redial: mpcnet_agent::control::Redial {
                endpoint: zero.clone(),
                relay,
                gone: mpcnet_agent::failover::GoneRelays::default(),
                policy: PathPolicy::DirectOnly,
                addresses,
            },
            endpoints: [zero, one],
            meshes: [zero_links, one_links],
        },
    ))
}

/// The bytes that start stream `number` on a link as the opener's agent sends them: its
/// opening (nothing delivered yet), then MPyC's first bytes `mpyc`.
#[allow(dead_code)] // the tests use it, the benchmark does not
pub fn new_stream(number: u32, mpyc: &[u8]) -> Vec<u8> {
    let opening = mpcnet_agent::wire::StreamOpening {
        stream: number,
        delivered: mpcnet_agent::wire::Position::default(),
    };
    [&opening.to_bytes()[..], mpyc].concat()
}
