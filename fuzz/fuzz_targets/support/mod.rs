//! What the fuzz targets of server-side parsers share: two genuine sessions (fixed keys, so runs
//! are reproducible), one open to any invite holder and one named for its three parties (an
//! asymmetric bundle: its offer has roles), each in every state of its life, and the two ways a
//! target turns fuzz input into bytes to parse.
#![allow(dead_code)] // each target uses its own part

use std::sync::OnceLock;

use mpcnet_proto::api::CreateLobby;
use mpcnet_proto::lobby::TrustAnchors;
use mpcnet_proto::offer::ProgramInfo;
use mpcnet_proto::{
    Bundle, BundlePath, Identity, JoinRecord, Role, JoinSecret, Label, Lobby, LobbyOffer, SignedJoin, SignedManifest,
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
    /// Two have joined, one seat is free: alice and bob in the open session, alice and carol
    /// (who came first) in the named one.
    pub open: Lobby,
    /// The join of the party whose seat is free in `open` (carol's, or bob's in the named one).
    pub free_join: SignedJoin,
    /// Every seat taken, not sealed.
    pub full: Lobby,
    pub manifest: SignedManifest,
    pub sealed: Lobby,
}

fn label(text: &str) -> Label {
    Label::new("name", text).expect("a fixed label is valid")
}

/// The genuine session open to any holder of its invite.
pub fn genuine() -> &'static Genuine {
    static GENUINE: OnceLock<Genuine> = OnceLock::new();
    GENUINE.get_or_init(|| build(false))
}

/// The genuine session named for alice, bob and carol (the same keys, its own join secret),
/// whose program is a bundle with roles: alice runs lead.py, the others main.py.
pub fn named() -> &'static Genuine {
    static NAMED: OnceLock<Genuine> = OnceLock::new();
    NAMED.get_or_init(|| build(true))
}

/// The genuine session a fuzz input is about: the named one when its first byte has the high
/// bit set, else the open one (so byte 0, raw input, stays as it was).
pub fn pick(data: &[u8]) -> &'static Genuine {
    match data.first() {
        Some(first) if first & 0x80 != 0 => named(),
        _ => genuine(),
    }
}

fn build(named: bool) -> Genuine {
    let creator = Identity::from_secret_bytes(&[1; 32]);
    let secret = JoinSecret::from_bytes([if named { 5 } else { 2 }; 32]);
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
        seats: Vec::new(),
        require_identity: None,
            roles: Vec::new(),
    };
    let mut offer = offer;
    let mut program = program;
    if named {
        (program, offer.program, offer.roles) = bundle_with_roles();
        offer.seats = [&creator, &joiners[0], &joiners[1]]
            .map(|party| mpcnet_proto::Seat {
                key: party.public(),
                name: Some(label("listed")),
            })
            .to_vec();
    }
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
    let (first, free) = if named { (2, 1) } else { (1, 2) };
    let free_join = joins[free].clone();
    let mut open = Lobby::create(offer.clone(), joins[0].clone()).expect("created");
    open.admit(joins[first].clone())
        .expect("the first joiner joins");
    let mut full = open.clone();
    full.admit(joins[free].clone())
        .expect("the second joiner joins");
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
        free_join,
        full,
        manifest,
        sealed,
    }
}

/// A bundle of main.py and lead.py, its description (run from main.py) and its one role:
/// seat 0 runs lead.py with arguments of its own.
fn bundle_with_roles() -> (Vec<u8>, ProgramInfo, Vec<Role>) {
    let path = |text: &str| BundlePath::new(text).expect("a fixed path is plain");
    let files = [("main.py", "print('main')\n"), ("lead.py", "print('lead')\n")];
    let bundle = Bundle::from_files(files.map(|(name, text)| (path(name), text.into())))
        .expect("a fixed bundle")
        .to_bytes();
    let info = ProgramInfo::describe_bundle(label("roles"), &bundle, path("main.py"));
    let lead = Role {
        seats: vec![0],
        main: path("lead.py"),
        args: Some(vec!["--lead".into()]),
    };
    (bundle, info, vec![lead])
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
