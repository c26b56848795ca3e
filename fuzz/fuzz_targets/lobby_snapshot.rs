//! Fuzzes what a hostile lobby server can send. The input is either raw bytes decoded as a
//! lobby snapshot (first byte 0), or byte edits applied to a genuine sealed snapshot (else).
//! Decoding and verification never panic, and an edited snapshot that still verifies must
//! describe exactly the genuine session: same parties, same order, same program and args.
#![no_main]

mod support;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::{Lobby, LobbySnapshot};

use support::{genuine, hostile_bytes, json};

/// The genuine sealed session's snapshot as a server sends it.
fn genuine_snapshot() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| json(genuine().sealed.snapshot()))
}

fuzz_target!(|data: &[u8]| {
    let genuine = genuine();
    let bytes = hostile_bytes(data, genuine_snapshot());
    let Ok(snapshot) = serde_json::from_slice::<LobbySnapshot>(&bytes) else {
        return;
    };
    if let Ok(verified) = snapshot.verify(&genuine.anchors) {
        let expected = genuine.sealed.verified();
        assert_eq!(verified.parties, expected.parties, "forged parties accepted");
        assert_eq!(verified.offer, expected.offer, "forged offer accepted");
    }
    let _ = Lobby::restore(snapshot);
});
