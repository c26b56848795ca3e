//! Fuzzes `PUT /v1/lobbies/{id}/manifest` as the server takes it: the body parses as a
//! `SignedManifest`, then `Lobby::seal` runs against the genuine full lobby and the genuine
//! sealed one. Nothing panics; the only seal stored is the creator's own, and the sealed lobby
//! verifies for every party with the genuine fingerprint. A first byte with its high bit set
//! edits the named session's manifest (its joins in the list's order) instead.
#![no_main]

mod support;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::{Lobby, SignedManifest};

fuzz_target!(|data: &[u8]| {
    let genuine = support::pick(data);
    let bytes = support::hostile_bytes(data, &support::json(&genuine.manifest));
    let Ok(manifest) = serde_json::from_slice::<SignedManifest>(&bytes) else {
        return;
    };
    for lobby in [&genuine.full, &genuine.sealed] {
        let mut lobby = lobby.clone();
        if lobby.seal(manifest.clone()).is_err() {
            continue;
        }
        assert_eq!(
            manifest.payload(),
            genuine.manifest.payload(),
            "a forged seal was stored"
        );
        let verified = lobby
            .snapshot()
            .verify(&genuine.anchors)
            .expect("parties accept the seal");
        let sealed = verified.sealed.expect("the lobby is sealed");
        assert_eq!(
            sealed.fingerprint,
            genuine.manifest.fingerprint(),
            "another session sealed"
        );
        assert_eq!(verified.parties, genuine.sealed.verified().parties);
        assert!(
            Lobby::restore(lobby.snapshot().clone()).is_ok(),
            "stored a lobby it cannot restore"
        );
    }
});
