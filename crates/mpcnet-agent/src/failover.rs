//! Leaving a relay that died. The endpoint receives through one relay of the session at a time
//! (its *home*, the only one in its relay map; peers reach it there). A QUIC connection to a
//! peer keeps sending on the path it selected until every connection to that peer is gone, and
//! a new connection's first packets go that same way. So when the home relay stays unreachable
//! for [`HOME_LOST_AFTER`], the agent gives it up for the rest of the run: the next relay of the
//! plan takes its place in the relay map (iroh reports at once and homes there), later dials no
//! longer name it, and a carrier relayed through it is closed before its link dials again
//! ([`crate::control`]). Every party moves in the plan's order, so they meet again on one relay.
//! The last relay is never given up: there is nowhere else to go, and it may come back.
//!
//! A relay on another host admits a session's parties on its lobby's word, and keeps the last
//! word it heard through a lobby outage; one that never heard of the session before its lobby
//! died (the lobby server's own relay with it) would admit no one. So at the start of its run
//! every agent asks each relay after the first whether it carries the session ([`introduce`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::Endpoint;
use iroh::{RelayUrl, Watcher as _};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use mpcnet_client::LobbyClient;
use mpcnet_proto::{LobbyId, ServerAddress};

use crate::endpoint::{RelayPlan, SessionRelay};

/// How long the home relay may stay unreachable before the agent gives it up: longer than a
/// relay's restart (a few seconds), shorter than a link's wait before it dials again twice.
pub const HOME_LOST_AFTER: Duration = Duration::from_secs(6);
/// How often the home relay's connection is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The session relays this agent gave up on, shared with the links' dialers.
#[derive(Debug, Clone, Default)]
pub struct GoneRelays(Arc<Mutex<Vec<RelayUrl>>>);

impl GoneRelays {
    /// Whether `url` was given up.
    pub fn contains(&self, url: &RelayUrl) -> bool {
        crate::lock(&self.0).contains(url)
    }

    /// `plan` without the relays given up.
    pub fn remaining(&self, plan: &RelayPlan) -> RelayPlan {
        let gone = crate::lock(&self.0);
        RelayPlan {
            relays: (plan.relays.iter())
                .filter(|relay| !gone.contains(&relay.url))
                .cloned()
                .collect(),
        }
    }

    fn give_up(&self, url: RelayUrl) {
        crate::lock(&self.0).push(url);
    }
}

/// Asks every relay of `plan` but the first whether it carries the session `lobby`, so each
/// hears of it from the lobby while the lobby lives; an answer that is not yes is logged.
pub fn introduce(plan: &RelayPlan, lobby: LobbyId) -> AbortOnDropHandle<()> {
    let others: Vec<SessionRelay> = plan.relays.iter().skip(1).cloned().collect();
    AbortOnDropHandle::new(tokio::spawn(async move {
        let asked = others.iter().map(|relay| introduce_to(relay, lobby));
        futures_util::future::join_all(asked).await;
    }))
}

async fn introduce_to(relay: &SessionRelay, lobby: LobbyId) {
    let mut origin = (*relay.url).clone();
    origin.set_query(None);
    let asked = async {
        let server = ServerAddress::new(&origin, relay.pin)?;
        LobbyClient::new(&server)?.relay_carries(&lobby).await?;
        anyhow::Ok(())
    };
    match asked.await {
        Ok(()) => tracing::debug!(relay = %origin, "the relay carries the session"),
        Err(error) => {
            tracing::warn!(relay = %origin, %error, "a relay of the session did not say it carries it")
        }
    }
}

/// Watches `endpoint`'s home relay until the handle drops, giving up a home of `plan` that
/// stays unreachable (into `gone`) while another relay remains.
pub fn watch(endpoint: Endpoint, plan: RelayPlan, gone: GoneRelays) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(leave_dead_homes(endpoint, plan, gone)))
}

async fn leave_dead_homes(endpoint: Endpoint, plan: RelayPlan, gone: GoneRelays) {
    let mut homes = endpoint.home_relay_status();
    let mut unreachable_since: Option<(RelayUrl, Instant)> = None;
    let mut ticker = tokio::time::interval(LOOK_EVERY);
    loop {
        ticker.tick().await;
        let home = homes.get().into_iter().next();
        let Some(home) = home.filter(|status| !status.is_connected()) else {
            unreachable_since = None;
            continue;
        };
        let url = home.url().clone();
        let since = match &unreachable_since {
            Some((lost, since)) if *lost == url => *since,
            _ => {
                unreachable_since = Some((url.clone(), Instant::now()));
                continue;
            }
        };
        let next = (gone.remaining(&plan).relays.into_iter()).find(|relay| relay.url != url);
        let Some(next) = next.filter(|_| since.elapsed() >= HOME_LOST_AFTER) else {
            continue;
        };
        tracing::warn!(relay = %url, next = %next.url, "the home relay is unreachable; moving to the next relay of the session");
        gone.give_up(url.clone());
        endpoint
            .insert_relay(next.url.clone(), Arc::new(next.config()))
            .await;
        endpoint.remove_relay(&url).await;
        unreachable_since = None;
    }
}
