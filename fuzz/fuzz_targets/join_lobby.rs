//! Fuzzes `POST /v1/lobbies/{id}/joins` as the server takes it: the body parses as a
//! `SignedJoin`, then `Lobby::admit` runs against a genuine lobby with one seat free, and
//! against the same lobby full and sealed. Inputs are bytes from outside (raw, or edits of
//! carol's genuine join: first byte 0 or 2..), or (first byte 1) a join that a holder of the
//! invite signs for a key and name the fuzzer picks, under the genuine offer or another one.
//! Nothing panics; a join admitted from outside is one a party signed, one an invite holder
//! signs is for its own key and the genuine offer, a full lobby seats no one new, and the
//! lobby left behind still verifies for every party.
#![no_main]

mod support;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::{Identity, JoinRecord, Label, Lobby, SignedJoin, SignedOffer};

/// Where the join under test came from.
enum Source {
    Outside,
    /// An invite holder signed it as this key.
    InviteHolder(Identity),
}

/// The join a holder of the invite signs as `data[0]`'s key (seed bytes all `data[0]`: 1 is
/// alice, 3 bob, 4 carol), named `data[2..]`, under the genuine offer (`data[1]` even) or one
/// the creator re-signed with other arguments.
fn invite_holders_join(data: &[u8]) -> Option<(SignedJoin, Identity)> {
    let genuine = support::genuine();
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

/// Admits `join` into a copy of `lobby` and checks what the server would then store.
fn admit(lobby: &Lobby, join: &SignedJoin, source: &Source) -> Option<(u16, JoinRecord)> {
    let genuine = support::genuine();
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
    let party = &lobby.verified().parties[usize::from(admission.index)];
    assert_eq!(party.key, record.party, "the seat given is another party's");
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

fuzz_target!(|data: &[u8]| {
    let genuine = support::genuine();
    let (join, source) = match data.split_first() {
        Some((1, rest)) => {
            let Some((join, party)) = invite_holders_join(rest) else {
                return;
            };
            (join, Source::InviteHolder(party))
        }
        _ => {
            let bytes = support::hostile_bytes(data, &support::json(&genuine.joins[2]));
            let Ok(join) = serde_json::from_slice::<SignedJoin>(&bytes) else {
                return;
            };
            (join, Source::Outside)
        }
    };
    let in_open = admit(&genuine.open, &join, &source);
    // A full or sealed lobby only gives back a seat already taken, the same as before.
    for lobby in [&genuine.full, &genuine.sealed] {
        let seated = lobby.verified().parties.clone();
        if let Some((index, record)) = admit(lobby, &join, &source) {
            assert_eq!(
                seated[usize::from(index)].key,
                record.party,
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
