//! Two agents linked directly on loopback in one process, for the delivery test and the forward
//! benchmark (included by both with `#[path]`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mpcnet_agent::endpoint::{self, PathPolicy, RelayPlan};
use mpcnet_agent::link::{Peer, PeerLink};
use mpcnet_agent::mesh;
use mpcnet_proto::Identity;

/// Party 0 and party 1 linked directly; returns (0's link to 1, 1's link to 0) and the
/// endpoints, which must outlive the links.
pub async fn linked_pair() -> anyhow::Result<(PeerLink, PeerLink, [iroh::Endpoint; 2])> {
    let relay = RelayPlan {
        url: "https://127.0.0.1:1".parse()?,
        quic_port: None,
        certificate: None,
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
    // The meshes' refusing tasks end here: these tests make their own connections.
    Ok((
        zero_links.links[0].clone(),
        one_links.links[0].clone(),
        [zero, one],
    ))
}
