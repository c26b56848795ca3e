//! The creator's offer: how many parties, which program (by hash), its public arguments
//! and the relays to use, signed by the creator when the lobby is made.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::bundle::BundlePath;
use crate::digest::Sha256Digest;
use crate::identity::{Identity, PublicKey, SigningPurpose};
use crate::identity_proof::IdentityRequirement;
use crate::invite::ServerAddress;
use crate::join::LobbyId;
use crate::label::Label;
use crate::roles::Role;
use crate::seats::Seat;
use crate::signed::{Signed, VerifyError};

/// The fewest parties an MPC session can have.
pub const MIN_PARTIES: u16 = 2;
/// The most parties a lobby accepts (MPyC itself scales further, but sessions of this size are exceptional).
pub const MAX_PARTIES: u16 = 64;
/// The most public program arguments an offer carries.
pub const MAX_ARGS: usize = 64;
/// The most characters of one public program argument.
pub const MAX_ARG_CHARS: usize = 1024;
/// The most relays an offer names besides the lobby server's own: each is one more relay
/// connection for every party.
pub const MAX_EXTRA_RELAYS: usize = 4;

/// The program every party runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramInfo {
    /// The file name the creator attached (no directories); a bundle's folder name.
    pub file_name: Label,
    pub sha256: Sha256Digest,
    pub size: u64,
    /// Set when the program is a bundle (`bundle`: a folder packed): its entry point inside.
    /// Absent from the signed bytes for a single file, so such an offer (the web page's too)
    /// is the same bytes as before bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<BundlePath>,
}

impl ProgramInfo {
    /// Describes the single file `contents` attached as `file_name`.
    pub fn describe(file_name: Label, contents: &[u8]) -> Self {
        Self {
            file_name,
            sha256: Sha256Digest::of(contents),
            size: contents.len() as u64,
            main: None,
        }
    }

    /// Describes the packed bundle `bytes` of the folder `file_name`, run from `main`.
    pub fn describe_bundle(file_name: Label, bytes: &[u8], main: BundlePath) -> Self {
        Self {
            main: Some(main),
            ..Self::describe(file_name, bytes)
        }
    }

    /// Whether `contents` are the bytes described (size and SHA-256).
    pub fn matches(&self, contents: &[u8]) -> bool {
        self.size == contents.len() as u64 && self.sha256 == Sha256Digest::of(contents)
    }
}

/// What the creator proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LobbyOffer {
    pub lobby_id: LobbyId,
    /// The session's name, shown to every party.
    pub name: Label,
    /// Parties in all, the creator included.
    pub parties: u16,
    pub creator: PublicKey,
    /// The public half of the key derived from the join secret.
    pub join_key: PublicKey,
    pub program: ProgramInfo,
    /// Public arguments every party passes to the program, after MPyC's own flags.
    pub args: Vec<String>,
    /// The mediator's relay, for peers that cannot reach each other directly.
    pub relay_url: Url,
    /// More relays (`mpcnet relay` on other hosts), each with its certificate pin, that links
    /// move to when a relay dies. Absent from the signed bytes when empty, so an offer made
    /// before they existed (or by the web page) is the same bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_relays: Vec<ServerAddress>,
    /// The named seats, one per party, the creator's first: only these keys may join, each in
    /// its seat. Empty (and absent from the signed bytes) for an open session, which anyone
    /// holding the invite may join.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seats: Vec<Seat>,
    /// The identity proof every party must attach (an issuer, maybe an email pattern). Absent
    /// from the signed bytes when not required, like `extra_relays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_identity: Option<IdentityRequirement>,
    /// An asymmetric program's roles: seats that run another entry point of the bundle (and
    /// other public arguments) than `program.main`. Absent from the signed bytes when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
}

impl LobbyOffer {
    /// Checks the offer's own consistency: bounds, lobby id, argument text.
    pub fn check(&self) -> Result<(), VerifyError> {
        if !(MIN_PARTIES..=MAX_PARTIES).contains(&self.parties) {
            return Err(VerifyError::PartyCountOutOfRange {
                parties: self.parties,
            });
        }
        if self.lobby_id != LobbyId::for_join_key(&self.join_key) {
            return Err(VerifyError::LobbyIdNotFromJoinKey);
        }
        if self.file_name_has_path() {
            return Err(VerifyError::ProgramNameHasDirectory);
        }
        crate::roles::check_args(&self.args)?;
        if !matches!(self.relay_url.scheme(), "https" | "http") {
            return Err(VerifyError::RelayNotHttp {
                scheme: self.relay_url.scheme().to_owned(),
            });
        }
        if self.extra_relays.len() > MAX_EXTRA_RELAYS {
            return Err(VerifyError::TooManyRelays {
                count: self.extra_relays.len(),
            });
        }
        if let Some(requirement) = &self.require_identity {
            requirement
                .check()
                .map_err(VerifyError::BadIdentityRequirement)?;
        }
        crate::seats::check(&self.seats, self.parties, &self.creator)?;
        crate::roles::check(self)
    }

