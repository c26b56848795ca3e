//! The lobby API client: typed calls over HTTPS, trusting only the server the invite names.
//!
//! The client sends only signed records and public data; the join secret never leaves it.

use std::time::Duration;

use mpcnet_proto::api::{
    self, ApiErrorBody, CreateLobby, Departure, Joined, LobbyCreated, ServerInfo, SessionMembers,
};
use mpcnet_proto::label::printable;
use mpcnet_proto::{
    LobbyId, LobbySnapshot, ServerAddress, SignedAnnouncement, SignedJoin, SignedManifest,
    SignedRunReport,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pinned_tls::{self, PinMismatch};

/// How long one request may take, program uploads included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to the lobby server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server refused: {} ({})", .0.message, .0.status)]
    Refused(ApiErrorBody),
    #[error("{0}")]
    PinMismatch(PinMismatch),
    #[error("cannot reach the lobby server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("the server's answer does not decode: {0}")]
    BadAnswer(String),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

impl ClientError {
    /// The API's error code, when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused(body) => Some(&body.code),
            _ => None,
        }
    }
}

/// A client of one lobby server.
#[derive(Debug, Clone)]
pub struct LobbyClient {
    server: ServerAddress,
    http: reqwest::Client,
}

impl LobbyClient {
    /// A client that trusts `server`'s pinned certificate (or, unpinned, the platform's CAs).
    pub fn new(server: &ServerAddress) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(pinned_tls::client_config(server.pin())?)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("mpcnet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable {
                server: server.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            server: server.clone(),
            http,
        })
    }

    pub fn server(&self) -> &ServerAddress {
        &self.server
    }

    pub async fn info(&self) -> Result<ServerInfo, ClientError> {
        self.call_json(Method::GET, api::INFO_PATH, None::<&()>)
            .await
    }

    pub async fn create(&self, request: &CreateLobby) -> Result<LobbyCreated, ClientError> {
        self.call_json(Method::POST, api::LOBBIES_PATH, Some(request))
            .await
    }

    pub async fn snapshot(&self, lobby: &LobbyId) -> Result<LobbySnapshot, ClientError> {
        self.call_json(Method::GET, &api::lobby_path(lobby), None::<&()>)
            .await
    }

    pub async fn join(&self, lobby: &LobbyId, join: &SignedJoin) -> Result<Joined, ClientError> {
        self.call_json(Method::POST, &api::joins_path(lobby), Some(join))
            .await
    }

    pub async fn seal(
        &self,
        lobby: &LobbyId,
        manifest: &SignedManifest,
    ) -> Result<(), ClientError> {
        self.call(Method::PUT, &api::manifest_path(lobby), Some(manifest))
            .await
            .map(drop)
    }

    pub async fn announce(
        &self,
        lobby: &LobbyId,
        announcement: &SignedAnnouncement,
    ) -> Result<(), ClientError> {
        self.call(Method::PUT, &api::endpoints_path(lobby), Some(announcement))
            .await
            .map(drop)
    }

    /// Sends this party's run report, for the session page.
    pub async fn report_run(
        &self,
        lobby: &LobbyId,
        report: &SignedRunReport,
    ) -> Result<(), ClientError> {
        self.call(Method::PUT, &api::runs_path(lobby), Some(report))
            .await
            .map(drop)
    }

    /// The latest run report of each party that sent one (unverified).
    pub async fn run_reports(&self, lobby: &LobbyId) -> Result<Vec<SignedRunReport>, ClientError> {
        self.call_json(Method::GET, &api::runs_path(lobby), None::<&()>)
            .await
    }

    /// The parties of the session that closed their relay connection (the server's word).
    pub async fn departures(&self, lobby: &LobbyId) -> Result<Vec<Departure>, ClientError> {
        self.call_json(Method::GET, &api::departures_path(lobby), None::<&()>)
            .await
    }

    /// The parties of a sealed, live session (the server's word, for a relay that admits them).
    pub async fn members(&self, lobby: &LobbyId) -> Result<SessionMembers, ClientError> {
        self.call_json(Method::GET, &api::members_path(lobby), None::<&()>)
            .await
    }

    /// Whether this server's relay carries the sealed, live session `lobby` (`Ok` if so). A
    /// relay elsewhere (`mpcnet relay`) asks its lobby and keeps the answer, so it can admit
    /// the session's parties through a lobby outage.
    pub async fn relay_carries(&self, lobby: &LobbyId) -> Result<(), ClientError> {
        self.call(Method::HEAD, &api::session_relay_path(lobby), None::<&()>)
            .await
            .map(drop)
    }

    pub async fn announcements(
        &self,
        lobby: &LobbyId,
    ) -> Result<Vec<SignedAnnouncement>, ClientError> {
        self.call_json(Method::GET, &api::endpoints_path(lobby), None::<&()>)
            .await
    }

    /// The server's catalog of example programs.
    pub async fn examples(&self) -> Result<api::ExampleList, ClientError> {
        self.call_json(Method::GET, api::EXAMPLES_PATH, None::<&()>)
            .await
    }

    /// The text of the catalog's example `name`, checked against the catalog's hash of it.
    pub async fn example(&self, example: &api::ExampleInfo) -> Result<Vec<u8>, ClientError> {
        let response =
            (self.call(Method::GET, &api::example_path(&example.name), None::<&()>)).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if mpcnet_proto::Sha256Digest::of(&bytes) != example.sha256 {
            return Err(ClientError::BadAnswer(format!(
                "the example {} does not match the catalog's SHA-256",
                example.name
            )));
        }
        Ok(bytes.to_vec())
    }

    pub async fn program(&self, lobby: &LobbyId) -> Result<Vec<u8>, ClientError> {
        let response = self
            .call(Method::GET, &api::program_path(lobby), None::<&()>)
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        Ok(bytes.to_vec())
    }

    async fn call_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let response = self.call(method, path, body).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, self.server.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        let mut body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiErrorBody {
            status: status.as_u16(),
            code: "http_error".into(),
            message: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
        });
        // The server's words reach a terminal: nothing in them may steer it.
        body.message = printable(&body.message);
        body.code = printable(&body.code);
        Err(ClientError::Refused(body))
    }

    fn transport_error(&self, error: reqwest::Error) -> ClientError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        let mut innermost = error.to_string();
        while let Some(current) = source {
            if let Some(pin) = pin_mismatch(current) {
                return ClientError::PinMismatch(pin);
            }
            innermost = current.to_string();
            source = current.source();
        }
        ClientError::Unreachable {
            server: self.server.to_string(),
            reason: innermost,
        }
    }
}

/// The pin mismatch inside `error`. It is not reachable through `source()`: an `io::Error`
/// reports its inner error's source rather than the inner error, so unwrap those by hand.
fn pin_mismatch(mut error: &(dyn std::error::Error + 'static)) -> Option<PinMismatch> {
    while let Some(io) = error.downcast_ref::<std::io::Error>() {
        error = io.get_ref()?;
    }
    match error.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => other
            .0
            .downcast_ref::<PinMismatch>()
            .map(|pin| PinMismatch {
                expected: pin.expected,
            }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_cannot_steer_the_terminal() {
        assert_eq!(
            printable("lobby \u{1b}[2Jfull\u{202e}"),
            "lobby \u{fffd}[2Jfull\u{fffd}"
        );
        assert_eq!(
            printable("the lobby is full (409)"),
            "the lobby is full (409)"
        );
    }
}
