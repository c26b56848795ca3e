//! Endpoint announcements: a party tells the others, through the lobby, the direct addresses
//! where its agent listens. Signed by the party; the lobby keeps the latest per party.
//!
//! Addresses are hints, not trust: peer links authenticate by key whatever address they use.
//! The signature only stops the server (or anyone) from pointing a party's peers elsewhere.
//! Each announcement carries a stamp that grows with every announcement of the party, so an
//! old one replayed (pointing at an address the party left) is refused by the lobby.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, PublicKey, SigningPurpose};
use crate::join::LobbyId;
use crate::signed::{Signed, VerifyError};
use crate::statement::PartyStatement;

/// The most addresses one announcement may carry.
pub const MAX_ADDRESSES: usize = 32;

/// Where a party's agent can be reached directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointAnnouncement {
    pub lobby_id: LobbyId,
    pub party: PublicKey,
    /// Grows with each announcement of the party: its clock in Unix milliseconds when it made
    /// it, or one more than its previous stamp if that is not later. Starting from the clock,
    /// a restarted agent's announcements are newer than its earlier run's.
    pub at_unix_ms: u64,
    pub addrs: Vec<SocketAddr>,
}

/// An announcement signed by the party it describes.
pub type SignedAnnouncement = Signed<EndpointAnnouncement>;

impl EndpointAnnouncement {
    /// `party`'s signed announcement of `addrs` in `lobby_id`, stamped `at_unix_ms`
    /// (addresses beyond [`MAX_ADDRESSES`] are dropped).
    pub fn sign(
        lobby_id: LobbyId,
        party: &Identity,
        at_unix_ms: u64,
        mut addrs: Vec<SocketAddr>,
    ) -> SignedAnnouncement {
        addrs.truncate(MAX_ADDRESSES);
        let announcement = Self {
            lobby_id,
            party: party.public(),
            at_unix_ms,
            addrs,
        };
        Signed::state(&announcement, party)
    }
}

impl PartyStatement for EndpointAnnouncement {
    const PURPOSE: SigningPurpose = SigningPurpose::Announcement;

    fn lobby_id(&self) -> &LobbyId {
        &self.lobby_id
    }

    fn party(&self) -> &PublicKey {
        &self.party
    }

    /// Only a later announcement replaces the kept one: a replayed older one is stale.
    fn supersedes(&self, kept: &Self) -> bool {
        self.at_unix_ms > kept.at_unix_ms
    }

    fn check(&self) -> Result<(), VerifyError> {
        if self.addrs.len() > MAX_ADDRESSES {
            return Err(VerifyError::TooManyAddresses {
                count: self.addrs.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::JoinSecret;

    #[test]
    fn announcements_verify_only_for_their_lobby() {
        let party = Identity::generate();
        let lobby = JoinSecret::generate().lobby_id();
        let signed = EndpointAnnouncement::sign(
            lobby,
            &party,
            1,
            vec!["127.0.0.1:4000".parse().expect("addr")],
        );
        let announcement = signed.verify_statement(&lobby).expect("valid");
        assert_eq!(announcement.party, party.public());
        assert_eq!(
            signed.verify_statement(&JoinSecret::generate().lobby_id()),
            Err(VerifyError::StatementForAnotherLobby)
        );
    }

    #[test]
    fn an_announcement_signed_by_another_or_with_too_many_addresses_is_refused() {
        let party = Identity::generate();
        let lobby_id = JoinSecret::generate().lobby_id();
        let crowded = EndpointAnnouncement {
            lobby_id,
            party: party.public(),
            at_unix_ms: 1,
            addrs: vec!["127.0.0.1:4000".parse().expect("addr"); MAX_ADDRESSES + 1],
        };
        assert_eq!(
            Signed::state(&crowded, &party).verify_statement(&lobby_id),
            Err(VerifyError::TooManyAddresses {
                count: MAX_ADDRESSES + 1
            })
        );
        let mut honest = crowded.clone();
        honest.addrs.truncate(1);
        let by_other = Signed::sign(&honest, &Identity::generate(), SigningPurpose::Announcement);
        assert_eq!(
            by_other.verify_statement(&lobby_id),
            Err(VerifyError::BadSignature(SigningPurpose::Announcement))
        );
        // An announcement's signature is not a run report's.
        let as_report = Signed::sign(&honest, &party, SigningPurpose::RunReport);
        assert_eq!(
            as_report.verify_statement(&lobby_id),
            Err(VerifyError::BadSignature(SigningPurpose::Announcement))
        );
    }

    #[test]
    fn only_a_later_announcement_supersedes_the_kept_one() {
        let party = Identity::generate();
        let lobby = JoinSecret::generate().lobby_id();
        let stamped = |at_unix_ms: u64, port: u16| {
            EndpointAnnouncement::sign(
                lobby,
                &party,
                at_unix_ms,
                vec![([127, 0, 0, 1], port).into()],
            )
            .verify_statement(&lobby)
            .expect("valid")
        };
        let kept = stamped(1_000, 4000);
        assert!(
            stamped(1_001, 4001).supersedes(&kept),
            "a newer one replaces it"
        );
        assert!(
            !stamped(999, 3999).supersedes(&kept),
            "an older one is stale"
        );
        assert!(!kept.supersedes(&kept), "a replay of the kept one is stale");
    }
}
