//! The embedded iroh relay: it forwards end-to-end encrypted packets between the parties of a
//! session that cannot reach each other directly, and QUIC address discovery tells each party
//! its public address.
//!
//! One relay per sealed, live session (`/relay?session=ID`): a relay forwards only between the
//! clients it holds, and it holds only that session's parties, so no other path exists between
//! sessions or from a stranger. The parties are the store's (the lobby server's own relay) or
//! the lobby's word (`mpcnet relay` on another host, [`Members`]). Each relay connection keeps its [`ConnectionTicket`] (its
//! listener slot and per-address count) until it closes; the ticket also closes it: when the
//! relay handshake takes too long, when the session ends (expired or removed), or when the
//! relay budget of the session's creator is spent. A client's sending rate is limited by iroh.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::Body;
use hyper::Request;
use hyper::body::Incoming;
use iroh_base::EndpointId;
use iroh_relay::KeyCache;
use iroh_relay::server::http_server::{Handlers, RelayService, RelayServiceWithNotify};
use iroh_relay::server::{
    Access, AccessControl, ClientRateLimit, ClientRequest, ConnectionId, QuicConfig, Server,
    ServerConfig,
};
use mpcnet_proto::{LobbyId, PublicKey};
use tokio::sync::Notify;

use crate::departures::Departures;
use crate::https::ConnectionTicket;
use crate::limits::RelayLimits;
use crate::lock;
use crate::members::{LiveSession, Members};
use crate::metrics::Metrics;

/// How many client keys a session's relay keeps parsed.
const KEY_CACHE_CAPACITY: usize = 128;
/// The request header that names a relay upgrade's ticket; set by the server, never the client's.
const TICKET_HEADER: &str = "x-mpcnet-relay-ticket";
/// How often the relays look for ended sessions, spent budgets and stuck handshakes.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(1);
/// How long an ended relay connection is looked at again for its client's FIN.
const UNSURE_FOR: Duration = Duration::from_secs(3);

/// The relays of every live session that has one.
#[derive(Debug)]
pub struct SessionRelays {
    members: Members,
    metrics: Arc<Metrics>,
    limits: RelayLimits,
    state: Mutex<RelaysState>,
    /// Where parties that closed their relay connection go; only the lobby's own relay has
    /// them (its API serves them), a relay elsewhere has no one to tell.
    departures: Option<Arc<Departures>>,
}

#[derive(Debug, Default)]
struct RelaysState {
    sessions: HashMap<LobbyId, SessionRelay>,
    /// Upgraded connections that have not finished the relay handshake, by ticket number.
    upgrading: HashMap<u64, Upgrading>,
    /// Admitted connections, until iroh says they ended.
    admitted: HashMap<ConnectionId, Admitted>,
    /// Ended connections whose client's FIN had not been seen when the relay let go (it can
    /// be a moment behind the end of the TLS stream), looked at again by each sweep until the
    /// deadline: then they count as dropped by the relay, not closed by the party.
    unsure: Vec<(Admitted, tokio::time::Instant)>,
    next_ticket: u64,
}

#[derive(Debug)]
struct SessionRelay {
    service: RelayService,
    /// iroh's counters of this session's relay alone (bytes received from its clients).
    traffic: Arc<iroh_relay::server::Metrics>,
    /// Who created the session (`None` for a lobby made before the address was kept).
    creator: Option<IpAddr>,
    /// Traffic already added to the server's own metrics.
    counted: Traffic,
    /// The creator's relay budget is spent: the session's clients are closed and refused.
    spent: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    bytes: u64,
    undelivered: u64,
}

impl SessionRelay {
    fn traffic(&self) -> Traffic {
        let received = self.traffic.send_packets_recv.get();
        let sent = self.traffic.send_packets_sent.get();
        Traffic {
            bytes: self.traffic.bytes_recv.get(),
            undelivered: received.saturating_sub(sent),
        }
    }
}

#[derive(Debug)]
struct Upgrading {
    ticket: Arc<ConnectionTicket>,
    lobby: LobbyId,
    deadline: tokio::time::Instant,
}

