//! The lobby state machine (open, full, sealed) and the verification every party repeats.
//!
//! The server drives [`Lobby`] to decide what to store; clients call
//! [`LobbySnapshot::verify`] on whatever the server returns, with the trust anchors of
//! their invite. Both go through the same checks, so the server admits nothing a party
//! would refuse, and a party refuses anything the server could have forged. In a named
//! session (the offer lists the seats' keys) both refuse any other key, and both keep the
//! joins in the list's order whatever order the parties came in.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::digest::{Fingerprint, Sha256Digest};
use crate::identity::{Identity, PublicKey, SigningPurpose};
use crate::identity_proof::{IdentityProof, IssuerKeys, ProofContext, ProvenIdentity};
use crate::join::{JoinRecord, LobbyId, SignedJoin};
use crate::label::Label;
use crate::manifest::SignedManifest;
use crate::offer::{LobbyOffer, SignedOffer};
use crate::signed::{Signed, VerifyError};
use crate::statement::PartyStatement;

/// What a party trusts before talking to the server: all of it comes from the invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustAnchors {
    pub lobby_id: LobbyId,
    pub creator: PublicKey,
    pub join_key: PublicKey,
}

/// Everything the server holds for a lobby, exactly as the parties signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbySnapshot {
    pub offer: SignedOffer,
    /// Join records in the order the server admitted them (in a named session, in seat order);
    /// the creator's comes first.
    pub joins: Vec<SignedJoin>,
    pub manifest: Option<SignedManifest>,
}

/// One party of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    /// MPyC's party id (`-I`).
    pub index: u16,
    pub key: PublicKey,
    pub name: Label,
    /// The party's identity proof with what its claims show, signature not yet checked:
    /// [`VerifiedLobby::verify_identities`] checks it against the issuer's keys.
    #[serde(skip)]
    pub identity: Option<(IdentityProof, ProvenIdentity)>,
}

/// A snapshot that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedLobby {
    pub offer: LobbyOffer,
    /// SHA-256 of the signed offer's bytes: what every join record commits to.
    pub offer_digest: Sha256Digest,
    /// Ordered as in the manifest once sealed, in join order before (seat order in a named
    /// session, where seats may be free between them).
    pub parties: Vec<Party>,
    /// Present once the creator sealed the session.
    pub sealed: Option<SealedSession>,
}

impl VerifiedLobby {
    /// Whether every seat is taken.
    pub fn is_full(&self) -> bool {
        self.parties.len() == usize::from(self.offer.parties)
    }

    /// Checks a party's statement about itself (addresses, run report): signed by a member,
    /// for this lobby.
    pub fn check_statement<T: PartyStatement>(&self, signed: &Signed<T>) -> Result<T, LobbyError> {
        let checked = signed.verify_statement(&self.offer.lobby_id)?;
        if self.party(checked.party()).is_none() {
            return Err(LobbyError::NotMember(
                checked.party().fingerprint().to_string(),
            ));
        }
        Ok(checked)
    }

    /// The statements among `signed` that [`check_statement`](Self::check_statement) accepts.
    pub fn members_statements<T: PartyStatement>(&self, signed: &[Signed<T>]) -> Vec<T> {
        signed
            .iter()
            .filter_map(|signed| self.check_statement(signed).ok())
            .collect()
    }

    /// The issuers whose keys [`verify_identities`](Self::verify_identities) needs.
    pub fn proof_issuers(&self) -> BTreeSet<String> {
        let proofs = self
            .parties
            .iter()
            .filter_map(|party| party.identity.as_ref());
        proofs.map(|(proof, _)| proof.issuer.clone()).collect()
    }

    /// Checks every party's identity proof against its issuer's published `keys` and the
    /// verifier's clock (`now_unix`): what a party must do before trusting a proof, since the
    /// snapshot's own checks (which the server runs too) cannot see a forged signature.
    pub fn verify_identities(&self, keys: &IssuerKeys, now_unix: u64) -> Result<(), VerifyError> {
        for party in &self.parties {
            let Some((proof, _)) = &party.identity else {
                continue;
            };
            let context = ProofContext {
                lobby: &self.offer.lobby_id,
                party: &party.key,
                requirement: self.offer.require_identity.as_ref(),
            };
            proof.verify(context, keys, now_unix).map_err(|reason| {
                VerifyError::IdentityProofRefused {
                    party: party.key.fingerprint(),
                    reason,
                }
            })?;
        }
        Ok(())
    }

    /// The party with `key`, if it has joined.
    pub fn party(&self, key: &PublicKey) -> Option<&Party> {
        self.parties.iter().find(|party| party.key == *key)
    }
}

/// A sealed session: the manifest every party agreed to run.
#[derive(Debug, Clone)]
pub struct SealedSession {
    pub manifest: SignedManifest,
    pub fingerprint: Fingerprint,
}

