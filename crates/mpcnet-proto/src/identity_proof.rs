//! Identity proofs: an OpenID Connect ID token whose `nonce` binds an account to a party's key
//! and lobby, and the creator's requirement of one. Verified by every party, no server trusted.
//!
//! The nonce is `base64url(SHA-256 over the length-prefixed parts "mpcnet-proof-v1", the lobby
//! id's 16 bytes, the party's 32-byte Ed25519 key)` ([`proof_nonce`]): a token issued for one
//! key or lobby names another nonce anywhere else. Two checks, both pure:
//! [`IdentityProof::check_claims`] (the token's claims against the lobby, the key and the
//! offer's requirement, its signature unchecked: what the server runs at admission) and
//! [`IdentityProof::verify`] (the same, plus the issuer's signature against its published keys
//! and the token's age against the verifier's clock: what every party runs).

use std::collections::BTreeMap;

use ring::signature::{self as ring_signature, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::digest::Sha256Digest;
use crate::identity::PublicKey;
use crate::join::LobbyId;
use crate::label::{check_printable, printable};

/// The most bytes of an ID token a join record carries.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The most characters of an issuer URL, a client id or an email pattern.
pub const MAX_NAME_CHARS: usize = 256;
/// How far a token's `iat` may lie ahead of the verifier's clock (clocks disagree a little).
pub const MAX_CLOCK_SKEW_S: u64 = 5 * 60;
/// How long after its `iat` a proof still verifies, expired or not: a week, past any lobby's life
/// on a default server (24 h), so a session never stops verifying while it lasts. See
/// ARCHITECTURE.md, "Identity proofs", for why `exp` is not the bound.
pub const MAX_PROOF_AGE_S: u64 = 7 * 24 * 60 * 60;

/// The nonce a party asks its issuer to put in the ID token proving its identity in `lobby`.
pub fn proof_nonce(lobby: &LobbyId, party: &PublicKey) -> String {
    let digest =
        Sha256Digest::of_parts(&[b"mpcnet-proof-v1", &lobby.to_bytes(), &party.to_bytes()]);
    data_encoding::BASE64URL_NOPAD.encode(&digest.0)
}

/// A party's proof of an account, carried in its signed join record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProof {
    /// The issuer, exactly as its tokens' `iss` spell it (an https URL).
    pub issuer: String,
    /// The OAuth client the token was issued to: its `aud`.
    pub client_id: String,
    /// The ID token, in JWS compact form.
    pub id_token: String,
}

/// What the creator requires of every party, signed into the offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRequirement {
    /// The issuer every party's proof must come from.
    pub issuer: String,
    /// The verified email every party's proof must carry: an address, or `*@domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl IdentityRequirement {
    /// Checks the requirement's own form: an https issuer, a well-formed email pattern.
    pub fn check(&self) -> Result<(), ProofError> {
        check_issuer(&self.issuer)?;
        if let Some(pattern) = &self.email {
            check_email_pattern(pattern)?;
        }
        Ok(())
    }
}

/// The identity a proof shows: who, according to which issuer, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenIdentity {
    pub issuer: String,
    pub subject: String,
    /// The verified email, if the token carried one.
    pub email: Option<String>,
    /// The token's `iat`, Unix seconds.
    pub issued_at: u64,
}

impl std::fmt::Display for ProvenIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = self.email.as_deref().unwrap_or(&self.subject);
        write!(
            f,
            "{} (verified by {})",
            printable(who),
            printable(&self.issuer)
        )
    }
}

/// An issuer's published signing keys (its JWKS document), by issuer.
pub type IssuerKeys = BTreeMap<String, Jwks>;