#[derive(Debug)]
struct Admitted {
    ticket: Arc<ConnectionTicket>,
    lobby: LobbyId,
    party: PublicKey,
}

/// Why a relay request is refused before its upgrade.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    NoSession,
    NotLive,
    BudgetSpent,
    Failed,
}

impl Refusal {
    fn response(self) -> http::Response<Body> {
        let (status, text) = match self {
            Self::NoSession => (
                http::StatusCode::BAD_REQUEST,
                "the relay URL names no session",
            ),
            Self::NotLive => (
                http::StatusCode::NOT_FOUND,
                "no sealed, live session with this id",
            ),
            Self::BudgetSpent => (
                http::StatusCode::TOO_MANY_REQUESTS,
                "the relay budget of this session's creator is spent",
            ),
            Self::Failed => (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "the relay could not check the session",
            ),
        };
        let mut response = http::Response::new(Body::from(text));
        *response.status_mut() = status;
        response
    }
}

/// The answer to a `HEAD` of a session's relay: the relay carries the session.
fn no_content() -> http::Response<Body> {
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    response
}

impl SessionRelays {
    /// The relays of the sessions `members` knows; a party that closes its relay connection
    /// goes into `departures`.
    pub fn new(
        members: Members,
        metrics: Arc<Metrics>,
        limits: RelayLimits,
        departures: Option<Arc<Departures>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            members,
            metrics,
            limits,
            state: Mutex::default(),
            departures,
        })
    }

    /// Serves a request to `/relay`: the upgrade to the relay of the session it names, which
    /// then holds `ticket` until the connection ends, or for a `HEAD`, whether it carries the
    /// session.
    pub async fn serve(
        self: &Arc<Self>,
        mut request: Request<Incoming>,
        ticket: Arc<ConnectionTicket>,
    ) -> http::Response<Body> {
        let Some(lobby) = mpcnet_proto::api::relay_session(request.uri().query()) else {
            return Refusal::NoSession.response();
        };
        let service = match self.session_service(lobby).await {
            Ok(service) => service,
            Err(refusal) => {
                Metrics::count(&self.metrics.relay_admissions, "refused");
                return refusal.response();
            }
        };
        if request.method() == http::Method::HEAD {
            return no_content();
        }
        let number = {
            let mut state = lock(&self.state);
            state.next_ticket += 1;
            state.next_ticket
        };
        let headers = request.headers_mut();
        headers.remove(TICKET_HEADER);
        headers.insert(TICKET_HEADER, http::HeaderValue::from(number));
        let relay = RelayServiceWithNotify::new(service, Arc::new(Notify::new()));
        let answer = hyper::service::Service::call(&relay, request).await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%error, "relay request failed");
                return Refusal::Failed.response();
            }
        };
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            // The handshake starts only once this response is written, so the ticket is there first.
            let deadline = tokio::time::Instant::now() + self.limits.handshake_timeout;
            lock(&self.state).upgrading.insert(
                number,
                Upgrading {
                    ticket,
                    lobby,
                    deadline,
                },
            );
        }
        response.map(Body::new)
    }

    /// The relay of `lobby`, made on first use if the lobby is sealed and live.
    async fn session_service(self: &Arc<Self>, lobby: LobbyId) -> Result<RelayService, Refusal> {
        if let Some(session) = lock(&self.state).sessions.get(&lobby) {
            return if session.spent {
                Err(Refusal::BudgetSpent)
            } else {
                Ok(session.service.clone())
            };
        }
        let live = (self.members.live(lobby).await)
            .map_err(|_| Refusal::Failed)?
            .ok_or(Refusal::NotLive)?;
        let mut state = lock(&self.state);
        let session = state
            .sessions
            .entry(lobby)
            .or_insert_with(|| self.new_session(lobby, live));
        Ok(session.service.clone())
    }

    fn new_session(self: &Arc<Self>, lobby: LobbyId, live: LiveSession) -> SessionRelay {
        let rate = self.limits.client_rate;
        let mut rate_limit = ClientRateLimit::new(rate.per_second);
        rate_limit.max_burst_bytes = Some(rate.burst);
        let traffic = Arc::new(iroh_relay::server::Metrics::default());
        let access = SessionAccess {
            lobby,
            relays: Arc::downgrade(self),
        };
        SessionRelay {
            service: RelayService::new(
                Handlers::default(),
                http::HeaderMap::new(),
                Some(rate_limit),
                KeyCache::new(KEY_CACHE_CAPACITY),
                Arc::new(access),
                traffic.clone(),
            ),
            traffic,
            creator: live.creator,
            counted: Traffic::default(),
            spent: false,
        }
    }

    /// Decides on a client that finished the relay handshake with `lobby`'s relay.
    async fn admit(&self, lobby: LobbyId, request: &ClientRequest) -> Result<(), &'static str> {
        let number = request
            .headers()
            .get(TICKET_HEADER)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let upgrading = number
            .and_then(|number| lock(&self.state).upgrading.remove(&number))
            .ok_or("the connection's handshake took too long")?;
        let party = PublicKey::from_bytes(request.endpoint_id().as_bytes())
            .map_err(|_| "not a valid party key")?;
        let member =
            (self.members.is_member(lobby, party).await).map_err(|_| "membership check failed")?;
        if !member {
            return Err("not a party of this session");
        }
        let mut state = lock(&self.state);
        let session = state.sessions.get(&lobby).ok_or("the session ended")?;
        if session.spent {
            return Err("the relay budget of this session's creator is spent");
        }
        let creator = session.creator;
        if state.clients_of(creator) >= self.limits.keys_per_creator {
            return Err("the relay clients of this session's creator are at their limit");
        }
        state.admitted.insert(
            request.connection_id(),
            Admitted {
                ticket: upgrading.ticket,
                lobby,
                party,
            },
        );
        if let Some(departures) = &self.departures {
            departures.returned(&lobby, &party);
        }
        Ok(())
    }

    /// Closes stuck handshakes, ends the relays of sessions that are no longer live or whose
    /// creator spent its budget, and adds the relays' traffic to the metrics.
    pub async fn sweep(&self) {
        let live = self.live_sessions().await;
        let mut state = lock(&self.state);
        state.close_stuck_handshakes(&self.metrics);
        if let Some(departures) = &self.departures {
            state.settle_departures(departures);
        }
        if let Some(live) = live {
            state.end_sessions_not_in(&live);
            if let Some(departures) = &self.departures {
                departures.keep_only(&live);
            }
        }
        state.spend_budgets(self.limits.bytes_per_creator);
        state.count_traffic(&self.metrics);
        self.metrics
            .relay_clients
            .set(i64::try_from(state.admitted.len()).unwrap_or(i64::MAX));
    }

    /// Which of the sessions with a relay are still sealed and live (`None` if the store failed).
    async fn live_sessions(&self) -> Option<Vec<LobbyId>> {
        let ids: Vec<LobbyId> = lock(&self.state).sessions.keys().copied().collect();
        let live = self.members.still_live(ids).await;
        if live.is_err() {
            tracing::error!("relay sweep: cannot tell which sessions are live");
        }
        live.ok()
    }
}