impl LobbySnapshot {
    /// Checks every signature and every rule against `anchors`.
    pub fn verify(&self, anchors: &TrustAnchors) -> Result<VerifiedLobby, VerifyError> {
        let offer = self.offer.verify(&anchors.creator)?;
        if offer.lobby_id != anchors.lobby_id {
            return Err(VerifyError::LobbyIdMismatch);
        }
        if offer.join_key != anchors.join_key {
            return Err(VerifyError::JoinKeyMismatch);
        }
        let parties = verify_parties(&self.joins, &offer, &self.offer)?;
        let sealed = match &self.manifest {
            None => None,
            Some(signed) => {
                let manifest = signed.open(&anchors.creator, SigningPurpose::Manifest)?;
                if manifest.offer != self.offer {
                    return Err(VerifyError::ManifestOfferDiffers);
                }
                if manifest.parties != self.joins {
                    return Err(VerifyError::ManifestJoinsDiffer);
                }
                if parties.len() != usize::from(offer.parties) {
                    return Err(VerifyError::ManifestNotFull {
                        sealed: parties.len(),
                        parties: offer.parties,
                    });
                }
                Some(SealedSession {
                    manifest: signed.clone(),
                    fingerprint: signed.fingerprint(),
                })
            }
        };
        Ok(VerifiedLobby {
            offer,
            offer_digest: Sha256Digest::of(self.offer.payload()),
            parties,
            sealed,
        })
    }

    /// The creator seals the current joins (the lobby must be full).
    pub fn seal(&self, creator: &Identity) -> SignedManifest {
        SignedManifest::seal(self.offer.clone(), self.joins.clone(), creator)
    }
}

/// Verifies join records in order: each signed, proven and agreeing to this offer, the creator
/// first, no key twice, no seat too many; in a named session each key listed, in seat order.
fn verify_parties(
    joins: &[SignedJoin],
    offer: &LobbyOffer,
    signed_offer: &SignedOffer,
) -> Result<Vec<Party>, VerifyError> {
    let mut parties = Vec::with_capacity(joins.len());
    for join in joins {
        let record = verify_join(join, offer, signed_offer)?;
        if seat_party(&mut parties, record, offer)? != parties.len() - 1 {
            return Err(VerifyError::SeatsOutOfOrder);
        }
    }
    Ok(parties)
}

/// A join record that is signed, proven, and agrees to exactly `signed_offer`.
fn verify_join(
    join: &SignedJoin,
    offer: &LobbyOffer,
    signed_offer: &SignedOffer,
) -> Result<JoinRecord, VerifyError> {
    let record = join.verify(&offer.join_key)?;
    if record.offer != Sha256Digest::of(signed_offer.payload()) {
        return Err(VerifyError::JoinedAnotherOffer {
            party: record.party.fingerprint(),
        });
    }
    Ok(record)
}

/// The seat `key` may take: its place in a named session's list, or in an open session the
/// next one after the `taken` seats.
fn seat_for(key: &PublicKey, offer: &LobbyOffer, taken: usize) -> Result<u16, VerifyError> {
    if !offer.is_named() {
        return Ok(u16::try_from(taken).expect("bounded by offer.parties, a u16"));
    }
    crate::seats::seat_of(&offer.seats, key).ok_or_else(|| VerifyError::NotListed {
        party: key.did_key(),
    })
}

/// The claims of the record's identity proof, checked against the lobby, the party's key and
/// the offer's requirement (a required proof must be there). Signatures are checked apart.
fn check_identity(
    record: &JoinRecord,
    offer: &LobbyOffer,
) -> Result<Option<(IdentityProof, ProvenIdentity)>, VerifyError> {
    let requirement = offer.require_identity.as_ref();
    let Some(proof) = &record.identity else {
        return match requirement {
            Some(required) => Err(VerifyError::IdentityProofMissing {
                party: record.party.fingerprint(),
                issuer: required.issuer.clone(),
            }),
            None => Ok(None),
        };
    };
    let context = ProofContext {
        lobby: &offer.lobby_id,
        party: &record.party,
        requirement,
    };
    let proven =
        proof
            .check_claims(context)
            .map_err(|reason| VerifyError::IdentityProofRefused {
                party: record.party.fingerprint(),
                reason,
            })?;
    Ok(Some((proof.clone(), proven)))
}

/// Seats the party of `record` among `parties` (kept in seat order) and returns where it went.
fn seat_party(
    parties: &mut Vec<Party>,
    record: JoinRecord,
    offer: &LobbyOffer,
) -> Result<usize, VerifyError> {
    if parties.is_empty() && record.party != offer.creator {
        return Err(VerifyError::CreatorNotFirst);
    }
    if parties.len() >= usize::from(offer.parties) {
        return Err(VerifyError::TooManyParties {
            parties: offer.parties,
        });
    }
    if parties
        .iter()
        .any(|party: &Party| party.key == record.party)
    {
        return Err(VerifyError::DuplicateParty {
            party: record.party.fingerprint(),
        });
    }
    let identity = check_identity(&record, offer)?;
    let index = seat_for(&record.party, offer, parties.len())?;
    let position = parties.partition_point(|party| party.index < index);
    parties.insert(
        position,
        Party {
            index,
            key: record.party,
            name: record.name,
            identity,
        },
    );
    Ok(position)
}

