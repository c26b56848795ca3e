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
//!
//! Every error is an [`ApiErrorBody`] with the HTTP status.

use serde::{Deserialize, Serialize};

use crate::join::{LobbyId, SignedJoin};
use crate::offer::SignedOffer;

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
    /// The party's index (MPyC's `-I`), final once the creator seals in join order.
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

/// Path of the server description.
pub const INFO_PATH: &str = "/v1/info";
/// Path of the lobby collection.
pub const LOBBIES_PATH: &str = "/v1/lobbies";

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

/// Path of a lobby's program file.
pub fn program_path(id: &LobbyId) -> String {
    format!("{LOBBIES_PATH}/{id}/program")
}
