//! Invites and server addresses as text: the one line a creator shares, and the `--server` value.
//!
//! An invite is a link whose fragment carries the secrets, so a browser never sends them:
//!
//! ```text
//! https://lobby.example.org:7000/s/<lobby id>#mpcnet1.<base64url(creator key | join secret | pin | checksum)>
//! ```
//!
//! The lobby id in the path is derived from the join secret, so a link pieced together
//! from two invites is detected, and a 4-byte checksum catches a damaged copy.

use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::digest::Sha256Digest;
use crate::identity::{Identity, PublicKey};
use crate::join::{JoinSecret, LobbyId};
use crate::lobby::TrustAnchors;

const INVITE_VERSION_PREFIX: &str = "mpcnet1.";
const LOBBY_PATH_PREFIX: &str = "/s/";
const PIN_FRAGMENT_PREFIX: &str = "sha256=";
const CHECKSUM_LEN: usize = 4;
const KEY_LEN: usize = 32;
/// Creator key, join secret, pin flag.
const FIXED_LEN: usize = KEY_LEN + 32 + 1;

/// Why a piece of text is not a usable invite or server address. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("the invite is empty")]
    Empty,
    #[error(
        "not an mpcnet invite: expected https://HOST:PORT/s/LOBBY#mpcnet1.… as printed by `mpcnet create`"
    )]
    NotAnInvite,
    #[error("invite format {0:?} is not known to this mpcnet: is it from a newer version?")]
    UnknownVersion(String),
    #[error("the invite's secret part is not valid base64url: it was damaged when copied")]
    BadEncoding,
    #[error("the invite is truncated or has extra characters: copy the whole line again")]
    WrongLength,
    #[error("the invite is damaged (checksum mismatch): copy it again")]
    Corrupted,
    #[error(
        "the invite's lobby id does not match its secret: the link was edited or pieced together from two invites"
    )]
    LobbyMismatch,
    #[error("the invite's creator key is not a valid Ed25519 key")]
    BadCreatorKey,
    #[error("bad server address {address:?}: {why}")]
    BadServer { address: String, why: String },
}

/// A TLS certificate pin: the SHA-256 of the server's certificate (DER).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertPin(pub Sha256Digest);

impl CertPin {
    /// The pin of a DER-encoded certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        Self(Sha256Digest::of(der))
    }
}

impl fmt::Display for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::BASE64URL_NOPAD.encode(&self.0.0))
    }
}

impl fmt::Debug for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertPin({self})")
    }
}

impl FromStr for CertPin {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(text.as_bytes())
            .map_err(|_| ())?;
        Ok(Self(Sha256Digest(bytes.try_into().map_err(|_| ())?)))
    }
}

/// Where the lobby server is, and which certificate to expect there.
///
/// Text form: `https://HOST:PORT` for a server with a CA-signed certificate, or
/// `https://HOST:PORT#sha256=PIN` for one with a self-signed certificate.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    origin: Url,
    pin: Option<CertPin>,
}

impl ServerAddress {
    /// The address of `origin` (an `https` URL with nothing after the port), pinned or not.
    pub fn new(origin: &Url, pin: Option<CertPin>) -> Result<Self, InviteError> {
        let bad = |why: &str| InviteError::BadServer {
            address: origin.to_string(),
            why: why.into(),
        };
        if origin.scheme() != "https" {
            return Err(bad("the scheme must be https"));
        }
        if origin.host().is_none() {
            return Err(bad("no host"));
        }
        if !origin.username().is_empty() || origin.password().is_some() {
            return Err(bad("a server address carries no user name or password"));
        }
        if origin.query().is_some() || !matches!(origin.path(), "" | "/") {
            return Err(bad("a server address has no path or query"));
        }
        let mut origin = origin.clone();
        origin.set_fragment(None);
        Ok(Self { origin, pin })
    }

    /// The server's base URL, e.g. `https://127.0.0.1:7000/`.
    pub fn origin(&self) -> &Url {
        &self.origin
    }

    /// The pinned certificate, if the server's certificate is self-signed.
    pub fn pin(&self) -> Option<CertPin> {
        self.pin
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> Url {
        self.origin
            .join(path)
            .expect("a server path is a valid relative URL")
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.origin.as_str().trim_end_matches('/');
        match self.pin {
            Some(pin) => write!(f, "{origin}#{PIN_FRAGMENT_PREFIX}{pin}"),
            None => f.write_str(origin),
        }
    }
}

impl fmt::Debug for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerAddress({self})")
    }
}

