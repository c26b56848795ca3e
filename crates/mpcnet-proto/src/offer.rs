//! The creator's offer: how many parties, which program (by hash), its public arguments
//! and the relay to use, signed by the creator when the lobby is made.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::digest::Sha256Digest;
use crate::identity::{Identity, PublicKey, SigningPurpose};
use crate::join::LobbyId;
use crate::label::{Label, check_printable};
use crate::signed::{Signed, VerifyError};

/// The fewest parties an MPC session can have.
pub const MIN_PARTIES: u16 = 2;
/// The most parties a lobby accepts (MPyC itself scales further, but sessions of this size are exceptional).
pub const MAX_PARTIES: u16 = 64;
/// The most public program arguments an offer carries.
pub const MAX_ARGS: usize = 64;
/// The most characters of one public program argument.
pub const MAX_ARG_CHARS: usize = 1024;

/// The program every party runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramInfo {
    /// The file name the creator attached (no directories).
    pub file_name: Label,
    pub sha256: Sha256Digest,
    pub size: u64,
}

impl ProgramInfo {
    /// Describes `contents` attached as `file_name`.
    pub fn describe(file_name: Label, contents: &[u8]) -> Self {
        Self {
            file_name,
            sha256: Sha256Digest::of(contents),
            size: contents.len() as u64,
        }
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
}

impl LobbyOffer {
    /// Checks the offer's own consistency: bounds, lobby id, argument text.
    pub fn check(&self) -> Result<(), VerifyError> {
        let inconsistent = |why: String| Err(VerifyError::Inconsistent(why));
        if !(MIN_PARTIES..=MAX_PARTIES).contains(&self.parties) {
            return inconsistent(format!(
                "a session has {MIN_PARTIES} to {MAX_PARTIES} parties, not {}",
                self.parties
            ));
        }
        if self.lobby_id != LobbyId::for_join_key(&self.join_key) {
            return inconsistent("the lobby id does not belong to the join key".into());
        }
        if self.file_name_has_path() {
            return inconsistent("the program file name contains a directory".into());
        }
        if self.args.len() > MAX_ARGS {
            return inconsistent(format!("more than {MAX_ARGS} program arguments"));
        }
        for arg in &self.args {
            check_printable("a program argument", arg, MAX_ARG_CHARS)
                .map_err(|e| VerifyError::Inconsistent(e.to_string()))?;
        }
        if !matches!(self.relay_url.scheme(), "https" | "http") {
            return inconsistent("the relay URL is not http(s)".into());
        }
        Ok(())
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
            return Err(VerifyError::Inconsistent(
                "the offer names another creator".into(),
            ));
        }
        Ok(Signed::sign(offer, creator, SigningPurpose::Offer))
    }

    /// Verifies the offer against the creator key the verifier already trusts.
    pub fn verify(&self, creator: &PublicKey) -> Result<LobbyOffer, VerifyError> {
        let offer = self.open(creator, SigningPurpose::Offer)?;
        if offer.creator != *creator {
            return Err(VerifyError::Inconsistent(
                "the offer names another creator".into(),
            ));
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
        };
        SignedOffer::create(&offer, creator).expect("valid offer")
    }
}
