//! The session manifest: the creator's offer and the ordered join records of every party,
//! sealed with the creator's signature once the lobby is full.

use serde::{Deserialize, Serialize};

use crate::digest::Fingerprint;
use crate::identity::{Identity, SigningPurpose};
use crate::join::SignedJoin;
use crate::offer::SignedOffer;
use crate::signed::Signed;

/// The ordered parties of a session and what they run. Party `i` is `parties[i]`; the creator is party 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub offer: SignedOffer,
    pub parties: Vec<SignedJoin>,
}

/// A manifest sealed by the creator.
pub type SignedManifest = Signed<Manifest>;

impl SignedManifest {
    /// The creator seals `parties` (in this order) under `offer`.
    pub fn seal(offer: SignedOffer, parties: Vec<SignedJoin>, creator: &Identity) -> Self {
        Signed::sign(
            &Manifest { offer, parties },
            creator,
            SigningPurpose::Manifest,
        )
    }

    /// The session fingerprint every party shows, to compare out of band.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::new("mpcnet session fingerprint v1", self.payload(), 5)
    }
}
