//! Joining a lobby: the join secret, the lobby id derived from it, and the doubly signed join record.
//!
//! The join secret never leaves the parties. From it each party derives a signing key
//! (the *join key*); the creator tells the server only its public half. A join record is
//! signed by the joiner's own key (who joins) and by the join key (that the joiner holds
//! the invite), so the server can turn strangers away without ever being able to admit one.

use std::fmt;

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::digest::Sha256Digest;
use crate::identity::{Identity, PublicKey, Signature, SigningPurpose};
use crate::identity_proof::IdentityProof;
use crate::label::Label;
use crate::offer::SignedOffer;
use crate::signed::{Signed, VerifyError};

/// A lobby's id: 16 bytes derived from its public join key, shown as 26 lowercase base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LobbyId([u8; 16]);

impl LobbyId {
    /// Characters in the text form.
    pub const TEXT_LEN: usize = 26;

    /// The id of the lobby whose public join key is `join_key`.
    pub fn for_join_key(join_key: &PublicKey) -> Self {
        let digest = Sha256Digest::of_parts(&[b"mpcnet lobby id v1", &join_key.to_bytes()]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.0[..16]);
        Self(id)
    }

    /// The id's 16 bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for LobbyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &data_encoding::BASE32_NOPAD
                .encode(&self.0)
                .to_ascii_lowercase(),
        )
    }
}

impl fmt::Debug for LobbyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LobbyId({self})")
    }
}

/// The text is not a lobby id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a lobby id (expected {} base32 characters)", LobbyId::TEXT_LEN)]
pub struct BadLobbyId;

impl std::str::FromStr for LobbyId {
    type Err = BadLobbyId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != Self::TEXT_LEN || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(BadLobbyId);
        }
        let bytes = data_encoding::BASE32_NOPAD
            .decode(text.to_ascii_uppercase().as_bytes())
            .map_err(|_| BadLobbyId)?;
        let id: [u8; 16] = bytes.try_into().map_err(|_| BadLobbyId)?;
        let canonical = Self(id);
        // Reject non-canonical spellings (trailing bits set), so one lobby has one name.
        if canonical.to_string() != text.to_ascii_lowercase() {
            return Err(BadLobbyId);
        }
        Ok(canonical)
    }
}

impl Serialize for LobbyId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LobbyId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The secret an invite carries: whoever holds it may join. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinSecret([u8; 32]);

impl JoinSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// The secret from its bytes (as carried in an invite).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret's bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The join key derived from the secret (HKDF-SHA256); its public half is what the server knows.
    pub fn join_key(&self) -> Identity {
        let mut seed = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"mpcnet join key salt v1"), &self.0)
            .expand(b"mpcnet join key v1", &mut seed)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Identity::from_secret_bytes(&seed)
    }

    /// The id of the lobby this secret opens.
    pub fn lobby_id(&self) -> LobbyId {
        LobbyId::for_join_key(&self.join_key().public())
    }
}

impl fmt::Debug for JoinSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinSecret(..)")
    }
}

/// Who joins which lobby, under what name, agreeing to which offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRecord {
    pub lobby_id: LobbyId,
    pub party: PublicKey,
    pub name: Label,
    /// SHA-256 of the signed offer's bytes as this party saw them: the program, its arguments
    /// and the party count it agreed to. A session sealed under any other offer does not verify.
    pub offer: Sha256Digest,
    /// The party's OpenID Connect identity proof, if it attached one. Absent from the signed
    /// bytes when none, so a join without one is the same bytes as before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityProof>,
}

/// A join record signed by the joining party and by the lobby's join key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedJoin {
    /// Signed by the party itself.
    record: Signed<JoinRecord>,
    /// The join key's signature over the same bytes: proof that the party holds the join secret.
    proof: Signature,
}

impl SignedJoin {
    /// `party` asks to join as `name` under `offer`, proving it holds `secret`.
    pub fn new(party: &Identity, name: Label, secret: &JoinSecret, offer: &SignedOffer) -> Self {
        Self::with_identity(party, name, secret, offer, None)
    }