impl FromStr for ServerAddress {
    type Err = InviteError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = |why: &str| InviteError::BadServer {
            address: text.into(),
            why: why.into(),
        };
        let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let pin = match url.fragment() {
            None | Some("") => None,
            Some(fragment) => {
                let pin = fragment
                    .strip_prefix(PIN_FRAGMENT_PREFIX)
                    .ok_or_else(|| bad("the part after # must be sha256=PIN"))?;
                Some(
                    pin.parse()
                        .map_err(|()| bad("the certificate pin is not a base64url SHA-256"))?,
                )
            }
        };
        Self::new(&url, pin)
    }
}

/// In JSON, a server address is its text form (pin included), as `mpcnet serve` prints it.
impl serde::Serialize for ServerAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ServerAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything a party needs to join a session, in one line.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    pub server: ServerAddress,
    pub creator: PublicKey,
    pub secret: JoinSecret,
}

impl Invite {
    /// The lobby this invite opens.
    pub fn lobby_id(&self) -> LobbyId {
        self.secret.lobby_id()
    }

    /// What the invite lets a party check everything else against.
    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors {
            lobby_id: self.lobby_id(),
            creator: self.creator,
            join_key: self.secret.join_key().public(),
        }
    }

    /// Writes this session's link: `version_prefix` and the secret part with `key` in the
    /// creator key's place (the public key in an invite, the secret key in a creator link).
    fn write_link(
        &self,
        f: &mut fmt::Formatter<'_>,
        version_prefix: &str,
        key: &[u8; KEY_LEN],
    ) -> fmt::Result {
        let origin = self.server.origin.as_str().trim_end_matches('/');
        write!(
            f,
            "{origin}{LOBBY_PATH_PREFIX}{}#{version_prefix}{}",
            self.lobby_id(),
            data_encoding::BASE64URL_NOPAD.encode(&self.secret_part(key))
        )
    }

    /// `key`, the join secret, the pin and a checksum of them.
    fn secret_part(&self, key: &[u8; KEY_LEN]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(FIXED_LEN + 32 + CHECKSUM_LEN);
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&self.secret.to_bytes());
        match self.server.pin {
            Some(pin) => {
                bytes.push(1);
                bytes.extend_from_slice(&pin.0.0);
            }
            None => bytes.push(0),
        }
        let checksum = Sha256Digest::of(&bytes);
        bytes.extend_from_slice(&checksum.0[..CHECKSUM_LEN]);
        bytes
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_link(f, INVITE_VERSION_PREFIX, &self.creator.to_bytes())
    }
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("server", &self.server)
            .field("lobby", &self.lobby_id())
            .field("creator", &self.creator)
            .finish_non_exhaustive()
    }
}

impl FromStr for Invite {
    type Err = InviteError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (origin, lobby_id, bytes) = parse_link(text, INVITE_VERSION_PREFIX)?;
        let (creator, secret, pin) = decode_secret_part(&bytes)?;
        let creator = PublicKey::from_bytes(&creator).map_err(|_| InviteError::BadCreatorKey)?;
        Invite::assemble(&origin, creator, secret, pin, lobby_id)
    }
}

impl Invite {
    fn assemble(
        origin: &Url,
        creator: PublicKey,
        secret: JoinSecret,
        pin: Option<CertPin>,
        lobby_id: LobbyId,
    ) -> Result<Self, InviteError> {
        let invite = Self {
            server: ServerAddress::new(origin, pin)?,
            creator,
            secret,
        };
        if invite.lobby_id() != lobby_id {
            return Err(InviteError::LobbyMismatch);
        }
        Ok(invite)
    }
}

/// The creator's own link to a session made in a web page: the invite with the creator's secret
/// key in place of its public key, so the creator's `mpcnet` can act as party 0 and seal.
/// The page keeps it in the URL fragment and never sends it; it is never shared.
///
/// ```text
/// https://HOST:PORT/s/<lobby id>#mpcnet1o.<base64url(creator secret key | join secret | pin | checksum)>
/// ```
#[derive(Clone)]
pub struct CreatorLink {
    pub invite: Invite,
    pub creator_key: Identity,
}

impl CreatorLink {
    /// What starts a creator link's fragment.
    pub const FRAGMENT_PREFIX: &str = "mpcnet1o.";
}

impl FromStr for CreatorLink {
    type Err = InviteError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (origin, lobby_id, bytes) = parse_link(text, CreatorLink::FRAGMENT_PREFIX)?;
        let (seed, secret, pin) = decode_secret_part(&bytes)?;
        let creator_key = Identity::from_secret_bytes(&seed);
        let invite = Invite::assemble(&origin, creator_key.public(), secret, pin, lobby_id)?;
        Ok(Self {
            invite,
            creator_key,
        })
    }
}

