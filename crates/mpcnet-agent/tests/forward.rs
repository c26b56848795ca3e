//! Delivery over a real link: a stream is handed to MPyC's socket only when MPyC's first two bytes
//! name the party at the other end of the link, so no party can speak to MPyC as another.

use std::time::Duration;

use mpcnet_agent::forward;
use mpcnet_agent::sockets::SocketDir;
use tokio::io::AsyncReadExt as _;
use tokio::net::UnixListener;
use tokio_util::task::TaskTracker;

#[path = "support/linked_pair.rs"]
mod linked_pair;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_linked_partys_own_id_reaches_mpyc() {
    let (zero_to_one, one_to_zero, alive) = linked_pair::linked_pair().await.expect("linked");
    let sockets = SocketDir::create().expect("socket directory");
    let mpyc = UnixListener::bind(sockets.party(1)).expect("listener");
    tokio::spawn(forward::deliver_incoming(
        one_to_zero,
        sockets.party(1),
        Duration::from_secs(5),
        TaskTracker::new(),
    ));

    // Party 0 claims to be party 2: the stream is dropped, MPyC sees no connection.
    let (mut send, _recv) = zero_to_one.connection().open_bi().await.expect("stream");
    let impostor = linked_pair::new_stream(0, b"\x02\x00pickled lies");
    send.write_all(&impostor)
        .await
        .expect("opening and payload");
    let impostor = tokio::time::timeout(Duration::from_millis(500), mpyc.accept()).await;
    assert!(impostor.is_err(), "a stream claiming party 2 reached MPyC");

    // Party 0 as itself: delivered, header and payload intact.
    let (mut send, _recv) = zero_to_one.connection().open_bi().await.expect("stream");
    let honest = linked_pair::new_stream(1, b"\x00\x00hello");
    send.write_all(&honest).await.expect("opening and payload");
    let (mut delivered, _) = tokio::time::timeout(Duration::from_secs(5), mpyc.accept())
        .await
        .expect("delivered in time")
        .expect("accepted");
    let mut received = [0u8; 7];
    delivered.read_exact(&mut received).await.expect("read");
    assert_eq!(&received, b"\0\0hello");
    alive.close().await;
}
