//! What the fuzz targets of server-side parsers share: one genuine session (fixed keys, so runs
//! are reproducible) in each state of its life, and the two ways a target turns fuzz input into
//! bytes to parse.
#![allow(dead_code)] // each target uses its own part

use std::sync::OnceLock;

use mpcnet_proto::api::CreateLobby;
use mpcnet_proto::lobby::TrustAnchors;
use mpcnet_proto::offer::ProgramInfo;
use mpcnet_proto::{
    Identity, JoinRecord, JoinSecret, Label, Lobby, LobbyOffer, SignedJoin, SignedManifest,
    SignedOffer,
};

/// A session of three (alice the creator, bob, carol), signed once with fixed keys.
pub struct Genuine {
    pub anchors: TrustAnchors,
    pub secret: JoinSecret,
    pub creator: Identity,
    /// bob and carol, in join order.
    pub joiners: [Identity; 2],
    pub offer: SignedOffer,
    pub program: Vec<u8>,
    /// alice's, bob's and carol's joins, in order.
    pub joins: [SignedJoin; 3],
    /// What those joins say, verified once.
    pub join_records: [JoinRecord; 3],
    pub create: CreateLobby,
    /// alice and bob have joined; carol's seat is free.
    pub open: Lobby,
    /// Every seat taken, not sealed.
    pub full: Lobby,
    pub manifest: SignedManifest,
    pub sealed: Lobby,
}

fn label(text: &str) -> Label {
    Label::new("name", text).expect("a fixed label is valid")
}

pub fn genuine() -> &'static Genuine {
    static GENUINE: OnceLock<Genuine> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let creator = Identity::from_secret_bytes(&[1; 32]);
        let secret = JoinSecret::from_bytes([2; 32]);
        let joiners = [
            Identity::from_secret_bytes(&[3; 32]),
            Identity::from_secret_bytes(&[4; 32]),
        ];
        let program = b"print('mean')\n".to_vec();
        let offer = LobbyOffer {
            lobby_id: secret.lobby_id(),
            name: label("fuzz"),
            parties: 3,
            creator: creator.public(),
            join_key: secret.join_key().public(),
            program: ProgramInfo::describe(label("mean.py"), &program),
            args: vec!["--rounds".into(), "3".into()],
            relay_url: "https://127.0.0.1:7000/"
                .parse()
                .expect("a fixed URL parses"),
            extra_relays: Vec::new(),
            require_identity: None,
        };
        let offer = SignedOffer::create(&offer, &creator).expect("the genuine offer is valid");
        let joins = [
            SignedJoin::new(&creator, label("alice"), &secret, &offer),
            SignedJoin::new(&joiners[0], label("bob"), &secret, &offer),
            SignedJoin::new(&joiners[1], label("carol"), &secret, &offer),
        ];
        let join_records = joins.clone().map(|join| {
            join.verify(&secret.join_key().public())
                .expect("a genuine join verifies")
        });
        let create = CreateLobby {
            offer: offer.clone(),
            creator_join: joins[0].clone(),
            program: program.clone(),
        };
        let mut open = Lobby::create(offer.clone(), joins[0].clone()).expect("created");
        open.admit(joins[1].clone()).expect("bob joins");
        let mut full = open.clone();
        full.admit(joins[2].clone()).expect("carol joins");
        let manifest = full.snapshot().seal(&creator);
        let mut sealed = full.clone();
        sealed.seal(manifest.clone()).expect("sealed");
        Genuine {
            anchors: TrustAnchors {
                lobby_id: secret.lobby_id(),
                creator: creator.public(),
                join_key: secret.join_key().public(),
            },
            secret,
            creator,
            joiners,
            offer,
            program,
            joins,
            join_records,
            create,
            open,
            full,
            manifest,
            sealed,
        }
    })
}

/// The bytes a target parses: `data` after its first byte as they are (first byte 0), or a
/// genuine body with `data[1..]` applied as edits (any other first byte): each 3 bytes XOR one
/// byte (2 bytes of position, 1 of mask), so edits reach deep into signed values.
pub fn hostile_bytes(data: &[u8], genuine_json: &[u8]) -> Vec<u8> {
    match data.split_first() {
        Some((0, raw)) => raw.to_vec(),
        _ => {
            let mut edited = genuine_json.to_vec();
            if edited.is_empty() {
                return edited;
            }
            for edit in data.get(1..).unwrap_or_default().chunks_exact(3) {
                let position = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % edited.len();
                edited[position] ^= edit[2];
            }
            edited
        }
    }
}

/// The JSON the server would receive for `value`.
pub fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain data serializes")
}

/// How a statement target got the signed statement it checks.
pub enum StatementSource {
    /// Bytes from outside (raw or an edited genuine statement): only a member could have signed them.
    Outside,
    /// Content the fuzzer chose, signed by bob, a member: what a malicious member can send.
    SignedByMember,
}

/// The signed statement a target checks: `data[1..]` as content that bob signs (first byte 1),
/// else [`hostile_bytes`] around `genuine` parsed as a signed statement.
pub fn hostile_statement<T: mpcnet_proto::PartyStatement>(
    data: &[u8],
    genuine: &mpcnet_proto::signed::Signed<T>,
) -> Option<(mpcnet_proto::signed::Signed<T>, StatementSource)> {
    match data.split_first() {
        Some((1, content)) => {
            let statement: T = serde_json::from_slice(content).ok()?;
            let bob = &self::genuine().joiners[0];
            let signed = mpcnet_proto::signed::Signed::sign(&statement, bob, T::PURPOSE);
            Some((signed, StatementSource::SignedByMember))
        }
        _ => {
            let bytes = hostile_bytes(data, &json(genuine));
            Some((
                serde_json::from_slice(&bytes).ok()?,
                StatementSource::Outside,
            ))
        }
    }
}
