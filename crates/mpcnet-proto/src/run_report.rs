//! Run reports: how a party's run is going (its state, each link's path and RTT), signed by the
//! party and kept by the lobby for the session page. Metadata only: no addresses, no payload.

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, PublicKey, SigningPurpose};
use crate::join::LobbyId;
use crate::label::check_printable;
use crate::link_report::Route;
use crate::offer::MAX_PARTIES;
use crate::signed::{Signed, VerifyError};
use crate::statement::PartyStatement;

/// The most characters of a failure's reason in a report.
pub const MAX_REASON_CHARS: usize = 300;

/// Where a party's run is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RunState {
    /// Connecting to the other parties.
    Linking,
    /// MPyC is running over the links.
    Running,
    /// MPyC exited with this code and every peer heard it.
    Finished { exit_code: i32 },
    /// The run stopped before MPyC finished, for this reason.
    Failed { reason: String },
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Linking => f.write_str("linking"),
            Self::Running => f.write_str("running"),
            Self::Finished { exit_code: 0 } => f.write_str("finished"),
            Self::Finished { exit_code } => write!(f, "finished with exit code {exit_code}"),
            Self::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// How a link is routed, without its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPath {
    Direct,
    Relayed,
    None,
}

impl From<&Route> for LinkPath {
    fn from(route: &Route) -> Self {
        match route {
            Route::Direct(_) => Self::Direct,
            Route::Relay(_) => Self::Relayed,
            Route::None => Self::None,
        }
    }
}

/// One link of the reporting party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkStatus {
    /// The peer's party index.
    pub peer: u16,
    pub path: LinkPath,
    pub rtt_ms: Option<f64>,
    /// Seconds since the peer was last heard, while it is unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_s: Option<u64>,
}

/// A party's report on its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    pub lobby_id: LobbyId,
    pub party: PublicKey,
    /// When the party made the report (its clock, Unix milliseconds): each report of a run
    /// is later than the one before, so an old report replayed is refused.
    pub at_unix_ms: u64,
    pub state: RunState,
    pub links: Vec<LinkStatus>,
}

/// A run report signed by the party it describes.
pub type SignedRunReport = Signed<RunReport>;

impl RunReport {
    /// Signs the report as `party` (whose key it must name).
    pub fn sign(&self, party: &Identity) -> SignedRunReport {
        Signed::state(self, party)
    }
}

impl PartyStatement for RunReport {
    const PURPOSE: SigningPurpose = SigningPurpose::RunReport;

    fn lobby_id(&self) -> &LobbyId {
        &self.lobby_id
    }

    fn party(&self) -> &PublicKey {
        &self.party
    }

    fn supersedes(&self, kept: &Self) -> bool {
        self.at_unix_ms > kept.at_unix_ms
    }

    fn check(&self) -> Result<(), VerifyError> {
        if self.links.len() >= usize::from(MAX_PARTIES) {
            return Err(VerifyError::TooManyLinks {
                count: self.links.len(),
            });
        }
        if let RunState::Failed { reason } = &self.state {
            check_printable("a failure reason", reason, MAX_REASON_CHARS)
                .map_err(VerifyError::UnsafeFailureReason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::JoinSecret;

    fn report(party: &Identity, lobby_id: LobbyId, state: RunState) -> RunReport {
        RunReport {
            lobby_id,
            party: party.public(),
            at_unix_ms: 1,
            state,
            links: vec![LinkStatus {
                peer: 1,
                path: LinkPath::Direct,
                rtt_ms: Some(0.4),
                unreachable_s: None,
            }],
        }
    }

    #[test]
    fn reports_verify_for_their_lobby_and_keep_their_state() {
        let party = Identity::generate();
        let lobby = JoinSecret::generate().lobby_id();
        let finished = report(&party, lobby, RunState::Finished { exit_code: 0 });
        let signed = finished.sign(&party);
        assert_eq!(signed.verify_statement(&lobby), Ok(finished));
        let other = JoinSecret::generate().lobby_id();
        assert_eq!(
            signed.verify_statement(&other),
            Err(VerifyError::StatementForAnotherLobby)
        );
    }

    #[test]
    fn a_report_with_unsafe_text_or_too_many_links_is_refused() {
        let party = Identity::generate();
        let lobby = JoinSecret::generate().lobby_id();
        let reason = "lost \u{1b}[2Kparty 1".to_string();
        let bad_reason = report(&party, lobby, RunState::Failed { reason }).sign(&party);
        assert!(matches!(
            bad_reason.verify_statement(&lobby),
            Err(VerifyError::UnsafeFailureReason(_))
        ));
        let mut crowded = report(&party, lobby, RunState::Running);
        crowded.links = vec![crowded.links[0].clone(); usize::from(MAX_PARTIES)];
        assert_eq!(
            crowded.sign(&party).verify_statement(&lobby),
            Err(VerifyError::TooManyLinks {
                count: usize::from(MAX_PARTIES)
            })
        );
    }
}