/// Why the server refused a step of a lobby's life.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LobbyError {
    #[error("{0}")]
    Invalid(#[from] VerifyError),
    #[error("the lobby is full: all {parties} parties have joined")]
    Full { parties: u16 },
    #[error("the lobby is not full yet: {joined} of {parties} parties have joined")]
    NotFull { joined: usize, parties: u16 },
    #[error("the lobby is already sealed")]
    AlreadySealed,
    #[error("{0} is not a party of this lobby")]
    NotMember(String),
}

/// The outcome of a join the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub index: u16,
    /// The same party had already joined (a retry): nothing changed.
    pub repeated: bool,
}

/// The server's view of one lobby: a snapshot that always verifies against its own offer.
#[derive(Debug, Clone)]
pub struct Lobby {
    anchors: TrustAnchors,
    snapshot: LobbySnapshot,
    verified: VerifiedLobby,
}

impl Lobby {
    /// A new lobby from the creator's signed offer and the creator's own join.
    pub fn create(offer: SignedOffer, creator_join: SignedJoin) -> Result<Self, LobbyError> {
        Self::restore(LobbySnapshot {
            offer,
            joins: vec![creator_join],
            manifest: None,
        })
    }

    /// The lobby a stored snapshot describes, re-verified in full.
    pub fn restore(snapshot: LobbySnapshot) -> Result<Self, LobbyError> {
        let offer = snapshot.offer.verify_self_signed()?;
        let anchors = TrustAnchors {
            lobby_id: offer.lobby_id,
            creator: offer.creator,
            join_key: offer.join_key,
        };
        let verified = snapshot.verify(&anchors)?;
        if verified.parties.is_empty() {
            return Err(VerifyError::CreatorMissing.into());
        }
        Ok(Self {
            anchors,
            snapshot,
            verified,
        })
    }

    /// Admits `join`, or tells why not. A party that joins again gets its seat back unchanged.
    pub fn admit(&mut self, join: SignedJoin) -> Result<Admission, LobbyError> {
        let record = verify_join(&join, &self.verified.offer, &self.snapshot.offer)?;
        if let Some(party) = self.verified.party(&record.party) {
            return Ok(Admission {
                index: party.index,
                repeated: true,
            });
        }
        // A stranger to a named session hears so first, whatever state the session is in.
        seat_for(&record.party, &self.verified.offer, 0)?;
        if self.snapshot.manifest.is_some() {
            return Err(LobbyError::AlreadySealed);
        }
        if self.verified.is_full() {
            return Err(LobbyError::Full {
                parties: self.verified.offer.parties,
            });
        }
        let position = seat_party(&mut self.verified.parties, record, &self.verified.offer)?;
        self.snapshot.joins.insert(position, join);
        Ok(Admission {
            index: self.verified.parties[position].index,
            repeated: false,
        })
    }

    /// Stores the creator's seal, if it seals exactly the parties that joined.
    pub fn seal(&mut self, manifest: SignedManifest) -> Result<(), LobbyError> {
        if let Some(existing) = &self.snapshot.manifest {
            return if *existing == manifest {
                Ok(())
            } else {
                Err(LobbyError::AlreadySealed)
            };
        }
        if !self.verified.is_full() {
            return Err(LobbyError::NotFull {
                joined: self.verified.parties.len(),
                parties: self.verified.offer.parties,
            });
        }
        let candidate = LobbySnapshot {
            manifest: Some(manifest),
            ..self.snapshot.clone()
        };
        self.verified = candidate.verify(&self.anchors)?;
        self.snapshot = candidate;
        Ok(())
    }

    pub fn snapshot(&self) -> &LobbySnapshot {
        &self.snapshot
    }