    /// Whether only the listed keys may join.
    pub fn is_named(&self) -> bool {
        !self.seats.is_empty()
    }

    fn file_name_has_path(&self) -> bool {
        let name = self.program.file_name.as_str();
        name.contains(['/', '\\']) || name == "." || name == ".."
    }
}

/// An offer signed by its creator.
pub type SignedOffer = Signed<LobbyOffer>;

impl SignedOffer {
    /// Signs and returns `offer`, after checking it.
    pub fn create(offer: &LobbyOffer, creator: &Identity) -> Result<Self, VerifyError> {
        offer.check()?;
        if offer.creator != creator.public() {
            return Err(VerifyError::OfferCreatorMismatch);
        }
        Ok(Signed::sign(offer, creator, SigningPurpose::Offer))
    }

    /// Verifies the offer against the creator key the verifier already trusts.
    pub fn verify(&self, creator: &PublicKey) -> Result<LobbyOffer, VerifyError> {
        let offer = self.open(creator, SigningPurpose::Offer)?;
        if offer.creator != *creator {
            return Err(VerifyError::OfferCreatorMismatch);
        }
        offer.check()?;
        Ok(offer)
    }

    /// Verifies the offer against the creator key it names (the server's view: it trusts no one in particular).
    pub fn verify_self_signed(&self) -> Result<LobbyOffer, VerifyError> {
        self.verify(&self.decode_unverified()?.creator)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::join::JoinSecret;

    /// A valid offer by `creator` for the lobby of `secret`.
    pub(crate) fn signed_offer(
        creator: &Identity,
        secret: &JoinSecret,
        parties: u16,
        program: &[u8],
    ) -> SignedOffer {
        let label = |text: &str| Label::new("name", text).expect("label");
        let offer = LobbyOffer {
            lobby_id: secret.lobby_id(),
            name: label("salary survey"),
            parties,
            creator: creator.public(),
            join_key: secret.join_key().public(),
            program: ProgramInfo::describe(label("mean.py"), program),
            args: vec!["--rounds".into(), "3".into()],
            relay_url: "https://127.0.0.1:7000/".parse().expect("url"),
            extra_relays: Vec::new(),
            seats: Vec::new(),
            require_identity: None,
            roles: Vec::new(),
        };
        SignedOffer::create(&offer, creator).expect("valid offer")
    }

    /// Each rule of an offer, broken once: the creator's own `create` refuses it, and a party
    /// refuses it even when the creator signed it anyway.
    #[test]
    fn each_broken_rule_of_an_offer_is_named() {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let genuine = signed_offer(&creator, &secret, 3, b"x")
            .decode_unverified()
            .expect("decodes");
        type Break = fn(&mut LobbyOffer);
        type Caught = fn(&VerifyError) -> bool;
        let cases: &[(&str, Break, Caught)] = &[
            (
                "one party",
                |o| o.parties = 1,
                |e| matches!(e, VerifyError::PartyCountOutOfRange { parties: 1 }),
            ),
            (
                "too many parties",
                |o| o.parties = MAX_PARTIES + 1,
                |e| matches!(e, VerifyError::PartyCountOutOfRange { .. }),
            ),
            (
                "another lobby's id",
                |o| o.lobby_id = JoinSecret::generate().lobby_id(),
                |e| matches!(e, VerifyError::LobbyIdNotFromJoinKey),
            ),
            (
                "a directory in the file name",
                |o| o.program.file_name = Label::new("name", "../mean.py").expect("label"),
                |e| matches!(e, VerifyError::ProgramNameHasDirectory),
            ),
            (
                "a file name of ..",
                |o| o.program.file_name = Label::new("name", "..").expect("label"),
                |e| matches!(e, VerifyError::ProgramNameHasDirectory),
            ),
            (
                "too many arguments",
                |o| o.args = vec!["-v".into(); MAX_ARGS + 1],
                |e| matches!(e, VerifyError::TooManyArgs { count } if *count == MAX_ARGS + 1),
            ),
            (
                "an argument that rewrites the terminal",
                |o| o.args.push("\u{1b}[2K".into()),
                |e| matches!(e, VerifyError::UnsafeArg(_)),
            ),
            (
                "an argument too long",
                |o| o.args.push("a".repeat(MAX_ARG_CHARS + 1)),
                |e| matches!(e, VerifyError::UnsafeArg(_)),
            ),
            (
                "a relay that is not http(s)",
                |o| o.relay_url = "file:///etc/passwd".parse().expect("url"),
                |e| matches!(e, VerifyError::RelayNotHttp { scheme } if scheme == "file"),
            ),
            (
                "too many extra relays",
                |o| {
                    o.extra_relays = vec![relay("https://relay.example:7001"); MAX_EXTRA_RELAYS + 1]
                },
                |e| matches!(e, VerifyError::TooManyRelays { count } if *count == MAX_EXTRA_RELAYS + 1),
            ),
            (
                "named seats fewer than the parties",
                |o| {
                    o.seats = vec![Seat {
                        key: o.creator,
                        name: None,
                    }]
                },
                |e| {
                    matches!(
                        e,
                        VerifyError::SeatsDisagreeWithCount {
                            seats: 1,
                            parties: 3
                        }
                    )
                },
            ),
            (
                "an identity requirement over plain http",
                |o| {
                    o.require_identity = Some(IdentityRequirement {
                        issuer: "http://login.uni.example".into(),
                        email: None,
                    })
                },
                |e| matches!(e, VerifyError::BadIdentityRequirement(_)),
            ),
            (
                "an email pattern with a wildcard domain",
                |o| {
                    o.require_identity = Some(IdentityRequirement {
                        issuer: "https://login.uni.example".into(),
                        email: Some("*@*.example".into()),
                    })
                },
                |e| matches!(e, VerifyError::BadIdentityRequirement(_)),
            ),
            (
                "roles for a single file",
                |o| o.roles = vec![role(&[0], "a.py")],
                |e| matches!(e, VerifyError::RolesNeedBundle),
            ),
            (
                "a role's seat beyond the parties",
                |o| with_roles(o, vec![role(&[0], "a.py"), role(&[1, 3], "b.py")]),
                |e| {
                    matches!(
                        e,
                        VerifyError::RoleSeatBeyondParties {
                            seat: 3,
                            parties: 3
                        }
                    )
                },
            ),
            (
                "a seat in two roles",
                |o| with_roles(o, vec![role(&[0, 1], "a.py"), role(&[1, 2], "b.py")]),
                |e| matches!(e, VerifyError::SeatInTwoRoles { seat: 1 }),
            ),
            (
                "a seat twice in one role",
                |o| with_roles(o, vec![role(&[2, 2], "a.py")]),
                |e| matches!(e, VerifyError::SeatInTwoRoles { seat: 2 }),
            ),
            (
                "a role without seats",
                |o| with_roles(o, vec![role(&[], "a.py")]),
                |e| matches!(e, VerifyError::RoleWithoutSeats),
            ),
            (
                "a role's argument that rewrites the terminal",
                |o| {
                    let mut bidder = role(&[1], "b.py");
                    bidder.args = Some(vec!["\u{1b}[2K".into()]);
                    with_roles(o, vec![bidder]);
                },
                |e| matches!(e, VerifyError::UnsafeArg(_)),
            ),
            (
                "too many arguments for a role",
                |o| {
                    let mut bidder = role(&[1], "b.py");
                    bidder.args = Some(vec!["-v".into(); MAX_ARGS + 1]);
                    with_roles(o, vec![bidder]);
                },
                |e| matches!(e, VerifyError::TooManyArgs { .. }),
            ),
            (
                "another creator named",
                |o| o.creator = Identity::generate().public(),
                |e| matches!(e, VerifyError::OfferCreatorMismatch),
            ),
        ];
        for (what, break_rule, caught) in cases {
            let mut offer = genuine.clone();
            break_rule(&mut offer);
            let refused = SignedOffer::create(&offer, &creator).expect_err(what);
            assert!(caught(&refused), "{what}: create refused with {refused:?}");
            let signed_anyway = Signed::sign(&offer, &creator, SigningPurpose::Offer);
            let refused = signed_anyway.verify(&creator.public()).expect_err(what);
            assert!(caught(&refused), "{what}: verify refused with {refused:?}");
        }
        let genuine = Signed::sign(&genuine, &creator, SigningPurpose::Offer);
        assert!(genuine.verify(&creator.public()).is_ok());
        assert_eq!(
            genuine.verify(&Identity::generate().public()),
            Err(VerifyError::BadSignature(SigningPurpose::Offer))
        );
    }

    /// A bundle's entry point is signed with the offer and read back; a single file's offer
    /// has no such field, so its bytes are those of an offer made before bundles; an entry
    /// point that leaves the bundle is refused when the offer is read.
    #[test]
    fn a_bundles_entry_point_travels_in_the_signed_offer() {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let single = signed_offer(&creator, &secret, 3, b"x");
        assert!(!String::from_utf8_lossy(single.payload()).contains("\"main\""));
        let mut offer = single.decode_unverified().expect("decodes");
        let main = BundlePath::new("survey.py").expect("path");
        offer.program = ProgramInfo::describe_bundle(offer.program.file_name, b"tar", main);
        let signed = SignedOffer::create(&offer, &creator).expect("valid offer");
        let read = signed.verify(&creator.public()).expect("verifies");
        assert_eq!(
            read.program.main.as_ref().map(BundlePath::as_str),
            Some("survey.py")
        );
        let escaping = String::from_utf8_lossy(signed.payload()).replace("survey.py", "../x.py");
        assert!(serde_json::from_str::<LobbyOffer>(&escaping).is_err());
    }

    /// Named seats are signed into the offer; an open session's offer has no such field, so it
    /// signs the same bytes as before the field existed.
    #[test]
    fn named_seats_travel_in_the_signed_offer() {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let open = signed_offer(&creator, &secret, 3, b"x");
        assert!(!String::from_utf8_lossy(open.payload()).contains("seats"));
        let mut offer = open.decode_unverified().expect("decodes");
        assert!(!offer.is_named());
        let others = [Identity::generate().public(), Identity::generate().public()];
        offer.seats = std::iter::once(creator.public())
            .chain(others)
            .map(|key| Seat { key, name: None })
            .collect();
        offer.seats[1].name = Some(Label::new("name", "bob").expect("label"));
        let signed = SignedOffer::create(&offer, &creator).expect("valid offer");
        let read = signed.verify(&creator.public()).expect("verifies");
        assert!(read.is_named());
        assert_eq!(read.seats, offer.seats);
    }

    pub(crate) fn role(seats: &[u16], main: &str) -> Role {
        Role {
            seats: seats.to_vec(),
            main: BundlePath::new(main).expect("path"),
            args: None,
        }
    }

    /// Makes `offer`'s program a bundle run from main.py, with `roles`.
    fn with_roles(offer: &mut LobbyOffer, roles: Vec<Role>) {
        offer.program.main = Some(BundlePath::new("main.py").expect("path"));
        offer.roles = roles;
    }

    /// Roles are signed into the offer and read back, each seat resolving to its role's entry
    /// point and arguments (the others to the bundle's); an offer without roles signs the same
    /// bytes as before the field existed.
    #[test]
    fn roles_travel_in_the_signed_offer_and_resolve_per_seat() {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let plain = signed_offer(&creator, &secret, 4, b"x");
        assert!(!String::from_utf8_lossy(plain.payload()).contains("roles"));
        let mut offer = plain.decode_unverified().expect("decodes");
        let mut bidders = role(&[1, 2], "bidder.py");
        bidders.args = Some(vec!["--fast".into()]);
        with_roles(&mut offer, vec![role(&[0], "auctioneer.py"), bidders]);
        let signed = SignedOffer::create(&offer, &creator).expect("valid offer");
        let read = signed.verify(&creator.public()).expect("verifies");
        assert_eq!(read.roles, offer.roles);
        let entry = |seat| {
            let (main, args) = crate::roles::entry_for(&read, seat);
            (main.map(BundlePath::as_str), args.to_vec())
        };
        let session_args = read.args.clone();
        assert_eq!(entry(0), (Some("auctioneer.py"), session_args.clone()));
        assert_eq!(entry(2), (Some("bidder.py"), vec!["--fast".to_string()]));
        assert_eq!(entry(3), (Some("main.py"), session_args));
        assert_eq!(crate::roles::seats_without_role(&read), vec![3]);
        let escaping = String::from_utf8_lossy(signed.payload()).replace("bidder.py", "../b.py");
        assert!(serde_json::from_str::<LobbyOffer>(&escaping).is_err());
    }

    fn relay(text: &str) -> ServerAddress {
        text.parse().expect("relay address")
    }

    /// Extra relays are signed with their pins and read back as written; an offer without
    /// them signs the same bytes as before the field existed.
    #[test]
    fn extra_relays_travel_in_the_signed_offer_with_their_pins() {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let plain = signed_offer(&creator, &secret, 3, b"x");
        for field in ["extra_relays", "require_identity"] {
            assert!(
                !String::from_utf8_lossy(plain.payload()).contains(field),
                "an offer without {field} has no such field"
            );
        }
        let mut offer = plain.decode_unverified().expect("decodes");
        let pinned =
            relay("https://relay.example:7001#sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        offer.extra_relays = vec![pinned.clone(), relay("https://other.example:443")];
        let signed = SignedOffer::create(&offer, &creator).expect("valid offer");
        let read = signed.verify(&creator.public()).expect("verifies");
        assert_eq!(read.extra_relays, offer.extra_relays);
        assert_eq!(read.extra_relays[0].pin(), pinned.pin());
        assert_eq!(read.extra_relays[1].pin(), None);
    }
}
