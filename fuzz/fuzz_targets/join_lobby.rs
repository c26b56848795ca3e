//! Fuzzes `POST /v1/lobbies/{id}/joins` as the server takes it: the body parses as a
//! `SignedJoin`, then `Lobby::admit` runs against a genuine lobby with one seat free, and
//! against the same lobby full and sealed. Inputs are bytes from outside (raw, or edits of
//! carol's genuine join: first byte 0 or 2..), or (first byte 1) a join that a holder of the
//! invite signs for a key and name the fuzzer picks, under the genuine offer or another one,
//! or (first byte 3) a new party's join carrying an identity proof whose ID token's claims are
//! the fuzzer's JSON (a proof is checked, claims parsed, at admission). Nothing panics; a join admitted from outside is one a party signed, one an invite holder
//! signs is for its own key and the genuine offer, a full lobby seats no one new, and the
//! lobby left behind still verifies for every party. A first byte with its high bit set does
//! all this against the named session instead (bob's seat free, carol seated before him),
//! where an invite holder the list does not name is never seated. A proof admitted names this
//! party's nonce.
#![no_main]

mod support;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::identity_proof::proof_nonce;
use mpcnet_proto::{
    Identity, IdentityProof, JoinRecord, Label, Lobby, SignedJoin, SignedOffer,
};

/// Where the join under test came from.
enum Source {
    Outside,
    /// An invite holder signed it as this key.
    InviteHolder(Identity),
}

/// The join a holder of the invite signs as `data[0]`'s key (seed bytes all `data[0]`: 1 is
/// alice, 3 bob, 4 carol), named `data[2..]`, under the genuine offer (`data[1]` even) or one
/// the creator re-signed with other arguments.
fn invite_holders_join(genuine: &support::Genuine, data: &[u8]) -> Option<(SignedJoin, Identity)> {
    let (&seed, rest) = data.split_first()?;
    let (&which_offer, name) = rest.split_first()?;
    let party = Identity::from_secret_bytes(&[seed; 32]);
    let name = Label::new("name", std::str::from_utf8(name).ok()?).ok()?;
    let offer = if which_offer % 2 == 0 {
        genuine.offer.clone()
    } else {
        let mut other = genuine
            .offer
            .decode_unverified()
            .expect("genuine offer decodes");
        other.args = vec!["--rounds".into(), "1000".into()];
        SignedOffer::create(&other, &genuine.creator).expect("a valid offer")
    };
    let join = SignedJoin::new(&party, name, &genuine.secret, &offer);
    Some((join, party))
}

/// dave's join (a new key), carrying an identity proof whose ID token has `claims` as its
/// claims (header RS256, signature junk: admission checks the claims, not the signature).
fn join_with_proof(claims: &[u8]) -> (SignedJoin, Identity) {
    let genuine = support::genuine();
    let dave = Identity::from_secret_bytes(&[5; 32]);
    let b64 = |bytes: &[u8]| data_encoding::BASE64URL_NOPAD.encode(bytes);
    let proof = IdentityProof {
        issuer: "https://login.fuzz.example".into(),
        client_id: "fuzz".into(),
        id_token: format!("{}.{}.c2ln", b64(br#"{"alg":"RS256"}"#), b64(claims)),
    };
    let name = Label::new("name", "dave").expect("a fixed label is valid");
    let join = SignedJoin::with_identity(&dave, name, &genuine.secret, &genuine.offer, Some(proof));
    (join, dave)
}

/// Admits `join` into a copy of `lobby` and checks what the server would then store.
fn admit(
    genuine: &support::Genuine,
    lobby: &Lobby,
    join: &SignedJoin,
    source: &Source,
) -> Option<(u16, JoinRecord)> {
    let mut lobby = lobby.clone();
    let before = lobby.snapshot().clone();
    let admission = lobby.admit(join.clone()).ok()?;
    let record = join
        .verify(&genuine.anchors.join_key)
        .expect("an admitted join verifies");
    match source {
        Source::Outside => assert!(
            genuine.join_records.contains(&record),
            "a join record nobody signed was admitted"
        ),
        Source::InviteHolder(party) => assert_eq!(record.party, party.public()),
    }
    if let Some(proof) = &record.identity {
        let nonce = proof_nonce(&genuine.anchors.lobby_id, &record.party);
        assert!(
            proof.id_token.split('.').nth(1).is_some_and(|claims| {
                let claims = data_encoding::BASE64URL_NOPAD.decode(claims.as_bytes());
                claims.is_ok_and(|claims| String::from_utf8_lossy(&claims).contains(&nonce))
            }),
            "a proof without this party's nonce was admitted"
        );
    }
    let party = seated(&lobby, admission.index).expect("the seat given is taken");
    assert_eq!(party.key, record.party, "the seat given is another party's");
    let offer = &lobby.verified().offer;
    if offer.is_named() {
        assert_eq!(
            offer.seats[usize::from(admission.index)].key,
            record.party,
            "a named seat given to another key"
        );
    }
    if admission.repeated {
        assert_eq!(
            *lobby.snapshot(),
            before,
            "a repeated join changed the lobby"
        );
    } else {
        assert_eq!(lobby.snapshot().joins.len(), before.joins.len() + 1);
        assert_eq!(
            record.offer, genuine.join_records[0].offer,
            "seated under another offer"
        );
        assert_eq!(party.name, record.name);
    }
    let verified = lobby
        .snapshot()
        .verify(&genuine.anchors)
        .expect("parties accept the lobby");
    assert_eq!(
        verified.parties,
        lobby.verified().parties,
        "server and parties disagree"
    );
    assert!(
        Lobby::restore(lobby.snapshot().clone()).is_ok(),
        "stored a lobby it cannot restore"
    );
    Some((admission.index, record))
}

/// The party in seat `index` of `lobby`, if the seat is taken.
fn seated(lobby: &Lobby, index: u16) -> Option<&mpcnet_proto::Party> {
    lobby
        .verified()
        .parties
        .iter()
        .find(|party| party.index == index)
}

fuzz_target!(|data: &[u8]| {
    let genuine = support::pick(data);
    let (join, source) = match data.split_first() {
        Some((first, rest)) if first & 0x7f == 1 => {
            let Some((join, party)) = invite_holders_join(genuine, rest) else {
                return;
            };
            (join, Source::InviteHolder(party))
        }
        Some((3, claims)) => {
            let (join, party) = join_with_proof(claims);
            (join, Source::InviteHolder(party))
        }
        _ => {
            let bytes = support::hostile_bytes(data, &support::json(&genuine.free_join));
            let Ok(join) = serde_json::from_slice::<SignedJoin>(&bytes) else {
                return;
            };
            (join, Source::Outside)
        }
    };
    let in_open = admit(genuine, &genuine.open, &join, &source);
    // A full or sealed lobby only gives back a seat already taken, the same as before.
    for lobby in [&genuine.full, &genuine.sealed] {
        if let Some((index, record)) = admit(genuine, lobby, &join, &source) {
            assert_eq!(
                seated(lobby, index).map(|party| party.key),
                Some(record.party),
                "a full lobby seated a new party"
            );
            assert_eq!(
                in_open.as_ref().map(|(i, _)| *i),
                Some(index),
                "one join, two seats"
            );
        }
    }
});