impl RelaysState {
    fn clients_of(&self, creator: Option<IpAddr>) -> usize {
        let Some(creator) = creator else {
            return 0;
        };
        self.admitted
            .values()
            .filter(|client| {
                self.sessions
                    .get(&client.lobby)
                    .is_some_and(|session| session.creator == Some(creator))
            })
            .count()
    }

    /// Records as gone the parties of ended connections whose FIN has come since, unless they
    /// are back on the relay; forgets those past their deadline.
    fn settle_departures(&mut self, departures: &Departures) {
        let now = tokio::time::Instant::now();
        for (client, until) in std::mem::take(&mut self.unsure) {
            let back = self
                .admitted
                .values()
                .any(|other| other.lobby == client.lobby && other.party == client.party);
            if back {
                continue;
            }
            if client.ticket.closed_by_client() {
                departures.left(client.lobby, client.party);
            } else if now < until {
                self.unsure.push((client, until));
            }
        }
    }

    fn close_stuck_handshakes(&mut self, metrics: &Metrics) {
        let now = tokio::time::Instant::now();
        self.upgrading.retain(|_, upgrading| {
            let stuck = upgrading.deadline <= now;
            if stuck {
                upgrading.ticket.close();
                Metrics::count(&metrics.relay_admissions, "handshake_timeout");
            }
            !stuck
        });
    }

