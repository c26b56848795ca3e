//! The lobby server's HTTP API: paths and JSON bodies, shared by the server and its clients.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /v1/info` | | [`ServerInfo`] |
//! | `POST /v1/lobbies` | [`CreateLobby`] | 201 [`LobbyCreated`] |
//! | `GET /v1/lobbies/{id}` | | [`LobbySnapshot`](crate::lobby::LobbySnapshot) |
//! | `POST /v1/lobbies/{id}/joins` | [`SignedJoin`] | 201 or 200 (a repeat) [`Joined`] |
//! | `PUT /v1/lobbies/{id}/manifest` | [`SignedManifest`](crate::manifest::SignedManifest) | 204 |
//! | `GET /v1/lobbies/{id}/program` | | the program's bytes |
//! | `PUT /v1/lobbies/{id}/endpoints` | [`SignedAnnouncement`](crate::announcement::SignedAnnouncement) (by a member of the sealed lobby) | 204 |
//! | `GET /v1/lobbies/{id}/endpoints` | | the latest announcement of each party that made one |
//! | `PUT /v1/lobbies/{id}/runs` | [`SignedRunReport`](crate::run_report::SignedRunReport) (by a member) | 204 |
//! | `GET /v1/lobbies/{id}/runs` | | the latest run report of each party that made one |
//! | `GET /v1/lobbies/{id}/view` | | [`SessionView`]: what the session page shows |
//! | `GET /v1/lobbies/{id}/events` | | `text/event-stream` of [`SessionView`]s, one per change |
//!
//! Every error is an [`ApiErrorBody`] with the HTTP status.

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::identity::PublicKey;
use crate::identity_proof::ProvenIdentity;
use crate::join::{LobbyId, SignedJoin};
use crate::lobby::VerifiedLobby;
use crate::offer::SignedOffer;
use crate::run_report::{LinkPath, RunReport, RunState};

/// The server's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The server's mpcnet version.
    pub version: String,
    /// UDP port of the relay's QUIC address discovery, on the server's host; `None` if disabled.
    /// The relay itself is served at the server's own address (path `/relay`).
    pub relay_quic_port: Option<u16>,
    /// The server's self-signed certificate (DER, base64url), for clients to trust its relay
    /// after checking it against their pin; `None` for a CA-signed certificate.
    pub certificate: Option<String>,
    /// The largest program file a lobby accepts, in bytes (0: not said, by an older server).
    #[serde(default)]
    pub max_program_bytes: u64,
}

/// The creator's request to open a lobby.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLobby {
    pub offer: SignedOffer,
    /// The creator's own join record (party 0).
    pub creator_join: SignedJoin,
    /// The program file, base64url without padding.
    #[serde(with = "crate::signed::base64url")]
    pub program: Vec<u8>,
}

/// The answer to [`CreateLobby`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyCreated {
    pub lobby_id: LobbyId,
    /// Unix time (seconds) after which the server forgets the lobby.
    pub expires_at: u64,
}

/// The answer to a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The party's index (MPyC's `-I`): its named seat, or in an open session its place in
    /// join order, final once the creator seals.
    pub index: u16,
    /// The same key had joined before; nothing changed.
    pub repeated: bool,
}

/// Every error the API returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The HTTP status code, repeated for clients that only see the body.
    pub status: u16,
    /// A stable machine-readable code, e.g. `lobby_full`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// A session as the web page shows it, built by the server from what it stores. The page
/// trusts its server (it runs the server's script); terminals verify everything themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub lobby_id: LobbyId,
    pub name: String,
    pub phase: SessionPhase,
    pub parties_expected: u16,
    pub program: ProgramView,
    pub args: Vec<String>,
    /// The session fingerprint every party compares, once sealed.
    pub session_fingerprint: Option<String>,
    /// Unix time (seconds) when the server forgets the session.
    pub expires_at: u64,
    /// In join order before the seal (seat order in a named session), in the sealed order after.
    pub parties: Vec<PartyView>,
    /// A named session's seats, in order, each taken or not; absent for an open session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seats: Vec<SeatView>,
    /// An asymmetric program's roles as the offer signs them; absent when every seat runs
    /// the program's entry point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<crate::roles::Role>,
    /// One per pair of parties with a reported link, lower index first.
    pub links: Vec<PairLink>,
}