    pub fn verified(&self) -> &VerifiedLobby {
        &self.verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity_proof::ProofError;
    use crate::identity_proof::tests::{ISSUER, NOW, TestIssuer, requirement};
    use crate::invite::{Invite, ServerAddress};
    use crate::join::JoinSecret;
    use crate::offer::tests::signed_offer;

    struct Session {
        invite: Invite,
        creator: Identity,
        joiners: Vec<Identity>,
        lobby: Lobby,
    }

    fn label(text: &str) -> Label {
        Label::new("name", text).expect("label")
    }

    /// A lobby of three: the creator and two joiners, not yet sealed.
    fn full_lobby() -> Session {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let offer = signed_offer(&creator, &secret, 3, b"print(1)");
        let creator_join = SignedJoin::new(&creator, label("alice"), &secret, &offer);
        let mut lobby = Lobby::create(offer.clone(), creator_join).expect("created");
        let joiners = vec![Identity::generate(), Identity::generate()];
        for (joiner, name) in joiners.iter().zip(["bob", "carol"]) {
            lobby
                .admit(SignedJoin::new(joiner, label(name), &secret, &offer))
                .expect("admitted");
        }
        let invite = Invite {
            server: "https://127.0.0.1:7000"
                .parse::<ServerAddress>()
                .expect("server"),
            creator: creator.public(),
            secret,
        };
        Session {
            invite,
            creator,
            joiners,
            lobby,
        }
    }

    fn sealed_snapshot(session: &mut Session) -> LobbySnapshot {
        let manifest = session.lobby.snapshot().seal(&session.creator);
        session.lobby.seal(manifest).expect("sealed");
        session.lobby.snapshot().clone()
    }

    #[test]
    fn a_full_lobby_seals_and_every_party_sees_the_same_session() {
        let mut session = full_lobby();
        assert!(session.lobby.verified().is_full());
        let snapshot = sealed_snapshot(&mut session);
        let verified = snapshot
            .verify(&session.invite.anchors())
            .expect("verifies");
        let names: Vec<_> = verified.parties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        assert_eq!(verified.parties[2].key, session.joiners[1].public());
        let sealed = verified.sealed.expect("sealed");
        assert_eq!(
            sealed.fingerprint,
            snapshot.manifest.as_ref().expect("manifest").fingerprint()
        );
    }

    #[test]
    fn joins_are_refused_when_full_sealed_or_without_the_secret() {
        let mut session = full_lobby();
        let stranger = Identity::generate();
        let offer = session.lobby.snapshot().offer.clone();
        let fourth = SignedJoin::new(&stranger, label("mallory"), &session.invite.secret, &offer);
        assert_eq!(
            session.lobby.admit(fourth.clone()),
            Err(LobbyError::Full { parties: 3 })
        );

        let without_secret =
            SignedJoin::new(&stranger, label("mallory"), &JoinSecret::generate(), &offer);
        assert!(matches!(
            session.lobby.admit(without_secret),
            Err(LobbyError::Invalid(VerifyError::BadSignature(
                SigningPurpose::JoinProof
            )))
        ));

        let again = SignedJoin::new(
            &session.joiners[0],
            label("bob"),
            &session.invite.secret,
            &offer,
        );
        assert_eq!(
            session.lobby.admit(again),
            Ok(Admission {
                index: 1,
                repeated: true
            })
        );

        sealed_snapshot(&mut session);
        assert_eq!(session.lobby.admit(fourth), Err(LobbyError::AlreadySealed));
    }

    #[test]
    fn only_the_creator_can_seal_and_only_when_full() {
        let mut session = full_lobby();
        let by_joiner = session.lobby.snapshot().seal(&session.joiners[0]);
        assert!(matches!(
            session.lobby.seal(by_joiner),
            Err(LobbyError::Invalid(VerifyError::BadSignature(
                SigningPurpose::Manifest
            )))
        ));

        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let offer = signed_offer(&creator, &secret, 2, b"x");
        let creator_join = SignedJoin::new(&creator, label("alice"), &secret, &offer);
        let mut open = Lobby::create(offer, creator_join).expect("lobby");
        let early = open.snapshot().seal(&creator);
        assert_eq!(
            open.seal(early),
            Err(LobbyError::NotFull {
                joined: 1,
                parties: 2
            })
        );
    }

    /// What a compromised server might do to a sealed lobby; every party must refuse each one.
    #[test]
    fn every_party_refuses_what_a_compromised_server_forges() {
        let mut session = full_lobby();
        let snapshot = sealed_snapshot(&mut session);
        let anchors = session.invite.anchors();
        let mallory = Identity::generate();
        let secret = &session.invite.secret;
        let manifest = snapshot.manifest.clone().expect("manifest");
        let opened = manifest.decode_unverified().expect("manifest decodes");
        let offer = &snapshot.offer;

        // What each forgery is, the forged snapshot, and the check that must catch it.
        type Caught = fn(&VerifyError) -> bool;
        let mut forgeries: Vec<(&str, LobbySnapshot, Caught)> = Vec::new();
        let mut swapped = snapshot.clone();
        swapped.joins[1] = SignedJoin::new(&mallory, label("bob"), secret, offer);
        forgeries.push(("a party's key swapped in the join list", swapped, |e| {
            matches!(e, VerifyError::ManifestJoinsDiffer)
        }));

        let mut reordered = snapshot.clone();
        reordered.joins.swap(1, 2);
        forgeries.push(("parties reordered in the join list", reordered, |e| {
            matches!(e, VerifyError::ManifestJoinsDiffer)
        }));

        let mut resealed = snapshot.clone();
        let mut parties = opened.parties.clone();
        parties[1] = SignedJoin::new(&mallory, label("bob"), secret, offer);
        resealed.joins = parties.clone();
        resealed.manifest = Some(SignedManifest::seal(
            opened.offer.clone(),
            parties,
            &mallory,
        ));
        forgeries.push(("a manifest sealed by someone else", resealed, |e| {
            matches!(e, VerifyError::BadSignature(SigningPurpose::Manifest))
        }));

        let mut other_program = snapshot.clone();
        other_program.offer = signed_offer(&mallory, secret, 3, b"import os; os.system('evil')");
        forgeries.push((
            "an offer for another program by someone else",
            other_program,
            |e| matches!(e, VerifyError::BadSignature(SigningPurpose::Offer)),
        ));

        let mut unsealed_extra = snapshot.clone();
        unsealed_extra.manifest = None;
        unsealed_extra
            .joins
            .push(SignedJoin::new(&mallory, label("mallory"), secret, offer));
        forgeries.push(("a fourth party", unsealed_extra, |e| {
            matches!(e, VerifyError::TooManyParties { parties: 3 })
        }));

        let mut twice = snapshot.clone();
        twice.manifest = None;
        twice.joins[2] = twice.joins[1].clone();
        forgeries.push(("a party seated twice", twice, |e| {
            matches!(e, VerifyError::DuplicateParty { .. })
        }));

        // The creator (with the server) re-signs another program after the parties joined.
        let evil = signed_offer(&session.creator, secret, 3, b"import os; os.system('evil')");
        let mut swapped_program = snapshot.clone();
        swapped_program.offer = evil.clone();
        swapped_program.manifest = Some(SignedManifest::seal(
            evil.clone(),
            snapshot.joins.clone(),
            &session.creator,
        ));
        forgeries.push((
            "another program, re-signed by the creator after the joins",
            swapped_program,
            |e| matches!(e, VerifyError::JoinedAnotherOffer { .. }),
        ));

        // The creator seals another offer than the one the server serves.
        let mut manifest_of_other_offer = snapshot.clone();
        manifest_of_other_offer.manifest = Some(SignedManifest::seal(
            evil,
            snapshot.joins.clone(),
            &session.creator,
        ));
        forgeries.push((
            "a manifest over another offer",
            manifest_of_other_offer,
            |e| matches!(e, VerifyError::ManifestOfferDiffers),
        ));

        // A seal over the first two parties only, served with just those two.
        let mut short = snapshot.clone();
        short.joins.truncate(2);
        short.manifest = Some(SignedManifest::seal(
            offer.clone(),
            short.joins.clone(),
            &session.creator,
        ));
        forgeries.push(("a manifest sealing too few parties", short, |e| {
            matches!(
                e,
                VerifyError::ManifestNotFull {
                    sealed: 2,
                    parties: 3
                }
            )
        }));

        // The same creator's other lobby, served in place of this one.
        let other_secret = JoinSecret::generate();
        let other_offer = signed_offer(&session.creator, &other_secret, 3, b"print(1)");
        let other_lobby = LobbySnapshot {
            joins: vec![SignedJoin::new(
                &session.creator,
                label("alice"),
                &other_secret,
                &other_offer,
            )],
            offer: other_offer,
            manifest: None,
        };
        forgeries.push(("the creator's other lobby", other_lobby, |e| {
            matches!(e, VerifyError::LobbyIdMismatch)
        }));

        let mut tampered_bytes = serde_json::to_value(&snapshot).expect("json");
        let payload = tampered_bytes["manifest"]["payload"]
            .as_str()
            .expect("payload")
            .to_owned();
        let mut bytes = data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .expect("b64");
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        tampered_bytes["manifest"]["payload"] =
            data_encoding::BASE64URL_NOPAD.encode(&bytes).into();
        forgeries.push((
            "a flipped bit in the stored manifest",
            serde_json::from_value(tampered_bytes).expect("still decodes"),
            |e| matches!(e, VerifyError::BadSignature(SigningPurpose::Manifest)),
        ));

        let mut creator_missing = snapshot.clone();
        creator_missing.manifest = None;
        creator_missing.joins.remove(0);
        forgeries.push(("the creator dropped", creator_missing, |e| {
            matches!(e, VerifyError::CreatorNotFirst)
        }));

        for (what, forged, caught) in forgeries {
            match forged.verify(&anchors) {
                Ok(_) => panic!("{what} was accepted"),
                Err(error) => assert!(
                    caught(&error),
                    "{what} was caught by another check: {error:?}"
                ),
            }
        }
        assert!(
            snapshot.verify(&anchors).is_ok(),
            "the genuine snapshot must verify"
        );
    }

    /// A named lobby of three (alice, bob, carol listed in that order) that carol joined
    /// before bob: its seats, and the lobby with all three.
    fn named_lobby_joined_out_of_order() -> (Session, Lobby) {
        let creator = Identity::generate();
        let joiners = vec![Identity::generate(), Identity::generate()];
        let secret = JoinSecret::generate();
        let mut offer = signed_offer(&creator, &secret, 3, b"print(1)")
            .decode_unverified()
            .expect("decodes");
        offer.seats = std::iter::once(&creator)
            .chain(&joiners)
            .map(|party| crate::Seat {
                key: party.public(),
                name: None,
            })
            .collect();
        let offer = SignedOffer::create(&offer, &creator).expect("named offer");
        let creator_join = SignedJoin::new(&creator, label("alice"), &secret, &offer);
        let mut lobby = Lobby::create(offer.clone(), creator_join).expect("created");
        let carol = SignedJoin::new(&joiners[1], label("carol"), &secret, &offer);
        assert_eq!(
            lobby.admit(carol),
            Ok(Admission {
                index: 2,
                repeated: false
            })
        );
        let seats: Vec<u16> = lobby.verified().parties.iter().map(|p| p.index).collect();
        assert_eq!(seats, [0, 2], "seat 1 stays free for bob");
        let open = lobby.clone();
        let bob = SignedJoin::new(&joiners[0], label("bob"), &secret, &offer);
        assert_eq!(lobby.admit(bob).map(|a| a.index), Ok(1));
        let invite = Invite {
            server: "https://127.0.0.1:7000".parse().expect("server"),
            creator: creator.public(),
            secret,
        };
        let session = Session {
            invite,
            creator,
            joiners,
            lobby,
        };
        (session, open)
    }

    #[test]
    fn a_named_session_seats_its_listed_parties_in_list_order_whatever_the_join_order() {
        let (mut session, open) = named_lobby_joined_out_of_order();
        let anchors = session.invite.anchors();
        let verified = open
            .snapshot()
            .verify(&anchors)
            .expect("a half-full named lobby verifies");
        assert_eq!(verified.parties.len(), 2);
        let snapshot = sealed_snapshot(&mut session);
        let verified = snapshot.verify(&anchors).expect("verifies");
        let seated: Vec<(u16, &str)> = verified
            .parties
            .iter()
            .map(|p| (p.index, p.name.as_str()))
            .collect();
        assert_eq!(seated, [(0, "alice"), (1, "bob"), (2, "carol")]);
        let manifest = snapshot
            .manifest
            .expect("sealed")
            .decode_unverified()
            .expect("decodes");
        assert_eq!(
            manifest.parties, snapshot.joins,
            "the manifest follows the list"
        );
    }

    #[test]
    fn a_named_session_refuses_every_key_it_does_not_list() {
        let (mut session, mut open) = named_lobby_joined_out_of_order();
        let stranger = Identity::generate();
        let offer = open.snapshot().offer.clone();
        let join = SignedJoin::new(&stranger, label("mallory"), &session.invite.secret, &offer);
        let not_listed = LobbyError::Invalid(VerifyError::NotListed {
            party: stranger.public().did_key(),
        });
        assert_eq!(open.admit(join.clone()), Err(not_listed.clone()));
        assert_eq!(session.lobby.admit(join.clone()), Err(not_listed.clone()));
        sealed_snapshot(&mut session);
        assert_eq!(session.lobby.admit(join), Err(not_listed));
    }

    /// What a compromised server (or a creator with it) might do to a named session's order or
    /// seats; every party must refuse each one.
    #[test]
    fn every_party_refuses_a_named_session_out_of_list_order_or_with_a_stranger() {
        let (mut session, open) = named_lobby_joined_out_of_order();
        let anchors = session.invite.anchors();
        let snapshot = sealed_snapshot(&mut session);
        let offer = &snapshot.offer;
        let mut out_of_order = snapshot.clone();
        out_of_order.joins.swap(1, 2);
        out_of_order.manifest = Some(SignedManifest::seal(
            offer.clone(),
            out_of_order.joins.clone(),
            &session.creator,
        ));
        let mut joins_swapped = snapshot.clone();
        joins_swapped.joins.swap(1, 2);
        let mut unsealed_swapped = open.snapshot().clone();
        unsealed_swapped.joins.swap(0, 1);
        let mallory = Identity::generate();
        let mut stranger = open.snapshot().clone();
        stranger.joins[1] =
            SignedJoin::new(&mallory, label("carol"), &session.invite.secret, offer);
        let not_listed = VerifyError::NotListed {
            party: mallory.public().did_key(),
        };
        let cases = [
            (
                "a manifest out of list order, signed by the creator",
                out_of_order,
                VerifyError::SeatsOutOfOrder,
            ),
            (
                "the joins served out of list order",
                joins_swapped,
                VerifyError::SeatsOutOfOrder,
            ),
            (
                "carol's join served before the creator's",
                unsealed_swapped,
                VerifyError::CreatorNotFirst,
            ),
            (
                "an invite holder the list does not name",
                stranger,
                not_listed,
            ),
        ];
        for (what, forged, expected) in cases {
            assert_eq!(forged.verify(&anchors).map(|_| ()), Err(expected), "{what}");
            assert!(
                Lobby::restore(forged).is_err(),
                "the server restored {what}"
            );
        }
    }

    /// A lobby requiring proofs from one issuer for `*@uni.example`: its creator and offer.
    fn lobby_requiring_identity(issuer: &TestIssuer) -> (Identity, JoinSecret, SignedOffer, Lobby) {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let mut offer = signed_offer(&creator, &secret, 3, b"print(1)")
            .decode_unverified()
            .expect("decodes");
        offer.require_identity = Some(requirement(Some("*@uni.example")));
        let offer = SignedOffer::create(&offer, &creator).expect("offer");
        let proof = issuer.proof(&secret.lobby_id(), &creator.public(), "alice@uni.example");
        let creator_join =
            SignedJoin::with_identity(&creator, label("alice"), &secret, &offer, Some(proof));
        let lobby = Lobby::create(offer.clone(), creator_join).expect("created");
        (creator, secret, offer, lobby)
    }

    #[test]
    fn a_session_requiring_identity_seats_only_matching_proofs_and_parties_check_signatures() {
        let issuer = TestIssuer::new(ISSUER);
        let (creator, secret, offer, mut lobby) = lobby_requiring_identity(&issuer);
        let lobby_id = secret.lobby_id();
        let join = |party: &Identity, proof: Option<IdentityProof>| {
            SignedJoin::with_identity(party, label("x"), &secret, &offer, proof)
        };
        let refusal = |lobby: &mut Lobby, join: SignedJoin| match lobby.admit(join) {
            Err(LobbyError::Invalid(error)) => error,
            other => panic!("admitted: {other:?}"),
        };

        let mallory = Identity::generate();
        let missing = refusal(&mut lobby, join(&mallory, None));
        assert_eq!(
            missing.to_string(),
            format!(
                "party {} has no identity proof from {ISSUER}, which this session requires",
                mallory.public().fingerprint()
            )
        );
        let wrong_email = issuer.proof(&lobby_id, &mallory.public(), "mallory@evil.example");
        assert!(matches!(
            refusal(&mut lobby, join(&mallory, Some(wrong_email))),
            VerifyError::IdentityProofRefused {
                reason: ProofError::EmailNotAllowed { .. },
                ..
            }
        ));

        let bob = Identity::generate();
        let bobs_proof = issuer.proof(&lobby_id, &bob.public(), "bob@uni.example");
        // Bob's token, attached by mallory to her own key: its nonce is bob's.
        assert!(matches!(
            refusal(&mut lobby, join(&mallory, Some(bobs_proof.clone()))),
            VerifyError::IdentityProofRefused {
                reason: ProofError::NonceMismatch,
                ..
            }
        ));
        // A token bob got for another lobby.
        let elsewhere = issuer.proof(
            &JoinSecret::generate().lobby_id(),
            &bob.public(),
            "bob@uni.example",
        );
        assert!(matches!(
            refusal(&mut lobby, join(&bob, Some(elsewhere))),
            VerifyError::IdentityProofRefused {
                reason: ProofError::NonceMismatch,
                ..
            }
        ));
        lobby
            .admit(join(&bob, Some(bobs_proof)))
            .expect("bob admitted");

        // Carol's proof from a look-alike issuer key: the claims fit, so the server (which
        // does not check signatures) seats her; every party then refuses the session.
        let carol = Identity::generate();
        let forged = TestIssuer::new(ISSUER).proof(&lobby_id, &carol.public(), "carol@uni.example");
        lobby.admit(join(&carol, Some(forged))).expect("claims fit");
        let manifest = lobby.snapshot().seal(&creator);
        lobby.seal(manifest).expect("sealed");
        let anchors = TrustAnchors {
            lobby_id,
            creator: creator.public(),
            join_key: secret.join_key().public(),
        };
        let verified = lobby.snapshot().verify(&anchors).expect("claims verify");
        assert_eq!(
            verified.proof_issuers(),
            BTreeSet::from([ISSUER.to_owned()])
        );
        assert_eq!(
            verified.verify_identities(&issuer.keys(), NOW),
            Err(VerifyError::IdentityProofRefused {
                party: carol.public().fingerprint(),
                reason: ProofError::BadSignature
            })
        );
        let shown: Vec<String> = verified.parties[..2]
            .iter()
            .map(|party| party.identity.as_ref().expect("proof").1.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "alice@uni.example (verified by https://login.uni.example)",
                "bob@uni.example (verified by https://login.uni.example)"
            ]
        );
    }

