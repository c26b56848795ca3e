//! The `did:key` form of a party's public key (W3C DID method `key`): `did:key:z` followed by
//! base58btc of the multicodec `ed25519-pub` prefix and the key's 32 bytes. The one text a
//! party shares so that a creator can list it in advance (`mpcnet id` prints it).

use crate::identity::PublicKey;

/// The multicodec prefix of an Ed25519 public key (`ed25519-pub`, varint `0xed 0x01`).
const ED25519_PREFIX: [u8; 2] = [0xed, 0x01];

/// What every `did:key` starts with.
const SCHEME: &str = "did:key:";

/// The multibase code of base58btc.
const BASE58BTC: char = 'z';

/// Why a text is not the `did:key` of an Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidKeyError {
    #[error(
        "{0:?} is a key fingerprint, too short to name a key: give the party's did:key (`mpcnet id` prints it)"
    )]
    Fingerprint(String),
    #[error("{0:?} is not a did:key (did:key:z6Mk…, as `mpcnet id` prints it)")]
    NotDidKey(String),
    #[error("the did:key is not in base58btc (it must start with did:key:z)")]
    NotBase58btc,
    #[error("the did:key is not valid base58")]
    BadBase58,
    #[error("the did:key is not an Ed25519 public key (did:key:z6Mk…)")]
    NotEd25519,
    #[error("the did:key does not hold a valid Ed25519 public key")]
    InvalidKey,
}

impl PublicKey {
    /// The key as a `did:key`.
    pub fn did_key(&self) -> String {
        let mut multicodec = ED25519_PREFIX.to_vec();
        multicodec.extend_from_slice(&self.to_bytes());
        format!(
            "{SCHEME}{BASE58BTC}{}",
            bs58::encode(multicodec).into_string()
        )
    }

    /// The key a `did:key` names; only Ed25519 keys, written exactly as [`did_key`](Self::did_key)
    /// writes them, are accepted.
    pub fn from_did_key(text: &str) -> Result<Self, DidKeyError> {
        let Some(multibase) = text.strip_prefix(SCHEME) else {
            return Err(if looks_like_fingerprint(text) {
                DidKeyError::Fingerprint(text.to_owned())
            } else {
                DidKeyError::NotDidKey(shortened(text))
            });
        };
        let encoded = multibase
            .strip_prefix(BASE58BTC)
            .ok_or(DidKeyError::NotBase58btc)?;
        let multicodec = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| DidKeyError::BadBase58)?;
        let key = multicodec
            .strip_prefix(&ED25519_PREFIX)
            .and_then(|key| <[u8; 32]>::try_from(key).ok())
            .ok_or(DidKeyError::NotEd25519)?;
        Self::from_bytes(&key).map_err(|_| DidKeyError::InvalidKey)
    }
}

/// Whether `text` has the shape of a key fingerprint (`k7qm-3xzp-a2c4`: groups of four base32
/// characters joined by dashes), which names no key: it is a hash's first 60 bits.
fn looks_like_fingerprint(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() > 1
        && groups.iter().all(|group| {
            group.len() == 4
                && group
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        })
}

/// `text` cut to a length that fits in one error line.
fn shortened(text: &str) -> String {
    const SHOWN: usize = 60;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    fn key_of_hex(hex: &str) -> PublicKey {
        let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).expect("hex");
        PublicKey::from_bytes(&bytes.try_into().expect("32 bytes")).expect("valid point")
    }

    #[test]
    fn did_key_matches_the_w3c_test_vector() {
        // An Ed25519 example of the did:key method specification, with its key in hex.
        let key = key_of_hex("2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6");
        let did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
        assert_eq!(key.did_key(), did);
        assert_eq!(PublicKey::from_did_key(did), Ok(key));
    }

    /// The public key of RFC 8032's first Ed25519 test, its did:key worked out by hand from the
    /// method's definition (base58btc of 0xed 0x01 and the 32 bytes, after `did:key:z`).
    #[test]
    fn the_rfc_8032_key_round_trips_through_its_did_key() {
        let key = key_of_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let did = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw";
        assert_eq!(key.did_key(), did);
        let parsed = PublicKey::from_did_key(did).expect("parses");
        assert_eq!(parsed.to_bytes(), key.to_bytes());
        let fresh = Identity::generate().public();
        assert!(fresh.did_key().starts_with("did:key:z6Mk"));
        assert_eq!(PublicKey::from_did_key(&fresh.did_key()), Ok(fresh));
    }

    #[test]
    fn what_is_not_an_ed25519_did_key_is_refused_with_its_reason() {
        let key = Identity::generate().public();
        let did = key.did_key();
        let x25519 = format!(
            "did:key:z{}",
            bs58::encode([&[0xec, 0x01][..], &key.to_bytes()].concat()).into_string()
        );
        let short = format!(
            "did:key:z{}",
            bs58::encode([&ED25519_PREFIX[..], &key.to_bytes()[..31]].concat()).into_string()
        );
        let cases = [
            (
                key.fingerprint().to_string(),
                DidKeyError::Fingerprint(key.fingerprint().to_string()),
            ),
            (
                key.to_string(),
                DidKeyError::NotDidKey(shortened(&key.to_string())),
            ),
            (
                did.replacen("did:key:z", "did:key:m", 1),
                DidKeyError::NotBase58btc,
            ),
            (
                did.replacen("did:key:z6", "did:key:z0", 1),
                DidKeyError::BadBase58,
            ),
            (x25519, DidKeyError::NotEd25519),
            (short, DidKeyError::NotEd25519),
            (format!("{did}1"), DidKeyError::NotEd25519),
            (format!(" {did}"), DidKeyError::NotDidKey(format!(" {did}"))),
        ];
        for (text, expected) in cases {
            assert_eq!(PublicKey::from_did_key(&text), Err(expected), "{text:?}");
        }
        assert!(
            DidKeyError::Fingerprint("k7qm-3xzp-a2c4".into())
                .to_string()
                .contains("too short to name a key")
        );
    }
}