/// A JSON Web Key Set; keys of kinds mpcnet does not use are kept and never match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One JSON Web Key: RSA (`n`, `e`) or P-256 (`x`, `y`), each base64url.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// Why a proof does not show what it claims. Each names the one check that caught it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the ID token does not decode: {0}")]
    Malformed(String),
    #[error("the ID token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("{0}")]
    BadField(String),
    #[error("the issuer {0:?} is not an https URL")]
    IssuerNotHttps(String),
    #[error("the ID token is signed with {0:?}; mpcnet accepts RS256 and ES256")]
    UnsupportedAlgorithm(String),
    #[error(
        "the issuer's published keys do not verify the ID token's signature (forged or altered token)"
    )]
    BadSignature,
    #[error("no published keys of {0} were fetched")]
    NoKeysForIssuer(String),
    #[error("the ID token was issued by {token:?}, the proof names {proof:?}")]
    IssuerMismatch { proof: String, token: String },
    #[error("the session requires a proof from {required}, this one is from {got}")]
    WrongIssuer { required: String, got: String },
    #[error("the ID token was issued to another client (aud), not {0:?}")]
    AudienceMismatch(String),
    #[error(
        "the ID token's nonce is not this party's for this lobby (a token issued for another key or lobby)"
    )]
    NonceMismatch,
    #[error("the session requires an email matching {pattern:?}; the proof shows {got}")]
    EmailNotAllowed { pattern: String, got: String },
    #[error("the email pattern {0:?} is neither an address nor *@domain")]
    BadEmailPattern(String),
    #[error("the ID token was issued {0} s in the future of this machine's clock")]
    IssuedInFuture(u64),
    #[error(
        "the ID token was issued {0} s ago, more than the {MAX_PROOF_AGE_S} s a proof is accepted"
    )]
    TooOld(u64),
}

/// An ID token's claims mpcnet reads.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    iat: u64,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

/// `aud`: one client id or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// A JWS header's fields mpcnet reads.
#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Where a proof must fit: the lobby, the party's key and the offer's requirement.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    pub lobby: &'a LobbyId,
    pub party: &'a PublicKey,
    pub requirement: Option<&'a IdentityRequirement>,
}

impl IdentityProof {
    /// The token's claims checked against `context`, its signature NOT checked: what the
    /// server can refuse early. Parties call [`verify`](Self::verify).
    pub fn check_claims(&self, context: ProofContext<'_>) -> Result<ProvenIdentity, ProofError> {
        self.check_form()?;
        let (_, claims) = decode_token(&self.id_token)?;
        if claims.iss != self.issuer {
            return Err(ProofError::IssuerMismatch {
                proof: self.issuer.clone(),
                token: claims.iss,
            });
        }
        check_audience(&claims, &self.client_id)?;
        if claims.nonce.as_deref() != Some(&proof_nonce(context.lobby, context.party)) {
            return Err(ProofError::NonceMismatch);
        }
        let proven = ProvenIdentity {
            issuer: claims.iss,
            subject: claims.sub,
            email: claims.email.filter(|_| claims.email_verified == Some(true)),
            issued_at: claims.iat,
        };
        if let Some(requirement) = context.requirement {
            check_requirement(&proven, requirement)?;
        }
        Ok(proven)
    }

    /// Everything [`check_claims`](Self::check_claims) checks, plus the issuer's signature
    /// against `keys` and the token's `iat` against `now_unix` (the verifier's own clock).
    pub fn verify(
        &self,
        context: ProofContext<'_>,
        keys: &IssuerKeys,
        now_unix: u64,
    ) -> Result<ProvenIdentity, ProofError> {
        let proven = self.check_claims(context)?;
        let jwks = keys
            .get(&self.issuer)
            .ok_or_else(|| ProofError::NoKeysForIssuer(self.issuer.clone()))?;
        verify_signature(&self.id_token, jwks)?;
        check_age(proven.issued_at, now_unix)?;
        Ok(proven)
    }

    fn check_form(&self) -> Result<(), ProofError> {
        if self.id_token.len() > MAX_TOKEN_BYTES {
            return Err(ProofError::TooLong);
        }
        check_issuer(&self.issuer)?;
        check_printable("the client id", &self.client_id, MAX_NAME_CHARS)
            .map_err(|e| ProofError::BadField(e.to_string()))
    }
}

fn check_issuer(issuer: &str) -> Result<(), ProofError> {
    check_printable("the issuer", issuer, MAX_NAME_CHARS)
        .map_err(|e| ProofError::BadField(e.to_string()))?;
    match Url::parse(issuer) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(()),
        _ => Err(ProofError::IssuerNotHttps(issuer.to_owned())),
    }
}

