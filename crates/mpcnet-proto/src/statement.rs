//! Statements a party makes about itself in a lobby (its direct addresses, how its run goes):
//! signed by the party, kept by the lobby as the latest per party, checked by every reader.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::identity::{Identity, PublicKey, SigningPurpose};
use crate::join::LobbyId;
use crate::signed::{Signed, VerifyError};

/// A value a party signs about itself for one lobby.
pub trait PartyStatement: Serialize + DeserializeOwned {
    /// The signing purpose, so a statement of one kind is never taken for another.
    const PURPOSE: SigningPurpose;

    fn lobby_id(&self) -> &LobbyId;

    /// The party the statement is about, and by.
    fn party(&self) -> &PublicKey;

    /// Bounds and consistency of the content itself.
    fn check(&self) -> Result<(), VerifyError>;

    /// Whether this statement may replace `kept`, the party's statement the lobby holds.
    fn supersedes(&self, _kept: &Self) -> bool {
        true
    }
}

impl<T: PartyStatement> Signed<T> {
    /// `party` signs `statement` (which must name `party`).
    pub fn state(statement: &T, party: &Identity) -> Self {
        debug_assert!(*statement.party() == party.public());
        Signed::sign(statement, party, T::PURPOSE)
    }

    /// Verifies the statement against the key it names and checks it is about `lobby_id`;
    /// the caller checks that key is a member.
    pub fn verify_statement(&self, lobby_id: &LobbyId) -> Result<T, VerifyError> {
        let claimed = self.decode_unverified()?;
        let statement = self.open(claimed.party(), T::PURPOSE)?;
        if statement.lobby_id() != lobby_id {
            return Err(VerifyError::StatementForAnotherLobby);
        }
        statement.check()?;
        Ok(statement)
    }
}