impl fmt::Display for CreatorLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.creator_key.to_secret_bytes();
        self.invite.write_link(f, Self::FRAGMENT_PREFIX, &key)
    }
}

impl fmt::Debug for CreatorLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatorLink")
            .field("invite", &self.invite)
            .finish_non_exhaustive()
    }
}

/// Splits a link into its server origin, the lobby id of its path and the decoded bytes after
/// `version_prefix` in its fragment.
fn parse_link(text: &str, version_prefix: &str) -> Result<(Url, LobbyId, Vec<u8>), InviteError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(InviteError::Empty);
    }
    let url = Url::parse(text).map_err(|_| InviteError::NotAnInvite)?;
    if url.scheme() != "https" {
        return Err(InviteError::NotAnInvite);
    }
    let lobby_id: LobbyId = url
        .path()
        .strip_prefix(LOBBY_PATH_PREFIX)
        .ok_or(InviteError::NotAnInvite)?
        .parse()
        .map_err(|_| InviteError::NotAnInvite)?;
    let fragment = url.fragment().ok_or(InviteError::NotAnInvite)?;
    let Some(encoded) = fragment.strip_prefix(version_prefix) else {
        return match fragment.split_once('.') {
            Some((version, _)) if version.starts_with("mpcnet") => {
                Err(InviteError::UnknownVersion(version.into()))
            }
            _ => Err(InviteError::NotAnInvite),
        };
    };
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(encoded.as_bytes())
        .map_err(|e| match e.kind {
            data_encoding::DecodeKind::Length | data_encoding::DecodeKind::Trailing => {
                InviteError::WrongLength
            }
            _ => InviteError::BadEncoding,
        })?;
    let mut origin = url.clone();
    origin.set_path("/");
    origin.set_fragment(None);
    Ok((origin, lobby_id, bytes))
}

