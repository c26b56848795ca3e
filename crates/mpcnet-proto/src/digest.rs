//! SHA-256 digests and the short, human-comparable fingerprints derived from them.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest, shown and serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Hashes `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Hashes the concatenation of `parts`, each prefixed by its length so that
    /// different splits of the same bytes never collide.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// The digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
pub(crate) fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

/// The text is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a SHA-256 digest is 64 hex digits")]
pub struct BadDigest;

impl std::str::FromStr for Sha256Digest {
    type Err = BadDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        decode_hex32(text).map(Self).ok_or(BadDigest)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A short fingerprint for humans to compare out of band: base32 groups of four, e.g. `k7qm-3xzp-a2c4-9fdw`.
///
/// Computed over a domain-separated hash, so a key's fingerprint and a session's
/// fingerprint are never confused.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of `data` in `domain`, `groups` groups of four characters (20 bits each).
    pub fn new(domain: &str, data: &[u8], groups: usize) -> Self {
        let digest = Sha256Digest::of_parts(&[domain.as_bytes(), data]);
        let encoded = data_encoding::BASE32_NOPAD
            .encode(&digest.0)
            .to_ascii_lowercase();
        let chars: Vec<char> = encoded.chars().take(groups * 4).collect();
        let text = chars
            .chunks(4)
            .map(|group| group.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-");
        Self(text)
    }

    /// The fingerprint as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_hex() {
        let digest = Sha256Digest::of(b"mean.py");
        let parsed: Sha256Digest = digest.to_hex().parse().expect("valid hex");
        assert_eq!(parsed, digest);
        assert!("abc".parse::<Sha256Digest>().is_err());
    }

    #[test]
    fn fingerprints_are_grouped_and_domain_separated() {
        let a = Fingerprint::new("key", b"same bytes", 4);
        let b = Fingerprint::new("session", b"same bytes", 4);
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 4 * 4 + 3);
        assert_eq!(a.as_str().matches('-').count(), 3);
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(
            Sha256Digest::of_parts(&[b"ab", b"c"]),
            Sha256Digest::of_parts(&[b"a", b"bc"])
        );
    }
}