    #[test]
    fn every_party_verifies_a_session_whose_proofs_are_genuine() {
        let issuer = TestIssuer::new(ISSUER);
        let (creator, secret, offer, mut lobby) = lobby_requiring_identity(&issuer);
        for email in ["bob@uni.example", "carol@uni.example"] {
            let party = Identity::generate();
            let proof = issuer.proof(&secret.lobby_id(), &party.public(), email);
            let join = SignedJoin::with_identity(&party, label("x"), &secret, &offer, Some(proof));
            lobby.admit(join).expect("admitted");
        }
        lobby.seal(lobby.snapshot().seal(&creator)).expect("sealed");
        let verified = lobby.verified();
        assert_eq!(verified.verify_identities(&issuer.keys(), NOW), Ok(()));
        assert_eq!(
            verified.verify_identities(&IssuerKeys::new(), NOW),
            Err(VerifyError::IdentityProofRefused {
                party: creator.public().fingerprint(),
                reason: ProofError::NoKeysForIssuer(ISSUER.into())
            })
        );

        // The server edits a stored proof (bob's email) or drops the offer's requirement.
        let anchors = TrustAnchors {
            lobby_id: secret.lobby_id(),
            creator: creator.public(),
            join_key: secret.join_key().public(),
        };
        let edit_payload = |path: &[&str], edit: &dyn Fn(&mut serde_json::Value)| {
            let mut stored = serde_json::to_value(lobby.snapshot()).expect("json");
            let mut at = &mut stored;
            for step in path {
                at = match step.parse::<usize>() {
                    Ok(index) => &mut at[index],
                    Err(_) => &mut at[*step],
                };
            }
            let text = at["payload"].as_str().expect("payload").to_owned();
            let bytes = data_encoding::BASE64URL_NOPAD
                .decode(text.as_bytes())
                .expect("b64");
            let mut payload: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            edit(&mut payload);
            at["payload"] = data_encoding::BASE64URL_NOPAD
                .encode(payload.to_string().as_bytes())
                .into();
            let tampered: LobbySnapshot = serde_json::from_value(stored).expect("decodes");
            tampered.verify(&anchors).map(|_| ())
        };
        let carols_token = |payload: &mut serde_json::Value| {
            let token = payload["identity"]["id_token"].as_str().map(str::to_owned);
            payload["identity"]["id_token"] = token.expect("token").replace('a', "b").into();
        };
        assert_eq!(
            edit_payload(&["joins", "2", "record"], &carols_token),
            Err(VerifyError::BadSignature(SigningPurpose::JoinProof))
        );
        let unrequired = |payload: &mut serde_json::Value| {
            payload
                .as_object_mut()
                .expect("offer")
                .remove("require_identity");
        };
        assert_eq!(
            edit_payload(&["offer"], &unrequired),
            Err(VerifyError::BadSignature(SigningPurpose::Offer))
        );
    }

