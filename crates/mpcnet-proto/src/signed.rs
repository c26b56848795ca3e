//! Signed envelopes: the exact payload bytes that were signed travel with the signature,
//! so verification never depends on re-serializing a value the same way twice.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::announcement::MAX_ADDRESSES;
use crate::digest::Fingerprint;
use crate::identity::{Identity, PublicKey, Signature, SigningPurpose};
use crate::label::LabelError;
use crate::offer::{MAX_ARGS, MAX_PARTIES, MIN_PARTIES};

/// Why signed data was refused. Every variant means "do not trust this session"; each names
/// the one check that caught it, so callers and tests can tell a forgery from a wrong key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    // Keys, signatures and encoding.
    #[error("not a valid Ed25519 public key")]
    InvalidKey,
    #[error("bad {0:?} signature: the data was changed or signed by someone else")]
    BadSignature(SigningPurpose),
    #[error("signed data does not decode: {0}")]
    Malformed(String),

    // The offer on its own.
    #[error("a session has {MIN_PARTIES} to {MAX_PARTIES} parties, not {parties}")]
    PartyCountOutOfRange { parties: u16 },
    #[error("the lobby id does not belong to the join key")]
    LobbyIdNotFromJoinKey,
    #[error("the program file name contains a directory")]
    ProgramNameHasDirectory,
    #[error("more than {MAX_ARGS} program arguments ({count})")]
    TooManyArgs { count: usize },
    #[error(transparent)]
    UnsafeArg(LabelError),
    #[error("the relay URL is not http(s) but {scheme:?}")]
    RelayNotHttp { scheme: String },
    #[error("the offer names {count} extra relays; at most {max} are allowed", max = crate::offer::MAX_EXTRA_RELAYS)]
    TooManyRelays { count: usize },
    #[error("the offer names another creator")]
    OfferCreatorMismatch,
    #[error("the offer lists {seats} named seats for {parties} parties")]
    SeatsDisagreeWithCount { seats: usize, parties: u16 },
    #[error("the offer's first named seat is not the creator's")]
    FirstSeatNotCreator,
    #[error("the offer lists a key in two seats")]
    SeatListedTwice,
    #[error("the offer gives roles to a single-file program: roles are entry points of a bundle")]
    RolesNeedBundle,
    #[error("the offer has a role without seats")]
    RoleWithoutSeats,
    #[error("the offer gives a role to seat {seat}, but the session has {parties} parties (seats 0 to {})", parties - 1)]
    RoleSeatBeyondParties { seat: u16, parties: u16 },
    #[error("the offer gives seat {seat} two roles")]
    SeatInTwoRoles { seat: u16 },

    // The offer against the invite.
    #[error("the lobby does not match the invite (another lobby id)")]
    LobbyIdMismatch,
    #[error("the lobby does not match the invite (another join key)")]
    JoinKeyMismatch,

    // Join records and their order.
    #[error("join record names another lobby")]
    JoinForAnotherLobby,
    #[error("party {party} joined under another offer (program or arguments changed)")]
    JoinedAnotherOffer { party: Fingerprint },
    #[error("party 0 is not the creator")]
    CreatorNotFirst,
    #[error("the creator has not joined")]
    CreatorMissing,
    #[error("more than {parties} parties")]
    TooManyParties { parties: u16 },
    #[error("party {party} joined twice")]
    DuplicateParty { party: Fingerprint },
    #[error("this session is for named parties and the key {party} is not one of them")]
    NotListed { party: String },
    #[error("the join records are not in the order of the named seats")]
    SeatsOutOfOrder,

    // The manifest.
    #[error("the sealed manifest carries another offer")]
    ManifestOfferDiffers,
    #[error("the server's join list disagrees with the sealed manifest")]
    ManifestJoinsDiffer,
    #[error("the manifest seals {sealed} parties, the offer asks for {parties}")]
    ManifestNotFull { sealed: usize, parties: u16 },

    // A party's statements about itself (announcements, run reports).
    #[error("a statement about another lobby")]
    StatementForAnotherLobby,
    #[error("more than {max} addresses ({count})", max = MAX_ADDRESSES)]
    TooManyAddresses { count: usize },
    #[error("more links than a session has peers ({count})")]
    TooManyLinks { count: usize },
    #[error(transparent)]
    UnsafeFailureReason(LabelError),

    // Identity proofs (an offer's requirement, a party's ID token).
    #[error("the offer's identity requirement: {0}")]
    BadIdentityRequirement(crate::identity_proof::ProofError),
    #[error("party {party} has no identity proof from {issuer}, which this session requires")]
    IdentityProofMissing { party: Fingerprint, issuer: String },
    #[error("party {party}'s identity proof is refused: {reason}")]
    IdentityProofRefused {
        party: Fingerprint,
        reason: crate::identity_proof::ProofError,
    },

    // What a party reviewed.
    #[error("the session's offer changed after you reviewed it")]
    OfferChangedSinceReview,
}

/// A value of type `T` as the exact JSON bytes its signer signed, plus the signature.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Signed<T> {
    #[serde(with = "base64url")]
    payload: Vec<u8>,
    signature: Signature,
    #[serde(skip)]
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Self {
            payload: self.payload.clone(),
            signature: self.signature.clone(),
            kind: PhantomData,
        }
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.payload == other.payload && self.signature == other.signature
    }
}

impl<T> Eq for Signed<T> {}

impl<T> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("payload_len", &self.payload.len())
            .field("signature", &self.signature)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Signed<T> {
    /// Serializes `value` and signs the bytes for `purpose`.
    pub fn sign(value: &T, signer: &Identity, purpose: SigningPurpose) -> Self {
        let payload = serde_json::to_vec(value).expect("plain data always serializes");
        let signature = signer.sign(purpose, &payload);
        Self {
            payload,
            signature,
            kind: PhantomData,
        }
    }

    /// Checks the signature with `signer`, then decodes the payload.
    pub fn open(&self, signer: &PublicKey, purpose: SigningPurpose) -> Result<T, VerifyError> {
        signer.verify(purpose, &self.payload, &self.signature)?;
        self.decode_unverified()
    }

    /// Decodes the payload without checking the signature: only to learn which key to check it with.
    pub fn decode_unverified(&self) -> Result<T, VerifyError> {
        serde_json::from_slice(&self.payload).map_err(|e| VerifyError::Malformed(e.to_string()))
    }

    /// The signed bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Serde helpers for byte strings as unpadded base64url.
pub(crate) mod base64url {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&data_encoding::BASE64URL_NOPAD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        data_encoding::BASE64URL_NOPAD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_payload_is_refused() {
        let signer = Identity::generate();
        let signed = Signed::sign(&vec![1u32, 2, 3], &signer, SigningPurpose::Offer);
        assert_eq!(
            signed.open(&signer.public(), SigningPurpose::Offer),
            Ok(vec![1, 2, 3])
        );

        let mut json = serde_json::to_value(&signed).expect("serializes");
        json["payload"] = data_encoding::BASE64URL_NOPAD.encode(b"[1,2,4]").into();
        let tampered: Signed<Vec<u32>> = serde_json::from_value(json).expect("still decodes");
        assert_eq!(
            tampered.open(&signer.public(), SigningPurpose::Offer),
            Err(VerifyError::BadSignature(SigningPurpose::Offer))
        );
    }
}
