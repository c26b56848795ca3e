//! Ed25519 identities: a party's secret key, its public key, fingerprint and `did:key` name.
//!
//! The same key later becomes the party's iroh `EndpointId`, so the key a party
//! joins a lobby with is the key its peers authenticate on the wire.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::digest::{Fingerprint, decode_hex32};
use crate::signed::VerifyError;

/// What a signature is for. Each purpose signs a different prefix, so a signature
/// made for one can never be replayed as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningPurpose {
    /// The creator's proposal of a lobby.
    Offer,
    /// A party's own signature on its join record.
    JoinByParty,
    /// The signature by the key derived from the join secret: proof that the joiner holds the invite.
    JoinProof,
    /// The creator's seal over the ordered parties.
    Manifest,
    /// A party's announcement of its direct addresses.
    Announcement,
    /// A party's report on its run, for the session page.
    RunReport,
}

impl SigningPurpose {
    fn prefix(self) -> &'static [u8] {
        match self {
            Self::Offer => b"mpcnet/v1/offer\0",
            Self::JoinByParty => b"mpcnet/v1/join-by-party\0",
            Self::JoinProof => b"mpcnet/v1/join-proof\0",
            Self::Manifest => b"mpcnet/v1/manifest\0",
            Self::Announcement => b"mpcnet/v1/announcement\0",
            Self::RunReport => b"mpcnet/v1/run-report\0",
        }
    }

    fn message(self, payload: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(self.prefix().len() + payload.len());
        message.extend_from_slice(self.prefix());
        message.extend_from_slice(payload);
        message
    }
}

/// An Ed25519 public key. Shown and serialized as 64 lowercase hex digits, like an iroh `EndpointId`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key from its 32 bytes; fails on bytes that are not a valid curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, VerifyError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| VerifyError::InvalidKey)
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// A short fingerprint to compare out of band, e.g. `k7qm-3xzp-a2c4`.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::new("mpcnet key fingerprint v1", self.0.as_bytes(), 3)
    }

    /// Checks `signature` over `payload` made for `purpose`.
    pub fn verify(
        &self,
        purpose: SigningPurpose,
        payload: &[u8],
        signature: &Signature,
    ) -> Result<(), VerifyError> {
        self.0
            .verify(&purpose.message(payload), &signature.0)
            .map_err(|_| VerifyError::BadSignature(purpose))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl std::str::FromStr for PublicKey {
    type Err = VerifyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = decode_hex32(text).ok_or(VerifyError::InvalidKey)?;
        Self::from_bytes(&bytes)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signature, serialized as unpadded base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({})",
            data_encoding::BASE64URL_NOPAD.encode(&self.0.to_bytes()[..8])
        )
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&data_encoding::BASE64URL_NOPAD.encode(&self.0.to_bytes()))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("an Ed25519 signature has 64 bytes"))?;
        Ok(Self(ed25519_dalek::Signature::from_bytes(&bytes)))
    }
}

/// A secret Ed25519 key: a party's identity, or the key derived from a join secret.
///
/// Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Identity(SigningKey);

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Self {
        Self::from_secret_bytes(&rand::random())
    }

    /// The identity from its 32-byte secret seed.
    pub fn from_secret_bytes(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed, for storing it.
    pub fn to_secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `payload` for `purpose`.
    pub fn sign(&self, purpose: SigningPurpose, payload: &[u8]) -> Signature {
        Signature(self.0.sign(&purpose.message(payload)))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public().fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_do_not_cross_purposes() {
        let identity = Identity::generate();
        let signature = identity.sign(SigningPurpose::Offer, b"payload");
        let key = identity.public();
        assert!(
            key.verify(SigningPurpose::Offer, b"payload", &signature)
                .is_ok()
        );
        assert!(
            key.verify(SigningPurpose::Manifest, b"payload", &signature)
                .is_err()
        );
        assert!(
            key.verify(SigningPurpose::Offer, b"payloaD", &signature)
                .is_err()
        );
    }

    #[test]
    fn keys_round_trip_through_text() {
        let key = Identity::generate().public();
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<PublicKey>().expect("valid key"), key);
        assert!(text[..63].parse::<PublicKey>().is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let identity = Identity::from_secret_bytes(&[7u8; 32]);
        let shown = format!("{identity:?}");
        assert!(!shown.contains("0707"));
        assert!(shown.starts_with("Identity("));
    }
}
