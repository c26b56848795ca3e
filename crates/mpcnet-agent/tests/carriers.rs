//! Streams outlive their carriers: two agents linked on loopback move megabytes both ways
//! through a forward while the test ends the link's QUIC connection six times (closed by
//! either side, or replaced by a newer one while it lives). Every carrier ended must be
//! replaced (counted), both sides must hear each other on the newest, and the far end must
//! receive exactly the bytes sent, once, in order (compared by length and hash), both ways. And
//! a stream taken while the far MPyC is not listening yet outlives two carriers ended under it,
//! and one whose first bytes a silent carrier held back goes on on the next carrier.

use std::sync::atomic::Ordering;
use std::time::Duration;

use iroh::endpoint::SendStream;
use mpcnet_agent::link::PeerLink;
use mpcnet_agent::sockets::SocketDir;
use mpcnet_agent::wire::{Position, StreamAnswer};
use mpcnet_agent::{control, endpoint, finish, forward};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::task::TaskTracker;

#[path = "support/linked_pair.rs"]
mod linked_pair;

/// Bytes each side sends.
const TOTAL: usize = 24 * 1024 * 1024;
/// How many carriers the test ends: closed by party 0, closed by party 1, replaced by a newer
/// one, and again (the last is a replacement: a listener that did not follow a carrier replaced
/// under it would miss the newest one).
const KILLS: u64 = 6;

/// A deterministic stream of bytes that no shift of itself matches (a lost, repeated or
/// reordered piece changes the hash).
fn pattern(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// FNV-1a: enough to tell two byte streams apart here.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100000001b3)
    })
}

/// A new connection from party 0 to party 1, as the dialing side makes one.
async fn dial(redial: &control::Redial) -> iroh::endpoint::Connection {
    let me = redial.endpoint.id();
    let peer = redial
        .addresses
        .borrow()
        .keys()
        .copied()
        .find(|key| *key != me);
    let peer = peer.expect("party 1's key");
    let direct = redial.addresses.borrow()[&peer].clone();
    let addr = endpoint::peer_addr(peer, &redial.relay, &direct, redial.policy);
    let dialed = redial.endpoint.connect(addr, endpoint::ALPN).await;
    dialed.expect("dialed")
}

/// Keeps both sides of the pair's link as a run does (party 0 dials again), with their
/// one-way streams listened to, until the returned handles drop.
fn keep(
    zero_to_one: &PeerLink,
    one_to_zero: &PeerLink,
    alive: &linked_pair::Alive,
    patience: Duration,
) -> impl Sized + use<> {
    let keepers = [
        control::keep(zero_to_one.clone(), Some(alive.redial.clone()), patience),
        control::keep(one_to_zero.clone(), None, patience),
    ];
    let one_way = finish::listen(&[zero_to_one.clone(), one_to_zero.clone()]);
    (keepers, one_way)
}