/// One seat of a named session: who may take it (the creator's list) and whether they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatView {
    pub index: u16,
    /// The creator's name for the party, if the list gave one.
    pub name: Option<String>,
    pub key: String,
    pub fingerprint: String,
    pub did: String,
    /// Whether the listed party has joined.
    pub taken: bool,
}

impl SeatView {
    /// The seats of `lobby`, in order (none for an open session).
    pub fn of(lobby: &VerifiedLobby) -> Vec<Self> {
        (0u16..)
            .zip(&lobby.offer.seats)
            .map(|(index, seat)| Self {
                index,
                name: seat.name.as_ref().map(ToString::to_string),
                key: seat.key.to_string(),
                fingerprint: seat.key.fingerprint().to_string(),
                did: seat.key.did_key(),
                taken: lobby.party(&seat.key).is_some(),
            })
            .collect()
    }
}

/// Where a session is, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionPhase {
    /// Waiting for parties to join.
    Open,
    /// Every seat is taken; waiting for the creator's seal.
    Full,
    /// Sealed; no party has started its run yet.
    Sealed,
    /// Some party is linking or running.
    Running,
    /// Every party finished its run.
    Finished,
    /// Some party's run failed.
    Failed,
}

/// The program of a [`SessionView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramView {
    pub file_name: String,
    pub sha256: String,
    pub size: u64,
}

/// One party of a [`SessionView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyView {
    pub index: u16,
    pub name: String,
    pub key: String,
    pub fingerprint: String,
    pub creator: bool,
    /// The party's latest run report, if it sent one.
    pub run: Option<RunState>,
    /// The account its identity proof shows, its claims checked by the server (the issuer's
    /// signature is checked by each party's mpcnet, not for the page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ProvenIdentity>,
}

/// The link between two parties, as the lower-indexed one reported it (or else the other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairLink {
    pub parties: [u16; 2],
    pub path: LinkPath,
    pub rtt_ms: Option<f64>,
    /// Seconds since one side last heard the other, while either reports it unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_s: Option<u64>,
}

impl SessionView {
    /// The view of `lobby` with the parties' latest `reports` (already checked as members').
    pub fn new(lobby: &VerifiedLobby, reports: &[RunReport], expires_at: u64) -> Self {
        let offer = &lobby.offer;
        let report_of = |key| reports.iter().find(|report| report.party == key);
        let parties: Vec<PartyView> = lobby
            .parties
            .iter()
            .map(|party| PartyView {
                index: party.index,
                name: party.name.to_string(),
                key: party.key.to_string(),
                fingerprint: party.key.fingerprint().to_string(),
                creator: party.key == offer.creator,
                run: report_of(party.key).map(|report| report.state.clone()),
                identity: party.identity.as_ref().map(|(_, proven)| proven.clone()),
            })
            .collect();
        let mut links: Vec<PairLink> = Vec::new();
        for party in &lobby.parties {
            let Some(report) = report_of(party.key) else {
                continue;
            };
            for status in &report.links {
                let peer = status.peer;
                let pair = [party.index.min(peer), party.index.max(peer)];
                if peer == party.index || usize::from(peer) >= parties.len() {
                    continue;
                }
                match links.iter_mut().find(|link| link.parties == pair) {
                    // The other side's report: it may know the pair is unreachable.
                    Some(known) => {
                        known.unreachable_s = known.unreachable_s.max(status.unreachable_s);
                    }
                    None => links.push(PairLink {
                        parties: pair,
                        path: status.path,
                        rtt_ms: status.rtt_ms,
                        unreachable_s: status.unreachable_s,
                    }),
                }
            }
        }
        links.sort_by_key(|link| link.parties);
        Self {
            lobby_id: offer.lobby_id,
            name: offer.name.to_string(),
            phase: phase(lobby, &parties),
            parties_expected: offer.parties,
            program: ProgramView {
                file_name: offer.program.file_name.to_string(),
                sha256: offer.program.sha256.to_string(),
                size: offer.program.size,
            },
            args: offer.args.clone(),
            session_fingerprint: lobby.sealed.as_ref().map(|s| s.fingerprint.to_string()),
            expires_at,
            parties,
            seats: SeatView::of(lobby),
            roles: offer.roles.clone(),
            links,
        }
    }
}

