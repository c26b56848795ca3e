//! Fuzzes `POST /v1/lobbies` as the server takes it: the body parses as a `CreateLobby`, then
//! goes through `Lobby::create` and the program check. Nothing panics, and a request the server
//! would store is the genuine creator's, program included (nobody else can sign for that lobby).
//! A first byte with its high bit set edits the named session's request (its seats and roles
//! signed in the offer, its program a bundle) instead of the open one's; a bundle passes the
//! server's check of every role's entry point only if it is the genuine one.
#![no_main]

mod support;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::Lobby;
use mpcnet_proto::api::CreateLobby;
use mpcnet_proto::lobby::TrustAnchors;
use mpcnet_proto::offer::ProgramInfo;

fuzz_target!(|data: &[u8]| {
    let genuine = support::pick(data);
    let bytes = support::hostile_bytes(data, &support::json(&genuine.create));
    let Ok(request) = serde_json::from_slice::<CreateLobby>(&bytes) else {
        return;
    };
    let Ok(lobby) = Lobby::create(request.offer.clone(), request.creator_join.clone()) else {
        return;
    };
    let verified = lobby.verified();
    assert_eq!(
        request.offer, genuine.offer,
        "an offer nobody signed was accepted"
    );
    assert_eq!(
        request.creator_join, genuine.joins[0],
        "a forged creator join was accepted"
    );
    assert_eq!(
        verified.parties.len(),
        1,
        "a new lobby holds its creator only"
    );
    assert_eq!(
        verified.parties[0].key, verified.offer.creator,
        "party 0 is the creator"
    );
    // What the server stores verifies for every holder of the invite, and restores as it was.
    let anchors = TrustAnchors {
        lobby_id: verified.offer.lobby_id,
        creator: verified.offer.creator,
        join_key: verified.offer.join_key,
    };
    assert!(
        lobby.snapshot().verify(&anchors).is_ok(),
        "stored a lobby parties refuse"
    );
    assert!(
        Lobby::restore(lobby.snapshot().clone()).is_ok(),
        "stored a lobby it cannot restore"
    );
    let program = &verified.offer.program;
    if ProgramInfo::describe(program.file_name.clone(), &request.program) == *program {
        assert_eq!(
            request.program, genuine.program,
            "another program passed the signed hash"
        );
    }
    if program.main.is_some()
        && mpcnet_proto::roles::verified_bundle(&request.program, &verified.offer).is_ok()
    {
        assert_eq!(
            request.program, genuine.program,
            "another bundle passed the check of its entry points"
        );
    }
});
