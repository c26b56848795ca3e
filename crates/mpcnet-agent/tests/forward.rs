//! Delivery over a real link: a stream is handed to MPyC's port only when its MPyC header names
//! the party at the other end of the link, so no party can speak to MPyC as another.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mpcnet_agent::endpoint::{self, PathPolicy, RelayPlan};
use mpcnet_agent::link::{Peer, PeerLink};
use mpcnet_agent::{forward, mesh};
use mpcnet_proto::Identity;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// Party 0 and party 1 linked directly on loopback; returns (0's link to 1, 1's link to 0).
async fn linked_pair() -> (PeerLink, PeerLink, [iroh::Endpoint; 2]) {
    let relay = RelayPlan {
        url: "https://127.0.0.1:1".parse().expect("url"),
        quic_port: None,
        certificate: None,
    };
    let loopback = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let zero = endpoint::bind(
        &Identity::generate(),
        &relay,
        PathPolicy::DirectOnly,
        loopback,
    )
    .await
    .expect("bind");
    let one = endpoint::bind(
        &Identity::generate(),
        &relay,
        PathPolicy::DirectOnly,
        loopback,
    )
    .await
    .expect("bind");
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
    )
    .expect("linked");
    (zero_links[0].clone(), one_links[0].clone(), [zero, one])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_linked_partys_own_id_reaches_mpyc() {
    let (zero_to_one, one_to_zero, _endpoints) = linked_pair().await;
    let mpyc = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("listener");
    let port = mpyc.local_addr().expect("address").port();
    tokio::spawn(forward::deliver_incoming(
        one_to_zero,
        port,
        Duration::from_secs(5),
        TaskTracker::new(),
    ));

    // Party 0 claims to be party 2: the stream is dropped, MPyC sees no connection.
    let (mut send, _recv) = zero_to_one.connection.open_bi().await.expect("stream");
    send.write_all(&[1, 2, 0]).await.expect("header");
    send.write_all(b"pickled lies").await.expect("payload");
    let impostor = tokio::time::timeout(Duration::from_millis(500), mpyc.accept()).await;
    assert!(impostor.is_err(), "a stream claiming party 2 reached MPyC");

    // Party 0 as itself: delivered, header and payload intact.
    let (mut send, _recv) = zero_to_one.connection.open_bi().await.expect("stream");
    send.write_all(&[1, 0, 0]).await.expect("header");
    send.write_all(b"hello").await.expect("payload");
    let (mut delivered, _) = tokio::time::timeout(Duration::from_secs(5), mpyc.accept())
        .await
        .expect("delivered in time")
        .expect("accepted");
    let mut received = [0u8; 7];
    delivered.read_exact(&mut received).await.expect("read");
    assert_eq!(&received, b"\0\0hello");
}