fn phase(lobby: &VerifiedLobby, parties: &[PartyView]) -> SessionPhase {
    if lobby.sealed.is_none() {
        return if lobby.is_full() {
            SessionPhase::Full
        } else {
            SessionPhase::Open
        };
    }
    let runs: Vec<&RunState> = parties.iter().filter_map(|p| p.run.as_ref()).collect();
    let failed = |run: &&RunState| match run {
        RunState::Failed { .. } => true,
        RunState::Finished { exit_code } => *exit_code != 0,
        RunState::Linking | RunState::Running => false,
    };
    if runs.iter().any(failed) {
        SessionPhase::Failed
    } else if runs.is_empty() {
        SessionPhase::Sealed
    } else if runs.len() == parties.len()
        && runs
            .iter()
            .all(|run| matches!(run, RunState::Finished { .. }))
    {
        SessionPhase::Finished
    } else {
        SessionPhase::Running
    }
}

/// Path of the server description.
pub const INFO_PATH: &str = "/v1/info";
/// Path of the lobby collection.
pub const LOBBIES_PATH: &str = "/v1/lobbies";
/// The server's catalog of example programs ([`ExampleList`]).
pub const EXAMPLES_PATH: &str = "/v1/examples";

/// Path of one example program's text.
pub fn example_path(name: &str) -> String {
    format!("{EXAMPLES_PATH}/{name}")
}

/// One example program of the server's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleInfo {
    /// Its name in the catalog (`mpcnet create --example NAME`).
    pub name: String,
    /// The file name a session gives it.
    pub file_name: String,
    /// One line on what it computes.
    pub summary: String,
    pub sha256: Sha256Digest,
    pub size: u64,
    /// A bundle's entry point (the seats in no role run it); absent for a single file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<crate::BundlePath>,
    /// An asymmetric bundle's roles, for the offer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<crate::roles::Role>,
}

/// The server's example programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleList {
    pub examples: Vec<ExampleInfo>,
}

/// Path of one lobby.
pub fn lobby_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}")
}

/// Path where parties join a lobby.
pub fn joins_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/joins")
}

/// Path of a lobby's sealed manifest.
pub fn manifest_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/manifest")
}

/// Path of a lobby's endpoint announcements.
pub fn endpoints_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/endpoints")
}

/// Path where members post their run reports.
pub fn runs_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/runs")
}

/// Path of a session's departures: the parties whose relay connection their own side closed.
pub fn departures_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/departures")
}

/// A party whose connection to the session's relay its own side closed (its agent exited or
/// was killed on a machine that is still up), as the server saw it. Unsigned: the server's
/// word, which a party acts on only for a peer it cannot reach anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    pub party: PublicKey,
    pub seconds_ago: u64,
}

/// Path of a sealed, live session's members, asked by relays on other hosts (`mpcnet relay`)
/// before they admit a client.
pub fn members_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/members")
}

/// The parties of a sealed, live session: the keys a relay of the session may admit. The
/// server's word (anyone may read a lobby's joins), trusted only by the relays it vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionMembers {
    pub members: Vec<PublicKey>,
}

/// Path of a lobby's program file.
pub fn program_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/program")
}

/// The query parameter of a relay URL that names the session it serves: the server keeps one
/// relay per sealed session, so a member can reach only the members of its own session.
pub const RELAY_SESSION_PARAM: &str = "session";

/// The relay URL a session's parties use: the offer's relay with the session named in it.
pub fn session_relay_url(relay: &url::Url, id: &LobbyId) -> url::Url {
    let mut url = relay.clone();
    url.query_pairs_mut()
        .clear()
        .append_pair(RELAY_SESSION_PARAM, &id.to_string());
    url
}

/// The path of a session's relay on a server: iroh's relay upgrade path with the session
/// named. A `HEAD` of it asks whether the server's relay carries the session (204) or not
/// (404), without an upgrade: a relay elsewhere asks its lobby then, and remembers.
pub fn session_relay_path(id: &LobbyId) -> String {
    format!("/relay?{RELAY_SESSION_PARAM}={id}")
}