    /// Closes every connection of sessions not in `live`, and forgets their relays.
    fn end_sessions_not_in(&mut self, live: &[LobbyId]) {
        let ended: Vec<LobbyId> = (self.sessions.keys())
            .filter(|id| !live.contains(id))
            .copied()
            .collect();
        for id in ended {
            tracing::info!(session = %id, "session ended: its relay clients are closed");
            self.close_clients_of(id);
            self.sessions.remove(&id);
        }
    }

    fn close_clients_of(&mut self, lobby: LobbyId) {
        for client in self
            .admitted
            .values()
            .filter(|client| client.lobby == lobby)
        {
            client.ticket.close();
        }
        for upgrading in self.upgrading.values().filter(|u| u.lobby == lobby) {
            upgrading.ticket.close();
        }
    }

    /// Ends the relays of every creator whose sessions together received more than `budget` bytes.
    fn spend_budgets(&mut self, budget: u64) {
        let mut used: HashMap<IpAddr, u64> = HashMap::new();
        for session in self.sessions.values() {
            if let Some(creator) = session.creator {
                *used.entry(creator).or_default() += session.traffic().bytes;
            }
        }
        let spent: Vec<LobbyId> = (self.sessions.iter())
            .filter(|(_, session)| {
                !session.spent
                    && session
                        .creator
                        .is_some_and(|creator| used.get(&creator).is_some_and(|&b| b > budget))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in spent {
            tracing::warn!(session = %id, budget, "relay budget of the session's creator spent");
            self.close_clients_of(id);
            if let Some(session) = self.sessions.get_mut(&id) {
                session.spent = true;
            }
        }
    }

    fn count_traffic(&mut self, metrics: &Metrics) {
        for session in self.sessions.values_mut() {
            let now = session.traffic();
            metrics
                .relay_bytes
                .inc_by(now.bytes.saturating_sub(session.counted.bytes));
            metrics
                .relay_undelivered
                .inc_by(now.undelivered.saturating_sub(session.counted.undelivered));
            session.counted = now;
        }
    }
}

/// Admission to one session's relay: parties of that session only, within its creator's budget.
#[derive(Debug)]
struct SessionAccess {
    lobby: LobbyId,
    relays: Weak<SessionRelays>,
}

impl AccessControl for SessionAccess {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let Some(relays) = self.relays.upgrade() else {
            return Access::Deny {
                reason: Some("the server is stopping".into()),
            };
        };
        let decision = relays.admit(self.lobby, request).await;
        let outcome = if decision.is_ok() {
            "admitted"
        } else {
            "refused"
        };
        Metrics::count(&relays.metrics.relay_admissions, outcome);
        tracing::debug!(endpoint = %request.endpoint_id().fmt_short(), session = %self.lobby, outcome, "relay connection");
        match decision {
            Ok(()) => Access::Allow,
            Err(reason) => Access::Deny {
                reason: Some(reason.into()),
            },
        }
    }

    fn on_disconnect(&self, _endpoint: EndpointId, connection: ConnectionId) {
        let Some(relays) = self.relays.upgrade() else {
            return;
        };
        let Some(client) = lock(&relays.state).admitted.remove(&connection) else {
            return;
        };
        let Some(departures) = &relays.departures else {
            return;
        };
        // Closed from its own side (not dropped by the relay for silence): the party is gone.
        if client.ticket.closed_by_client() {
            departures.left(client.lobby, client.party);
        } else {
            let until = tokio::time::Instant::now() + UNSURE_FOR;
            lock(&relays.state).unsure.push((client, until));
        }
    }
}

/// Starts QUIC address discovery on UDP `address`; the returned server stops when dropped.
pub async fn spawn_address_discovery(
    address: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Server, iroh_relay::server::SpawnError> {
    let mut quic = QuicConfig::new(address);
    quic.server_config = Some((*tls).clone());
    let mut config = ServerConfig::default();
    config.quic = Some(quic);
    Server::spawn(config).await
}
