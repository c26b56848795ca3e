//! Endpoint announcements: a party tells the others, through the lobby, the direct addresses
//! where its agent listens. Signed by the party; the lobby keeps the latest per party.
//!
//! Addresses are hints, not trust: peer links authenticate by key whatever address they use.
//! The signature only stops the server (or anyone) from pointing a party's peers elsewhere.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, PublicKey, SigningPurpose};
use crate::join::LobbyId;
use crate::signed::{Signed, VerifyError};

/// The most addresses one announcement may carry.
pub const MAX_ADDRESSES: usize = 32;

/// Where a party's agent can be reached directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointAnnouncement {
    pub lobby_id: LobbyId,
    pub party: PublicKey,
    pub addrs: Vec<SocketAddr>,
}

/// An announcement signed by the party it describes.
pub type SignedAnnouncement = Signed<EndpointAnnouncement>;

impl SignedAnnouncement {
    /// `party` announces `addrs` in `lobby_id` (extra addresses beyond [`MAX_ADDRESSES`] are dropped).
    pub fn announce(lobby_id: LobbyId, party: &Identity, mut addrs: Vec<SocketAddr>) -> Self {
        addrs.truncate(MAX_ADDRESSES);
        let announcement = EndpointAnnouncement {
            lobby_id,
            party: party.public(),
            addrs,
        };
        Signed::sign(&announcement, party, SigningPurpose::Announcement)
    }

    /// Verifies the announcement against the key it names; the caller checks that key is a member.
    pub fn verify_self_signed(
        &self,
        lobby_id: &LobbyId,
    ) -> Result<EndpointAnnouncement, VerifyError> {
        let claimed = self.decode_unverified()?;
        let announcement = self.open(&claimed.party, SigningPurpose::Announcement)?;
        if announcement.lobby_id != *lobby_id {
            return Err(VerifyError::Inconsistent(
                "announcement for another lobby".into(),
            ));
        }
        if announcement.addrs.len() > MAX_ADDRESSES {
            return Err(VerifyError::Inconsistent(format!(
                "more than {MAX_ADDRESSES} addresses"
            )));
        }
        Ok(announcement)
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
        let signed = SignedAnnouncement::announce(
            lobby,
            &party,
            vec!["127.0.0.1:4000".parse().expect("addr")],
        );
        let announcement = signed.verify_self_signed(&lobby).expect("valid");
        assert_eq!(announcement.party, party.public());
        assert!(
            signed
                .verify_self_signed(&JoinSecret::generate().lobby_id())
                .is_err()
        );
    }
}