    /// [`new`](Self::new), with the party's identity proof signed into the record.
    pub fn with_identity(
        party: &Identity,
        name: Label,
        secret: &JoinSecret,
        offer: &SignedOffer,
        identity: Option<IdentityProof>,
    ) -> Self {
        let record = JoinRecord {
            lobby_id: secret.lobby_id(),
            party: party.public(),
            name,
            offer: Sha256Digest::of(offer.payload()),
            identity,
        };
        let record = Signed::sign(&record, party, SigningPurpose::JoinByParty);
        let proof = secret
            .join_key()
            .sign(SigningPurpose::JoinProof, record.payload());
        Self { record, proof }
    }

    /// Checks both signatures against the lobby's public join key and returns the record.
    pub fn verify(&self, join_key: &PublicKey) -> Result<JoinRecord, VerifyError> {
        join_key.verify(
            SigningPurpose::JoinProof,
            self.record.payload(),
            &self.proof,
        )?;
        let claimed = self.record.decode_unverified()?;
        let record = self
            .record
            .open(&claimed.party, SigningPurpose::JoinByParty)?;
        if record.lobby_id != LobbyId::for_join_key(join_key) {
            return Err(VerifyError::JoinForAnotherLobby);
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lobby_ids_round_trip_and_reject_junk() {
        let id = JoinSecret::generate().lobby_id();
        let text = id.to_string();
        assert_eq!(text.len(), LobbyId::TEXT_LEN);
        assert_eq!(text.parse::<LobbyId>(), Ok(id));
        assert_eq!(text.to_ascii_uppercase().parse::<LobbyId>(), Ok(id));
        for junk in [
            "",
            "abc",
            &text[1..],
            &format!("{text}a"),
            "../../../etc/passwd0000000",
        ] {
            assert_eq!(junk.parse::<LobbyId>(), Err(BadLobbyId), "{junk:?}");
        }
    }

    #[test]
    fn a_join_verifies_only_with_its_lobby_key() {
        let secret = JoinSecret::generate();
        let party = Identity::generate();
        let offer = crate::offer::tests::signed_offer(&Identity::generate(), &secret, 2, b"x");
        let join = SignedJoin::new(
            &party,
            Label::new("name", "bob").expect("label"),
            &secret,
            &offer,
        );
        let record = join
            .verify(&secret.join_key().public())
            .expect("valid join");
        assert_eq!(record.party, party.public());

        let other_lobby = JoinSecret::generate().join_key().public();
        assert_eq!(
            join.verify(&other_lobby),
            Err(VerifyError::BadSignature(SigningPurpose::JoinProof))
        );
    }

    #[test]
    fn a_join_signed_by_the_wrong_party_or_for_another_lobby_is_refused() {
        let secret = JoinSecret::generate();
        let join_key = secret.join_key();
        let party = Identity::generate();
        let offer = crate::offer::tests::signed_offer(&Identity::generate(), &secret, 2, b"x");
        let record = JoinRecord {
            lobby_id: secret.lobby_id(),
            party: party.public(),
            name: Label::new("name", "bob").expect("label"),
            offer: Sha256Digest::of(offer.payload()),
            identity: None,
        };
        // Proven with the join key, but signed by someone other than the party it names.
        let impostor = Signed::sign(&record, &Identity::generate(), SigningPurpose::JoinByParty);
        let proof = join_key.sign(SigningPurpose::JoinProof, impostor.payload());
        let forged = SignedJoin {
            record: impostor,
            proof,
        };
        assert_eq!(
            forged.verify(&join_key.public()),
            Err(VerifyError::BadSignature(SigningPurpose::JoinByParty))
        );

        // Signed by the party and proven with this lobby's join key, but naming another lobby.
        let elsewhere = JoinRecord {
            lobby_id: JoinSecret::generate().lobby_id(),
            ..record
        };
        let signed = Signed::sign(&elsewhere, &party, SigningPurpose::JoinByParty);
        let proof = join_key.sign(SigningPurpose::JoinProof, signed.payload());
        let misplaced = SignedJoin {
            record: signed,
            proof,
        };
        assert_eq!(
            misplaced.verify(&join_key.public()),
            Err(VerifyError::JoinForAnotherLobby)
        );
    }

    #[test]
    fn the_secret_is_never_printed() {
        assert_eq!(
            format!("{:?}", JoinSecret::from_bytes([9; 32])),
            "JoinSecret(..)"
        );
    }
}
