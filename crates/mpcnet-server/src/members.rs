//! Who a relay admits: which sessions are sealed and live, and who their parties are. The lobby
//! server's own relay reads its store; a relay on another host (`mpcnet relay`) asks the lobby
//! (`GET /v1/lobbies/{id}/members`) and keeps each answer for [`MEMBERS_FRESH`], so admitting
//! the parties of a session and sweeping it cost the lobby one request per session that often;
//! while the lobby does not answer, its last word stands.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mpcnet_client::LobbyClient;
use mpcnet_proto::{LobbyId, PublicKey};

use crate::lock;
use crate::store::Store;

/// How long a relay on another host trusts the lobby's answer about a session.
pub const MEMBERS_FRESH: Duration = Duration::from_secs(5);
/// The most sessions whose answers a relay on another host keeps.
const MEMBERS_KEPT: usize = 1024;

/// The membership check could not be made (the store failed, the lobby did not answer).
#[derive(Debug, Clone, Copy)]
pub struct Unknown;

/// Where a relay learns a session's parties.
#[derive(Debug)]
pub enum Members {
    /// The lobby server's own store.
    Store(Store),
    /// The lobby on another host, asked over HTTPS (its certificate pinned).
    Lobby(LobbyMembers),
}

/// A sealed, live session as a relay sees it.
#[derive(Debug, Clone, Copy)]
pub struct LiveSession {
    /// Who created it, for per-creator budgets; `None` when unknown (a lobby elsewhere does
    /// not tell its creators' addresses).
    pub creator: Option<IpAddr>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Members {
    /// The session `lobby` if it is sealed and live.
    pub async fn live(&self, lobby: LobbyId) -> Result<Option<LiveSession>, Unknown> {
        match self {
            Self::Store(store) => {
                let store = store.clone();
                let creator =
                    tokio::task::spawn_blocking(move || store.sealed_creator(&lobby, now()))
                        .await
                        .map_err(|_| Unknown)?
                        .map_err(|_| Unknown)?;
                Ok(creator.map(|creator| LiveSession { creator }))
            }
            Self::Lobby(lobby_members) => Ok(lobby_members
                .members(lobby)
                .await?
                .map(|_| LiveSession { creator: None })),
        }
    }

    /// Which of `sessions` are still sealed and live (the store is asked once for all of them).
    pub async fn still_live(&self, sessions: Vec<LobbyId>) -> Result<Vec<LobbyId>, Unknown> {
        match self {
            Self::Store(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    let now = now();
                    let live = |id: &LobbyId| store.sealed_creator(id, now).map(|c| c.is_some());
                    sessions
                        .into_iter()
                        .filter_map(|id| live(&id).map(|yes| yes.then_some(id)).transpose())
                        .collect::<Result<Vec<_>, _>>()
                })
                .await
                .map_err(|_| Unknown)?
                .map_err(|_| Unknown)
            }
            Self::Lobby(lobby_members) => {
                let mut live = Vec::with_capacity(sessions.len());
                for id in sessions {
                    if lobby_members.members(id).await?.is_some() {
                        live.push(id);
                    }
                }
                Ok(live)
            }
        }
    }

    /// Whether `party` is a party of the sealed, live session `lobby`.
    pub async fn is_member(&self, lobby: LobbyId, party: PublicKey) -> Result<bool, Unknown> {
        match self {
            Self::Store(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.is_session_member(&lobby, &party, now()))
                    .await
                    .map_err(|_| Unknown)?
                    .map_err(|_| Unknown)
            }
            Self::Lobby(lobby_members) => Ok(lobby_members
                .members(lobby)
                .await?
                .is_some_and(|members| members.contains(&party))),
        }
    }
}

/// The lobby's answers about sessions, each kept for [`MEMBERS_FRESH`].
#[derive(Debug)]
pub struct LobbyMembers {
    lobby: LobbyClient,
    answers: Mutex<HashMap<LobbyId, Answer>>,
}

#[derive(Debug, Clone)]
struct Answer {
    at: Instant,
    /// The session's parties; `None`: not sealed or not live.
    members: Option<Vec<PublicKey>>,
}

impl LobbyMembers {
    pub fn new(lobby: LobbyClient) -> Self {
        Self {
            lobby,
            answers: Mutex::default(),
        }
    }

    /// The parties of `lobby` if it is sealed and live, from a fresh answer or the lobby.
    async fn members(&self, lobby: LobbyId) -> Result<Option<Vec<PublicKey>>, Unknown> {
        if let Some(answer) = lock(&self.answers).get(&lobby)
            && answer.at.elapsed() < MEMBERS_FRESH
        {
            return Ok(answer.members.clone());
        }
        let members = match self.lobby.members(&lobby).await {
            Ok(answer) => Some(answer.members),
            Err(error) if error.code() == Some("lobby_not_found") => None,
            Err(error) => return self.last_word(lobby, &error),
        };
        self.keep(lobby, members.clone());
        Ok(members)
    }

    /// What the lobby last said about `lobby`, however old, while it cannot be asked: a session
    /// the lobby vouched for stays relayed through a lobby outage (parties move to this relay
    /// when the lobby's own relay, on the same host, died), until the lobby says it ended.
    fn last_word(
        &self,
        lobby: LobbyId,
        error: &mpcnet_client::ClientError,
    ) -> Result<Option<Vec<PublicKey>>, Unknown> {
        let last = lock(&self.answers)
            .get(&lobby)
            .map(|answer| answer.members.clone());
        tracing::warn!(session = %lobby, %error, known = last.is_some(), "the lobby did not say who the session's parties are");
        last.ok_or(Unknown)
    }

    fn keep(&self, lobby: LobbyId, members: Option<Vec<PublicKey>>) {
        let mut answers = lock(&self.answers);
        if answers.len() >= MEMBERS_KEPT {
            answers.retain(|_, answer| answer.at.elapsed() < MEMBERS_FRESH);
        }
        if answers.len() >= MEMBERS_KEPT {
            answers.clear();
        }
        let at = Instant::now();
        answers.insert(lobby, Answer { at, members });
    }
}