/// The session a relay request names (the server's side of [`session_relay_url`]).
pub fn relay_session(query: Option<&str>) -> Option<LobbyId> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == RELAY_SESSION_PARAM)
        .and_then(|(_, value)| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::JoinSecret;
    use crate::label::Label;
    use crate::lobby::Lobby;
    use crate::offer::tests::signed_offer;
    use crate::run_report::LinkStatus;
    use crate::{Identity, PublicKey};

    /// A sealed lobby of three and its parties' keys.
    fn sealed_three() -> (Lobby, Vec<PublicKey>) {
        let secret = JoinSecret::generate();
        let keys: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
        let offer = signed_offer(&keys[0], &secret, 3, b"x=1");
        let join = |key: &Identity| {
            let name = Label::new("name", "p").expect("label");
            SignedJoin::new(key, name, &secret, &offer)
        };
        let mut lobby = Lobby::create(offer.clone(), join(&keys[0])).expect("created");
        for key in &keys[1..] {
            lobby.admit(join(key)).expect("admitted");
        }
        let manifest = lobby.snapshot().seal(&keys[0]);
        lobby.seal(manifest).expect("sealed");
        (lobby, keys.iter().map(Identity::public).collect())
    }

    fn report(lobby: &Lobby, party: PublicKey, state: RunState, peers: &[u16]) -> RunReport {
        RunReport {
            lobby_id: lobby.verified().offer.lobby_id,
            party,
            at_unix_ms: 1,
            state,
            links: peers
                .iter()
                .map(|&peer| LinkStatus {
                    peer,
                    path: LinkPath::Direct,
                    rtt_ms: Some(0.3),
                    unreachable_s: None,
                })
                .collect(),
        }
    }

    #[test]
    fn the_phase_follows_the_runs_and_each_pair_is_one_link() {
        let (lobby, keys) = sealed_three();
        let view = |reports: &[RunReport]| SessionView::new(lobby.verified(), reports, 0);
        assert_eq!(view(&[]).phase, SessionPhase::Sealed);
        let finished = |i: usize, code| {
            let peers: Vec<u16> = (0..3).filter(|&p| usize::from(p) != i).collect();
            report(
                &lobby,
                keys[i],
                RunState::Finished { exit_code: code },
                &peers,
            )
        };
        let two = [finished(0, 0), finished(1, 0)];
        assert_eq!(view(&two).phase, SessionPhase::Running);
        let all = [finished(0, 0), finished(1, 0), finished(2, 0)];
        let shown = view(&all);
        assert_eq!(shown.phase, SessionPhase::Finished);
        let pairs: Vec<[u16; 2]> = shown.links.iter().map(|link| link.parties).collect();
        assert_eq!(pairs, [[0, 1], [0, 2], [1, 2]]);
        let one_failed = [finished(0, 0), finished(1, 1), finished(2, 0)];
        assert_eq!(view(&one_failed).phase, SessionPhase::Failed);
        // A link to a seat that does not exist, or to oneself, is not shown.
        let odd = [report(&lobby, keys[0], RunState::Running, &[0, 9])];
        assert!(view(&odd).links.is_empty());
    }

    #[test]
    fn a_pair_is_unreachable_when_either_side_says_so() {
        let (lobby, keys) = sealed_three();
        let running = RunState::Running;
        let zero = report(&lobby, keys[0], running.clone(), &[1]);
        let mut one = report(&lobby, keys[1], running, &[0]);
        one.links[0].unreachable_s = Some(14);
        let view = SessionView::new(lobby.verified(), &[zero.clone(), one], 0);
        assert_eq!(view.links.len(), 1);
        assert_eq!(view.links[0].unreachable_s, Some(14));
        let view = SessionView::new(lobby.verified(), &[zero], 0);
        assert_eq!(view.links[0].unreachable_s, None);
    }

    #[test]
    fn a_session_relay_url_names_its_session_and_nothing_else() {
        let id = JoinSecret::generate().lobby_id();
        let base: url::Url = "https://lobby.example:7000/?session=other&x=1"
            .parse()
            .expect("url");
        let url = session_relay_url(&base, &id);
        assert_eq!(url.query(), Some(format!("session={id}").as_str()));
        assert_eq!(relay_session(url.query()), Some(id));
        assert_eq!(relay_session(Some("session=not-an-id")), None);
        assert_eq!(relay_session(None), None);
    }
}