/// Sends `outgoing` on `mpyc` while reading until the peer closes; returns what it read.
async fn exchange(mpyc: UnixStream, outgoing: Vec<u8>) -> Vec<u8> {
    let (mut read, mut write) = mpyc.into_split();
    let sending = async move {
        for piece in outgoing.chunks(4096) {
            write.write_all(piece).await.expect("write");
        }
        write.shutdown().await.expect("shutdown");
    };
    let receiving = async move {
        let mut received = Vec::new();
        read.read_to_end(&mut received).await.expect("read");
        received
    };
    tokio::join!(sending, receiving).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_arrive_once_in_order_while_carriers_are_killed() {
    let (zero_to_one, one_to_zero, alive) = linked_pair::linked_pair().await.expect("linked");
    let patience = Duration::from_secs(60);
    let kept = keep(&zero_to_one, &one_to_zero, &alive, patience);
    let pumps = TaskTracker::new();

    // Party 1's "MPyC": takes one connection, answers with its own pattern.
    let sockets = SocketDir::create().expect("socket directory");
    let mpyc = UnixListener::bind(sockets.party(1)).expect("listener");
    tokio::spawn(forward::deliver_incoming(
        one_to_zero.clone(),
        sockets.party(1),
        patience,
        pumps.clone(),
    ));
    let forward = UnixListener::bind(sockets.party(0)).expect("listener");
    tokio::spawn(forward::serve_outgoing(
        forward,
        zero_to_one.clone(),
        pumps.clone(),
    ));

    // Party 0's MPyC starts with its id (0, u16 LE), as MPyC does.
    let mut from_zero = vec![0u8, 0];
    from_zero.extend(pattern(1, TOTAL));
    let from_one = pattern(2, TOTAL);
    let party_one = tokio::spawn({
        let from_one = from_one.clone();
        async move {
            let (delivered, _) = mpyc.accept().await.expect("delivered");
            exchange(delivered, from_one).await
        }
    });
    let party_zero = tokio::spawn({
        let from_zero = from_zero.clone();
        let forward = sockets.party(0);
        async move {
            let mpyc = UnixStream::connect(forward).await.expect("connect");
            exchange(mpyc, from_zero).await
        }
    });

    // End the carrier under the transfer, each time once another share of the bytes has
    // arrived at party 1 and the link carries again.
    let mut carriers = zero_to_one.carriers();
    for kill in 0..KILLS {
        let share = (kill as usize + 1) * TOTAL / (KILLS as usize + 2);
        let arrived = || one_to_zero.counters.received.load(Ordering::Relaxed) as usize;
        tokio::time::timeout(Duration::from_secs(60), async {
            while arrived() < share {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the transfer moves between kills");
        assert!(
            arrived() < from_zero.len(),
            "the transfer to party 1 ended before kill {kill}: the test proves nothing"
        );
        match kill % 3 {
            0 => zero_to_one
                .connection()
                .close(0x99u32.into(), b"killed by the test"),
            1 => one_to_zero
                .connection()
                .close(0x99u32.into(), b"killed by the test"),
            // As the dialing side does when a carrier stopped carrying: a newer connection
            // replaces one that still lives.
            _ => zero_to_one.replace_carrier(dial(&alive.redial).await),
        }
        let carried = carriers.wait_for(|carrier| carrier.number > kill);
        tokio::time::timeout(Duration::from_secs(30), carried)
            .await
            .expect("a new carrier within 30 s")
            .expect("link alive");
    }

    let (at_zero, at_one) = tokio::time::timeout(Duration::from_secs(120), async {
        (
            party_zero.await.expect("party 0"),
            party_one.await.expect("party 1"),
        )
    })
    .await
    .expect("the transfer ends");
    // At least one new carrier per kill (a loaded machine may also see a carrier go quiet for
    // the 5 s that make the dialing side replace it).
    assert!(
        zero_to_one.carriers().borrow().number >= KILLS,
        "an ended carrier was not replaced"
    );
    // Both sides hear each other's control stream on the newest carrier.
    tokio::time::sleep(control::HEARTBEAT * 2).await;
    for link in [&zero_to_one, &one_to_zero] {
        eprintln!("{}: quiet for {:?}", link.peer, link.quiet_for());
        assert!(
            link.quiet_for() < control::HEARTBEAT * 2,
            "{}'s heartbeats are not heard on the newest carrier",
            link.peer
        );
    }
    assert_eq!(
        at_one.len(),
        from_zero.len(),
        "bytes lost or repeated towards party 1"
    );
    assert_eq!(
        hash(&at_one),
        hash(&from_zero),
        "bytes changed towards party 1"
    );
    assert_eq!(
        at_zero.len(),
        from_one.len(),
        "bytes lost or repeated towards party 0"
    );
    assert_eq!(
        hash(&at_zero),
        hash(&from_one),
        "bytes changed towards party 0"
    );
    assert!(zero_to_one.ended_for().is_none() && one_to_zero.ended_for().is_none());
    drop(kept);
    alive.close().await;
}

/// Closes `link`'s carrier and waits for the link's carrier number `number`.
async fn end_carrier(link: &PeerLink, number: u64) {
    link.connection()
        .close(0x99u32.into(), b"killed by the test");
    let mut carriers = link.carriers();
    let carried = carriers.wait_for(|carrier| carrier.number >= number);
    tokio::time::timeout(Duration::from_secs(30), carried)
        .await
        .expect("a new carrier within 30 s")
        .expect("link alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_waiting_for_mpyc_to_listen_survives_its_carrier_ending() {
    let (zero_to_one, one_to_zero, alive) = linked_pair::linked_pair().await.expect("linked");
    let patience = Duration::from_secs(60);
    let kept = keep(&zero_to_one, &one_to_zero, &alive, patience);
    let pumps = TaskTracker::new();
    // Party 1's MPyC socket, not listening yet (as when party 1's MPyC starts later).
    let sockets = SocketDir::create().expect("socket directory");
    tokio::spawn(forward::deliver_incoming(
        one_to_zero.clone(),
        sockets.party(1),
        patience,
        pumps.clone(),
    ));
    let forward = UnixListener::bind(sockets.party(0)).expect("listener");
    tokio::spawn(forward::serve_outgoing(forward, zero_to_one.clone(), pumps));

    // Party 0's MPyC connects; party 1 takes the stream and waits for its MPyC's first bytes.
    let mut mpyc_zero = UnixStream::connect(sockets.party(0))
        .await
        .expect("connect");
    let admitted = async {
        while one_to_zero.streams().next == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), admitted)
        .await
        .expect("party 1 took the stream");
    // The carrier ends before the first bytes came, and again (from the other side) while
    // party 1 waits for its MPyC to listen.
    end_carrier(&zero_to_one, 1).await;
    mpyc_zero.write_all(b"\0\0hello").await.expect("write");
    tokio::time::sleep(Duration::from_millis(500)).await;
    end_carrier(&one_to_zero, 2).await;
    assert!(
        one_to_zero.streams().live.is_empty(),
        "party 1 delivered the stream before its MPyC listened: the test proves nothing"
    );

    let mpyc = UnixListener::bind(sockets.party(1));
    let (mut delivered, _) =
        tokio::time::timeout(Duration::from_secs(30), mpyc.expect("bind").accept())
            .await
            .expect("the stream reaches MPyC once it listens")
            .expect("accepted");
    let mut greeting = [0u8; 7];
    delivered.read_exact(&mut greeting).await.expect("read");
    assert_eq!(&greeting, b"\0\0hello");
    delivered.write_all(b"back").await.expect("write");
    let mut answer = [0u8; 4];
    let answered = tokio::time::timeout(Duration::from_secs(30), mpyc_zero.read_exact(&mut answer));
    answered.await.expect("the answer comes").expect("read");
    assert_eq!(&answer, b"back");
    drop(kept);
    alive.close().await;
}

/// Opens stream 0 on `connection` as party 0's agent does (its opening, nothing delivered yet)
/// and reads party 1's answer, which must be that nothing is delivered yet either.
async fn open_first_stream(connection: &iroh::endpoint::Connection) -> SendStream {
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    send.write_all(&linked_pair::new_stream(0, b""))
        .await
        .expect("opening");
    let mut answer = [0u8; StreamAnswer::LEN];
    let read = tokio::time::timeout(Duration::from_secs(10), recv.read_exact(&mut answer));
    read.await
        .expect("an answer in time")
        .expect("an answer, not a broken stream");
    let answer = StreamAnswer::parse(&answer).expect("an answer");
    assert_eq!(answer.delivered, Position::default());
    send
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_first_bytes_a_silent_carrier_held_back_goes_on_on_the_next() {
    let (zero_to_one, one_to_zero, alive) = linked_pair::linked_pair().await.expect("linked");
    let sockets = SocketDir::create().expect("socket directory");
    let mpyc = UnixListener::bind(sockets.party(1)).expect("listener");
    let patience = Duration::from_secs(60);
    let pumps = TaskTracker::new();
    tokio::spawn(forward::deliver_incoming(
        one_to_zero,
        sockets.party(1),
        patience,
        pumps,
    ));

    // Party 1 answers stream 0's opening, then the carrier carries nothing more for longer
    // than the header timeout, as when the relay under it dies: MPyC's first bytes are lost
    // with it, and the carrier is not closed until a newer one replaces it.
    let _silent = open_first_stream(&zero_to_one.connection()).await;
    tokio::time::sleep(forward::HEADER_TIMEOUT + Duration::from_secs(1)).await;
    zero_to_one.replace_carrier(dial(&alive.redial).await);

    // Party 0's agent opens the stream again on the new carrier and sends MPyC's bytes there.
    let mut send = open_first_stream(&zero_to_one.connection()).await;
    send.write_all(b"\0\0hello").await.expect("write");
    let accepted = tokio::time::timeout(Duration::from_secs(10), mpyc.accept()).await;
    let (mut delivered, _) = accepted
        .expect("the stream reaches MPyC")
        .expect("accepted");
    let mut greeting = [0u8; 7];
    delivered.read_exact(&mut greeting).await.expect("read");
    assert_eq!(&greeting, b"\0\0hello");
    alive.close().await;
}