/// The key bytes (the creator's public key in an invite, its secret key in a creator link),
/// the join secret and the pin, after checking length and checksum.
fn decode_secret_part(
    bytes: &[u8],
) -> Result<([u8; KEY_LEN], JoinSecret, Option<CertPin>), InviteError> {
    let pinned = match bytes.get(FIXED_LEN - 1) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Err(InviteError::Corrupted),
        None => return Err(InviteError::WrongLength),
    };
    let expected_len = FIXED_LEN + if pinned { 32 } else { 0 } + CHECKSUM_LEN;
    if bytes.len() != expected_len {
        return Err(InviteError::WrongLength);
    }
    let (body, checksum) = bytes.split_at(expected_len - CHECKSUM_LEN);
    if Sha256Digest::of(body).0[..CHECKSUM_LEN] != *checksum {
        return Err(InviteError::Corrupted);
    }
    let array = |range: std::ops::Range<usize>| -> [u8; 32] {
        body[range].try_into().expect("range of 32 bytes")
    };
    let key = array(0..KEY_LEN);
    let secret = JoinSecret::from_bytes(array(KEY_LEN..KEY_LEN + 32));
    let pin = pinned.then(|| CertPin(Sha256Digest(array(FIXED_LEN..FIXED_LEN + 32))));
    Ok((key, secret, pin))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In JSON (an offer's extra relays) a server address is its text, pin included; text that
    /// is no server address is refused as it is on the command line.
    #[test]
    fn a_server_address_is_its_text_in_json() {
        let pinned: ServerAddress =
            "https://relay.example:7001#sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                .parse()
                .expect("address");
        let json = serde_json::to_string(&pinned).expect("serializes");
        assert_eq!(
            json,
            "\"https://relay.example:7001#sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""
        );
        let read: ServerAddress = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(read, pinned);
        for bad in [
            "\"http://relay.example:7001\"",
            "\"https://relay.example:7001/relay?session=x\"",
            "\"https://relay.example:7001#sha256=short\"",
            "7001",
        ] {
            assert!(
                serde_json::from_str::<ServerAddress>(bad).is_err(),
                "{bad} is no relay address"
            );
        }
    }

    fn sample(pin: Option<CertPin>) -> Invite {
        Invite {
            server: ServerAddress::new(&Url::parse("https://127.0.0.1:7000").expect("url"), pin)
                .expect("server"),
            creator: Identity::generate().public(),
            secret: JoinSecret::generate(),
        }
    }

    #[test]
    fn invites_round_trip_with_and_without_pin() {
        for pin in [None, Some(CertPin::of_certificate(b"certificate"))] {
            let invite = sample(pin);
            let text = invite.to_string();
            assert!(text.starts_with("https://127.0.0.1:7000/s/"), "{text}");
            assert_eq!(text.parse::<Invite>(), Ok(invite.clone()));
            assert_eq!(format!("  {text}\n").parse::<Invite>(), Ok(invite));
        }
    }

    #[test]
    fn creator_links_carry_the_creator_key_and_are_not_invites() {
        for pin in [None, Some(CertPin::of_certificate(b"certificate"))] {
            let creator_key = Identity::generate();
            let mut invite = sample(pin);
            invite.creator = creator_key.public();
            let link = CreatorLink {
                invite: invite.clone(),
                creator_key: creator_key.clone(),
            };
            let text = link.to_string();
            let parsed: CreatorLink = text.parse().expect("round trip");
            assert_eq!(parsed.invite, invite);
            assert_eq!(parsed.creator_key.public(), creator_key.public());
            assert!(!text.contains(&invite.to_string()[invite.to_string().len() - 20..]));
            assert_eq!(
                text.parse::<Invite>(),
                Err(InviteError::UnknownVersion("mpcnet1o".into()))
            );
            assert_eq!(
                invite.to_string().parse::<CreatorLink>().err(),
                Some(InviteError::UnknownVersion("mpcnet1".into()))
            );
            // One character of the secret part changed: the checksum no longer holds.
            let at = text.len() - 10;
            let swapped = if &text[at..=at] == "A" { "B" } else { "A" };
            let damaged = format!("{}{swapped}{}", &text[..at], &text[at + 1..]);
            assert!(damaged.parse::<CreatorLink>().is_err());
        }
    }

    #[test]
    fn malformed_invites_get_the_right_error() {
        let good = sample(Some(CertPin::of_certificate(b"cert"))).to_string();
        let other = sample(None).to_string();
        let (head, fragment) = good.split_once('#').expect("fragment");
        let secret = fragment
            .strip_prefix(INVITE_VERSION_PREFIX)
            .expect("prefix");
        let flip = |text: &str, at: usize| {
            let mut chars: Vec<char> = text.chars().collect();
            chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
            chars.into_iter().collect::<String>()
        };
        let other_path = other.split_once('#').expect("fragment").0;
        let cases: Vec<(String, InviteError)> = vec![
            (String::new(), InviteError::Empty),
            ("   \n".into(), InviteError::Empty),
            ("hello".into(), InviteError::NotAnInvite),
            ("https://example.org/".into(), InviteError::NotAnInvite),
            (good.replacen("https", "http", 1), InviteError::NotAnInvite),
            (head.into(), InviteError::NotAnInvite),
            (format!("{head}#tskey-abc"), InviteError::NotAnInvite),
            (
                format!("{head}#mpcnet9.{secret}"),
                InviteError::UnknownVersion("mpcnet9".into()),
            ),
            (good[..good.len() - 5].into(), InviteError::WrongLength),
            (good[..good.len() - 1].into(), InviteError::WrongLength),
            (format!("{good}AAAA"), InviteError::WrongLength),
            (
                format!(
                    "{head}#mpcnet1.{}",
                    secret.replace(secret.chars().nth(3).expect("c"), "*")
                ),
                InviteError::BadEncoding,
            ),
            (
                format!("{head}#mpcnet1.{}", flip(secret, 60)),
                InviteError::Corrupted,
            ),
            (
                format!("{other_path}#{fragment}"),
                InviteError::LobbyMismatch,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Invite>(), Err(expected), "input {input:?}");
        }
    }

    #[test]
    fn server_addresses_parse_with_and_without_pin() {
        let pin = CertPin::of_certificate(b"cert");
        let text = format!("https://lobby.example.org:7000#sha256={pin}");
        let address: ServerAddress = text.parse().expect("valid");
        assert_eq!(address.pin(), Some(pin));
        assert_eq!(address.to_string(), text);
        assert_eq!(
            "https://lobby.example.org"
                .parse::<ServerAddress>()
                .expect("valid")
                .to_string(),
            "https://lobby.example.org"
        );
        for bad in [
            "lobby.example.org:7000",
            "http://lobby.example.org:7000",
            "https://lobby.example.org:7000/path",
            "https://user:pw@lobby.example.org",
            "https://lobby.example.org#pin=abc",
            "https://lobby.example.org#sha256=abc",
        ] {
            assert!(
                matches!(
                    bad.parse::<ServerAddress>(),
                    Err(InviteError::BadServer { .. })
                ),
                "{bad}"
            );
        }
    }
}
