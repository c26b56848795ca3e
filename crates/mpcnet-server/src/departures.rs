//! The parties of each live session whose relay connection their own side closed: its FIN or
//! reset arrived, so the agent exited or was killed on a machine that is still up, unlike a
//! party gone silent (a cut network), which the relay drops only after its pings time out.
//! The other parties ask for them (`GET /v1/lobbies/{id}/departures`) when a peer stops
//! answering, to name a party that is gone within seconds instead of waiting out their patience.
//! In memory, bounded by the live sessions' parties; a party admitted again is no longer gone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use mpcnet_proto::api::Departure;
use mpcnet_proto::{LobbyId, PublicKey};

/// Departures per session.
#[derive(Debug, Default)]
pub struct Departures(Mutex<HashMap<LobbyId, HashMap<PublicKey, Instant>>>);

impl Departures {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LobbyId, HashMap<PublicKey, Instant>>> {
        crate::lock(&self.0)
    }

    /// `party` of `lobby` closed its relay connection just now.
    pub fn left(&self, lobby: LobbyId, party: PublicKey) {
        self.lock()
            .entry(lobby)
            .or_default()
            .insert(party, Instant::now());
    }

    /// `party` of `lobby` has a relay connection again.
    pub fn returned(&self, lobby: &LobbyId, party: &PublicKey) {
        if let Some(gone) = self.lock().get_mut(lobby) {
            gone.remove(party);
        }
    }

    /// The parties of `lobby` that left and did not return.
    pub fn of(&self, lobby: &LobbyId) -> Vec<Departure> {
        let departures = self.lock();
        let Some(gone) = departures.get(lobby) else {
            return Vec::new();
        };
        let mut list: Vec<Departure> = gone
            .iter()
            .map(|(party, at)| Departure {
                party: *party,
                seconds_ago: at.elapsed().as_secs(),
            })
            .collect();
        list.sort_by_key(|departure| departure.party.to_string());
        list
    }

    /// Forgets the sessions that are not in `live`.
    pub fn keep_only(&self, live: &[LobbyId]) {
        self.lock().retain(|lobby, _| live.contains(lobby));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcnet_proto::{Identity, JoinSecret};

    #[test]
    fn a_party_that_left_is_listed_until_it_returns_or_its_session_ends() {
        let departures = Departures::default();
        let (lobby, other) = (
            JoinSecret::generate().lobby_id(),
            JoinSecret::generate().lobby_id(),
        );
        let carol = Identity::generate().public();
        departures.left(lobby, carol);
        assert_eq!(departures.of(&lobby).len(), 1);
        assert_eq!(departures.of(&lobby)[0].party, carol);
        assert!(departures.of(&other).is_empty());
        departures.returned(&lobby, &carol);
        assert!(departures.of(&lobby).is_empty());
        departures.left(lobby, carol);
        departures.keep_only(&[other]);
        assert!(departures.of(&lobby).is_empty());
    }
}
