//! Fuzzes what a hostile lobby server can send. The input is either raw bytes decoded as a
//! lobby snapshot (first byte 0), or byte edits applied to a genuine sealed snapshot (else).
//! Decoding and verification never panic, and an edited snapshot that still verifies must
//! describe exactly the genuine session: same parties, same order, same program and args.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::lobby::{TrustAnchors, VerifiedLobby};
use mpcnet_proto::offer::ProgramInfo;
use mpcnet_proto::{
    Identity, JoinSecret, Label, Lobby, LobbyOffer, LobbySnapshot, SignedJoin, SignedOffer,
};

struct Genuine {
    anchors: TrustAnchors,
    json: Vec<u8>,
    verified: VerifiedLobby,
}

fn genuine() -> &'static Genuine {
    static GENUINE: OnceLock<Genuine> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let label = |text: &str| Label::new("name", text).expect("label");
        let creator = Identity::from_secret_bytes(&[1; 32]);
        let secret = JoinSecret::from_bytes([2; 32]);
        let offer = LobbyOffer {
            lobby_id: secret.lobby_id(),
            name: label("fuzz"),
            parties: 3,
            creator: creator.public(),
            join_key: secret.join_key().public(),
            program: ProgramInfo::describe(label("mean.py"), b"print(1)"),
            args: vec!["--rounds".into(), "3".into()],
            relay_url: "https://127.0.0.1:7000/".parse().expect("url"),
        };
        let offer = SignedOffer::create(&offer, &creator).expect("offer");
        let creator_join = SignedJoin::new(&creator, label("alice"), &secret, &offer);
        let mut lobby = Lobby::create(offer.clone(), creator_join).expect("lobby");
        for (seed, name) in [(3u8, "bob"), (4, "carol")] {
            let party = Identity::from_secret_bytes(&[seed; 32]);
            lobby.admit(SignedJoin::new(&party, label(name), &secret, &offer)).expect("join");
        }
        let manifest = lobby.snapshot().seal(&creator);
        lobby.seal(manifest).expect("seal");
        let anchors = TrustAnchors {
            lobby_id: secret.lobby_id(),
            creator: creator.public(),
            join_key: secret.join_key().public(),
        };
        Genuine {
            anchors,
            json: serde_json::to_vec(lobby.snapshot()).expect("json"),
            verified: lobby.verified().clone(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let genuine = genuine();
    let bytes = match data.split_first() {
        Some((0, raw)) => raw.to_vec(),
        _ => {
            let mut edited = genuine.json.clone();
            for edit in data.get(1..).unwrap_or_default().chunks_exact(3) {
                let position = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % edited.len();
                edited[position] ^= edit[2];
            }
            edited
        }
    };
    let Ok(snapshot) = serde_json::from_slice::<LobbySnapshot>(&bytes) else {
        return;
    };
    if let Ok(verified) = snapshot.verify(&genuine.anchors) {
        assert_eq!(verified.parties, genuine.verified.parties, "forged parties accepted");
        assert_eq!(verified.offer, genuine.verified.offer, "forged offer accepted");
    }
    let _ = Lobby::restore(snapshot);
});