/// `aud` must name the client; with several audiences, `azp` must name it too (OIDC Core 3.1.3.7).
fn check_audience(claims: &Claims, client_id: &str) -> Result<(), ProofError> {
    let named = match &claims.aud {
        Audience::One(aud) => aud == client_id,
        Audience::Many(auds) => {
            auds.iter().any(|aud| aud == client_id)
                && (auds.len() == 1 || claims.azp.as_deref() == Some(client_id))
        }
    };
    if named {
        Ok(())
    } else {
        Err(ProofError::AudienceMismatch(client_id.to_owned()))
    }
}

fn check_requirement(
    proven: &ProvenIdentity,
    requirement: &IdentityRequirement,
) -> Result<(), ProofError> {
    if proven.issuer != requirement.issuer {
        return Err(ProofError::WrongIssuer {
            required: requirement.issuer.clone(),
            got: proven.issuer.clone(),
        });
    }
    let Some(pattern) = &requirement.email else {
        return Ok(());
    };
    match &proven.email {
        Some(email) if email_matches(email, pattern) => Ok(()),
        other => Err(ProofError::EmailNotAllowed {
            pattern: pattern.clone(),
            got: other
                .clone()
                .unwrap_or_else(|| "no verified email".to_owned()),
        }),
    }
}

/// Checks an email pattern's form: `local@domain` or `*@domain`.
pub fn check_email_pattern(pattern: &str) -> Result<(), ProofError> {
    let bad = || ProofError::BadEmailPattern(pattern.to_owned());
    check_printable("the email pattern", pattern, MAX_NAME_CHARS).map_err(|_| bad())?;
    let (local, domain) = pattern.split_once('@').ok_or_else(bad)?;
    let well_formed = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains(['@', '*'])
        && (local == "*" || !local.contains('*'));
    if well_formed { Ok(()) } else { Err(bad()) }
}

/// Whether `email` matches `pattern` (an address, or `*@domain` for any address of the domain),
/// ignoring case.
fn email_matches(email: &str, pattern: &str) -> bool {
    let (email, pattern) = (email.to_lowercase(), pattern.to_lowercase());
    match (email.rsplit_once('@'), pattern.strip_prefix("*@")) {
        (Some((local, domain)), Some(wanted)) => {
            !local.is_empty() && !local.contains('@') && domain == wanted
        }
        (Some(_), None) => email == pattern,
        (None, _) => false,
    }
}

fn check_age(issued_at: u64, now_unix: u64) -> Result<(), ProofError> {
    if issued_at > now_unix.saturating_add(MAX_CLOCK_SKEW_S) {
        return Err(ProofError::IssuedInFuture(issued_at - now_unix));
    }
    let age = now_unix.saturating_sub(issued_at);
    if age > MAX_PROOF_AGE_S {
        return Err(ProofError::TooOld(age));
    }
    Ok(())
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, ProofError> {
    let bytes = base64url(part).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))
}

fn base64url(text: &str) -> Result<Vec<u8>, data_encoding::DecodeError> {
    data_encoding::BASE64URL_NOPAD.decode(text.as_bytes())
}

/// The header and claims of a compact JWS (`header.claims.signature`), unverified.
fn decode_token(token: &str) -> Result<(Header, Claims), ProofError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed(
            "not three dot-separated parts".into(),
        ));
    };
    Ok((
        decode_part(header, "header")?,
        decode_part(claims, "claims")?,
    ))
}

/// Checks the JWS signature with one of the issuer's keys that fits its header.
fn verify_signature(token: &str, jwks: &Jwks) -> Result<(), ProofError> {
    let (header, _) = decode_token(token)?;
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| ProofError::Malformed("no signature".into()))?;
    let signature = base64url(signature).map_err(|e| ProofError::Malformed(e.to_string()))?;
    let kty = match header.alg.as_str() {
        "RS256" => "RSA",
        "ES256" => "EC",
        other => return Err(ProofError::UnsupportedAlgorithm(other.to_owned())),
    };
    let fits = |key: &&Jwk| {
        key.kty == kty
            && header
                .kid
                .as_ref()
                .is_none_or(|kid| key.kid.as_ref() == Some(kid))
            && key.alg.as_ref().is_none_or(|alg| *alg == header.alg)
            && key
                .key_use
                .as_deref()
                .is_none_or(|key_use| key_use == "sig")
    };
    let verified = jwks
        .keys
        .iter()
        .filter(fits)
        .any(|key| key_verifies(key, signing_input.as_bytes(), &signature));
    if verified {
        Ok(())
    } else {
        Err(ProofError::BadSignature)
    }
}