    #[test]
    fn anchors_whose_join_key_differs_refuse_the_lobby() {
        let mut session = full_lobby();
        let snapshot = sealed_snapshot(&mut session);
        let anchors = TrustAnchors {
            join_key: JoinSecret::generate().join_key().public(),
            ..session.invite.anchors()
        };
        assert_eq!(
            snapshot.verify(&anchors).map(|_| ()),
            Err(VerifyError::JoinKeyMismatch)
        );
    }

    #[test]
    fn the_server_refuses_a_lobby_without_its_creator_or_a_join_under_another_offer() {
        let session = full_lobby();
        let offer = session.lobby.snapshot().offer.clone();
        let empty = LobbySnapshot {
            offer: offer.clone(),
            joins: Vec::new(),
            manifest: None,
        };
        assert_eq!(
            Lobby::restore(empty).map(|_| ()),
            Err(LobbyError::Invalid(VerifyError::CreatorMissing))
        );

        let mut lobby = session.lobby.clone();
        let mut smaller = lobby.verified().offer.clone();
        smaller.args.clear();
        let other_offer = SignedOffer::create(&smaller, &session.creator).expect("offer");
        let stranger = Identity::generate();
        let join = SignedJoin::new(
            &stranger,
            label("dave"),
            &session.invite.secret,
            &other_offer,
        );
        assert_eq!(
            lobby.admit(join),
            Err(LobbyError::Invalid(VerifyError::JoinedAnotherOffer {
                party: stranger.public().fingerprint()
            }))
        );
    }

    #[test]
    fn statements_are_checked_against_membership() {
        let mut session = full_lobby();
        sealed_snapshot(&mut session);
        let verified = session.lobby.verified();
        let lobby_id = verified.offer.lobby_id;
        let member = &session.joiners[0];
        let stranger = Identity::generate();
        let by_member = crate::EndpointAnnouncement::sign(lobby_id, member, 1, Vec::new());
        assert!(verified.check_statement(&by_member).is_ok());
        let by_stranger = crate::EndpointAnnouncement::sign(lobby_id, &stranger, 1, Vec::new());
        assert_eq!(
            verified.check_statement(&by_stranger).map(|_| ()),
            Err(LobbyError::NotMember(
                stranger.public().fingerprint().to_string()
            ))
        );
        let elsewhere = JoinSecret::generate().lobby_id();
        let misplaced = crate::EndpointAnnouncement::sign(elsewhere, member, 1, Vec::new());
        assert_eq!(
            verified.check_statement(&misplaced).map(|_| ()),
            Err(LobbyError::Invalid(VerifyError::StatementForAnotherLobby))
        );
    }
}
