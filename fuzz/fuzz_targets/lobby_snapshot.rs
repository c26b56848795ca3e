//! Fuzzes what a hostile lobby server can send. The input is either raw bytes decoded as a
//! lobby snapshot (first byte 0), or byte edits applied to a genuine sealed snapshot (else).
//! Decoding and verification never panic, and an edited snapshot that still verifies must
//! describe exactly the genuine session: same parties, same order, same program and args.
//! A first byte with its high bit set edits the named session (seats in its offer, joins in
//! the list's order) instead of the open one.
#![no_main]

mod support;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::{Lobby, LobbySnapshot};

use support::{genuine, hostile_bytes, json, pick};

/// The genuine sealed sessions' snapshots as a server sends them: the open one's, the named one's.
fn genuine_snapshot(named: bool) -> &'static [u8] {
    static JSON: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    let [open, named_one] = JSON.get_or_init(|| {
        [
            json(genuine().sealed.snapshot()),
            json(support::named().sealed.snapshot()),
        ]
    });
    if named { named_one } else { open }
}

fuzz_target!(|data: &[u8]| {
    let genuine = pick(data);
    let named = std::ptr::eq(genuine, support::named());
    let bytes = hostile_bytes(data, genuine_snapshot(named));
    let Ok(snapshot) = serde_json::from_slice::<LobbySnapshot>(&bytes) else {
        return;
    };
    if let Ok(verified) = snapshot.verify(&genuine.anchors) {
        let expected = genuine.sealed.verified();
        assert_eq!(
            verified.parties, expected.parties,
            "forged parties accepted"
        );
        assert_eq!(verified.offer, expected.offer, "forged offer accepted");
    }
    let _ = Lobby::restore(snapshot);
});