/// Whether `key` (RSA for RS256, P-256 for ES256) verifies `signature` over `message`.
fn key_verifies(key: &Jwk, message: &[u8], signature: &[u8]) -> bool {
    let field = |value: &Option<String>| value.as_deref().and_then(|v| base64url(v).ok());
    match key.kty.as_str() {
        "RSA" => {
            let (Some(n), Some(e)) = (field(&key.n), field(&key.e)) else {
                return false;
            };
            RsaPublicKeyComponents { n, e }
                .verify(
                    &ring_signature::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
                .is_ok()
        }
        "EC" if key.crv.as_deref() == Some("P-256") => {
            let (Some(x), Some(y)) = (field(&key.x), field(&key.y)) else {
                return false;
            };
            let point = [&[4u8][..], &x, &y].concat();
            UnparsedPublicKey::new(&ring_signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;
    use crate::identity::Identity;
    use crate::join::JoinSecret;

    pub(crate) const ISSUER: &str = "https://login.uni.example";
    pub(crate) const CLIENT: &str = "mpcnet";
    pub(crate) const NOW: u64 = 1_800_000_000;

    /// A test issuer: a P-256 key that signs ES256 ID tokens.
    pub(crate) struct TestIssuer {
        key: EcdsaKeyPair,
        pub(crate) issuer: String,
    }

    impl TestIssuer {
        pub(crate) fn new(issuer: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("key");
            Self {
                key,
                issuer: issuer.to_owned(),
            }
        }

        pub(crate) fn keys(&self) -> IssuerKeys {
            let point = self.key.public_key().as_ref();
            let b64 = |bytes: &[u8]| data_encoding::BASE64URL_NOPAD.encode(bytes);
            let jwk = Jwk {
                kty: "EC".into(),
                kid: Some("k1".into()),
                alg: Some("ES256".into()),
                crv: Some("P-256".into()),
                x: Some(b64(&point[1..33])),
                y: Some(b64(&point[33..])),
                ..Jwk::default()
            };
            IssuerKeys::from([(self.issuer.clone(), Jwks { keys: vec![jwk] })])
        }

        /// A signed ID token with `claims`.
        pub(crate) fn token(&self, claims: &serde_json::Value) -> String {
            let b64 = |bytes: &[u8]| data_encoding::BASE64URL_NOPAD.encode(bytes);
            let header = br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#;
            let input = format!("{}.{}", b64(header), b64(claims.to_string().as_bytes()));
            let signature = self
                .key
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("signs");
            format!("{input}.{}", b64(signature.as_ref()))
        }

        /// A proof of `email` for `party` in `lobby`, issued at [`NOW`].
        pub(crate) fn proof(
            &self,
            lobby: &LobbyId,
            party: &PublicKey,
            email: &str,
        ) -> IdentityProof {
            let claims = serde_json::json!({
                "iss": self.issuer, "sub": format!("sub-{email}"), "aud": CLIENT,
                "nonce": proof_nonce(lobby, party), "iat": NOW, "exp": NOW + 600,
                "email": email, "email_verified": true,
            });
            IdentityProof {
                issuer: self.issuer.clone(),
                client_id: CLIENT.into(),
                id_token: self.token(&claims),
            }
        }
    }

    pub(crate) fn requirement(email: Option<&str>) -> IdentityRequirement {
        IdentityRequirement {
            issuer: ISSUER.into(),
            email: email.map(Into::into),
        }
    }

    struct Case {
        lobby: LobbyId,
        party: PublicKey,
        issuer: TestIssuer,
        requirement: IdentityRequirement,
    }

    impl Case {
        fn new() -> Self {
            Self {
                lobby: JoinSecret::generate().lobby_id(),
                party: Identity::generate().public(),
                issuer: TestIssuer::new(ISSUER),
                requirement: requirement(Some("*@uni.example")),
            }
        }

        fn context(&self) -> ProofContext<'_> {
            ProofContext {
                lobby: &self.lobby,
                party: &self.party,
                requirement: Some(&self.requirement),
            }
        }

        fn verify(&self, proof: &IdentityProof) -> Result<ProvenIdentity, ProofError> {
            proof.verify(self.context(), &self.issuer.keys(), NOW + 60)
        }

        /// A proof whose claims are the genuine ones edited by `edit`, signed by the issuer.
        fn edited(&self, edit: impl FnOnce(&mut serde_json::Value)) -> IdentityProof {
            let genuine = self
                .issuer
                .proof(&self.lobby, &self.party, "bob@uni.example");
            let (_, claims) = genuine.id_token.split_once('.').expect("jws");
            let claims = claims.split_once('.').expect("jws").0;
            let mut claims: serde_json::Value =
                serde_json::from_slice(&base64url(claims).expect("b64")).expect("json");
            edit(&mut claims);
            IdentityProof {
                id_token: self.issuer.token(&claims),
                ..genuine
            }
        }
    }

    #[test]
    fn the_nonce_binds_the_key_and_the_lobby() {
        let (lobby, party) = (
            JoinSecret::generate().lobby_id(),
            Identity::generate().public(),
        );
        let nonce = proof_nonce(&lobby, &party);
        assert_eq!(nonce.len(), 43, "base64url of 32 bytes");
        assert_eq!(nonce, proof_nonce(&lobby, &party));
        assert_ne!(
            nonce,
            proof_nonce(&JoinSecret::generate().lobby_id(), &party)
        );
        assert_ne!(nonce, proof_nonce(&lobby, &Identity::generate().public()));
    }

    #[test]
    fn a_genuine_proof_verifies_and_shows_its_email_and_issuer() {
        let case = Case::new();
        let proof = case
            .issuer
            .proof(&case.lobby, &case.party, "Bob@Uni.Example");
        let proven = case.verify(&proof).expect("verifies");
        assert_eq!(
            proven.to_string(),
            "Bob@Uni.Example (verified by https://login.uni.example)"
        );
        assert_eq!(proof.check_claims(case.context()), Ok(proven));
    }

    #[test]
    fn a_token_for_another_key_or_lobby_is_a_nonce_mismatch() {
        let case = Case::new();
        let other_key = case.issuer.proof(
            &case.lobby,
            &Identity::generate().public(),
            "bob@uni.example",
        );
        assert_eq!(case.verify(&other_key), Err(ProofError::NonceMismatch));
        let other_lobby = case.issuer.proof(
            &JoinSecret::generate().lobby_id(),
            &case.party,
            "bob@uni.example",
        );
        assert_eq!(case.verify(&other_lobby), Err(ProofError::NonceMismatch));
        let no_nonce = case.edited(|c| drop(c.as_object_mut().expect("object").remove("nonce")));
        assert_eq!(case.verify(&no_nonce), Err(ProofError::NonceMismatch));
    }

    #[test]
    fn a_forged_or_altered_signature_is_refused() {
        let case = Case::new();
        let genuine = case
            .issuer
            .proof(&case.lobby, &case.party, "bob@uni.example");
        // Claims rewritten (another email) under the genuine signature.
        let forged = TestIssuer::new(ISSUER).proof(&case.lobby, &case.party, "alice@uni.example");
        let (_, forged_claims) = forged.id_token.split_once('.').expect("jws");
        let (header, rest) = genuine.id_token.split_once('.').expect("jws");
        let signature = rest.rsplit_once('.').expect("jws").1;
        let forged_claims = forged_claims.rsplit_once('.').expect("jws").0;
        let spliced = IdentityProof {
            id_token: format!("{header}.{forged_claims}.{signature}"),
            ..genuine.clone()
        };
        assert_eq!(case.verify(&spliced), Err(ProofError::BadSignature));
        // Signed by a key the issuer never published.
        assert_eq!(case.verify(&forged), Err(ProofError::BadSignature));
        // The server's claim check cannot see either: only signature checks can.
        assert!(spliced.check_claims(case.context()).is_ok());
        // alg none, HS256: refused before any key is tried.
        let unsigned = format!("{}.{forged_claims}.", base64url_text(br#"{"alg":"none"}"#));
        let none = IdentityProof {
            id_token: unsigned,
            ..genuine
        };
        assert_eq!(
            case.verify(&none),
            Err(ProofError::UnsupportedAlgorithm("none".into()))
        );
    }

    fn base64url_text(bytes: &[u8]) -> String {
        data_encoding::BASE64URL_NOPAD.encode(bytes)
    }

    #[test]
    fn each_claim_check_is_named() {
        let case = Case::new();
        type Edit = fn(&mut serde_json::Value);
        let cases: &[(&str, Edit, ProofError)] = &[
            (
                "another issuer in the token",
                |c| c["iss"] = "https://evil.example".into(),
                ProofError::IssuerMismatch {
                    proof: ISSUER.into(),
                    token: "https://evil.example".into(),
                },
            ),
            (
                "another audience",
                |c| c["aud"] = "other-client".into(),
                ProofError::AudienceMismatch(CLIENT.into()),
            ),
            (
                "several audiences, azp elsewhere",
                |c| c["aud"] = serde_json::json!([CLIENT, "x"]),
                ProofError::AudienceMismatch(CLIENT.into()),
            ),
            (
                "an email outside the domain",
                |c| c["email"] = "bob@evil.example".into(),
                ProofError::EmailNotAllowed {
                    pattern: "*@uni.example".into(),
                    got: "bob@evil.example".into(),
                },
            ),
            (
                "a lookalike domain",
                |c| c["email"] = "bob@x.uni.example".into(),
                ProofError::EmailNotAllowed {
                    pattern: "*@uni.example".into(),
                    got: "bob@x.uni.example".into(),
                },
            ),
            (
                "an unverified email",
                |c| c["email_verified"] = false.into(),
                ProofError::EmailNotAllowed {
                    pattern: "*@uni.example".into(),
                    got: "no verified email".into(),
                },
            ),
            (
                "issued in the future",
                |c| c["iat"] = (NOW + 3600).into(),
                ProofError::IssuedInFuture(3540),
            ),
            (
                "issued too long ago",
                |c| c["iat"] = (NOW - MAX_PROOF_AGE_S).into(),
                ProofError::TooOld(MAX_PROOF_AGE_S + 60),
            ),
        ];
        for (what, edit, expected) in cases {
            assert_eq!(
                case.verify(&case.edited(*edit)).as_ref(),
                Err(expected),
                "{what}"
            );
        }
        // Expired long ago but issued within the proof's age: accepted (see MAX_PROOF_AGE_S).
        let expired = case.edited(|c| c["exp"] = (NOW - 3600).into());
        assert!(case.verify(&expired).is_ok());
        // Several audiences with azp naming the client: accepted.
        let azp = case.edited(|c| {
            c["aud"] = serde_json::json!([CLIENT, "x"]);
            c["azp"] = CLIENT.into();
        });
        assert!(case.verify(&azp).is_ok());
    }

    #[test]
    fn a_proof_from_another_issuer_than_required_is_refused() {
        let case = Case::new();
        let elsewhere = TestIssuer::new("https://login.other.example");
        let proof = elsewhere.proof(&case.lobby, &case.party, "bob@uni.example");
        assert_eq!(
            proof.verify(case.context(), &elsewhere.keys(), NOW),
            Err(ProofError::WrongIssuer {
                required: ISSUER.into(),
                got: "https://login.other.example".into()
            })
        );
        // The required issuer's keys are not another issuer's.
        let unrequired = ProofContext {
            requirement: None,
            ..case.context()
        };
        assert_eq!(
            proof.verify(unrequired, &case.issuer.keys(), NOW),
            Err(ProofError::NoKeysForIssuer(
                "https://login.other.example".into()
            ))
        );
    }

    #[test]
    fn email_patterns_are_an_address_or_any_address_of_a_domain() {
        for good in ["*@uni.example", "bob@uni.example"] {
            assert_eq!(check_email_pattern(good), Ok(()), "{good}");
        }
        for bad in [
            "uni.example",
            "*@",
            "@uni.example",
            "b*b@uni.example",
            "*@*.example",
            "a@b@c",
        ] {
            assert!(check_email_pattern(bad).is_err(), "{bad}");
        }
        assert!(email_matches("BOB@uni.example", "bob@UNI.example"));
        assert!(!email_matches("bob@uni.example.evil", "*@uni.example"));
        assert!(!email_matches("alice@uni.example", "bob@uni.example"));
        assert_eq!(requirement(None).check(), Ok(()),);
        assert_eq!(
            IdentityRequirement {
                issuer: "http://login.uni.example".into(),
                email: None
            }
            .check(),
            Err(ProofError::IssuerNotHttps(
                "http://login.uni.example".into()
            ))
        );
    }
}
