//! The lobby API as the benchmark uses it: signed records made before the clock starts, and
//! requests sent over HTTPS from a chosen loopback source address, so the server's per-address
//! limits apply to each simulated client on its own.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mpcnet_proto::api::{CreateLobby, session_relay_url};
use mpcnet_proto::offer::ProgramInfo;
use mpcnet_proto::{
    Identity, JoinSecret, Label, LobbyId, LobbyOffer, LobbySnapshot, SignedJoin, SignedOffer,
};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::server::Server;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One request, made in advance.
#[derive(Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Vec<u8>,
}

/// An HTTPS client of the server, sending from one source address.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    origin: Url,
}

impl Api {
    pub fn new(server: &Server, source: Ipv4Addr) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(server.tls_client_config()?)
            .local_address(IpAddr::V4(source))
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            origin: server.origin.clone(),
        })
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        Ok(self.origin.join(path)?)
    }

    /// Sends `call`; returns the status once the whole answer has arrived.
    pub async fn send(&self, call: &Call) -> anyhow::Result<StatusCode> {
        let answer = self
            .http
            .request(call.method.clone(), self.url(&call.path)?)
            .header("content-type", "application/json")
            .body(call.body.clone())
            .send()
            .await?;
        let status = answer.status();
        answer.bytes().await?;
        Ok(status)
    }

    /// Sends `call` and fails unless the server accepted it.
    pub async fn expect(&self, call: &Call) -> anyhow::Result<()> {
        let status = self.send(call).await?;
        anyhow::ensure!(
            status.is_success(),
            "{} {}: {status}",
            call.method,
            call.path
        );
        Ok(())
    }

    /// GET of `path`, timed.
    pub async fn timed_get(&self, path: &str) -> anyhow::Result<(Duration, StatusCode)> {
        let start = Instant::now();
        let status = self.send(&get(path)).await?;
        Ok((start.elapsed(), status))
    }

    /// An open streaming GET (a live page's `/events`).
    pub async fn open(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.get(self.url(path)?).send().await?)
    }

    /// Seals `lobby` as its creator: reads the snapshot, signs the manifest, stores it.
    pub async fn seal(&self, lobby: &PlannedLobby) -> anyhow::Result<()> {
        let path = format!("/v1/lobbies/{}", lobby.id);
        let snapshot: LobbySnapshot = self.http.get(self.url(&path)?).send().await?.json().await?;
        let manifest = snapshot.seal(&lobby.creator);
        self.expect(&Call {
            method: Method::PUT,
            path: format!("{path}/manifest"),
            body: serde_json::to_vec(&manifest)?,
        })
        .await
    }
}

pub fn get(path: &str) -> Call {
    Call {
        method: Method::GET,
        path: path.into(),
        body: Vec::new(),
    }
}

/// A lobby planned in advance: its parties, and the create and join requests, already signed.
pub struct PlannedLobby {
    pub id: LobbyId,
    pub creator: Identity,
    pub joiners: Vec<Identity>,
    pub create: Call,
    pub joins: Vec<Call>,
}

impl PlannedLobby {
    /// A lobby of `parties` parties with `program` as its program.
    pub fn new(server: &Server, parties: u16, program: &[u8]) -> anyhow::Result<Self> {
        let creator = Identity::generate();
        let secret = JoinSecret::generate();
        let offer = LobbyOffer {
            lobby_id: secret.lobby_id(),
            name: label("load")?,
            parties,
            creator: creator.public(),
            join_key: secret.join_key().public(),
            program: ProgramInfo::describe(label("load.py")?, program),
            args: Vec::new(),
            relay_url: server.origin.clone(),
            extra_relays: Vec::new(),
            seats: Vec::new(),
            require_identity: None,
            roles: Vec::new(),
        };
        let offer = SignedOffer::create(&offer, &creator).context("offer")?;
        let request = CreateLobby {
            creator_join: SignedJoin::new(&creator, label("p0")?, &secret, &offer),
            offer: offer.clone(),
            program: program.to_vec(),
        };
        let id = secret.lobby_id();
        let create = Call {
            method: Method::POST,
            path: mpcnet_proto::api::LOBBIES_PATH.into(),
            body: serde_json::to_vec(&request)?,
        };
        let joiners: Vec<Identity> = (1..parties).map(|_| Identity::generate()).collect();
        let joins = joiners
            .iter()
            .map(|party| join_call(&id, party, &secret, &offer))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            id,
            creator,
            joiners,
            create,
            joins,
        })
    }

    pub fn view_path(&self) -> String {
        format!("/v1/lobbies/{}/view", self.id)
    }

    /// The relay URL of this session.
    pub fn relay_url(&self, server: &Server) -> Url {
        session_relay_url(&server.origin, &self.id)
    }

    /// Creates, joins and seals it from `api`.
    pub async fn make_sealed(&self, api: &Api) -> anyhow::Result<()> {
        api.expect(&self.create).await?;
        for join in &self.joins {
            api.expect(join).await?;
        }
        api.seal(self).await
    }
}

fn join_call(
    id: &LobbyId,
    party: &Identity,
    secret: &JoinSecret,
    offer: &SignedOffer,
) -> anyhow::Result<Call> {
    let join = SignedJoin::new(party, label("p")?, secret, offer);
    Ok(Call {
        method: Method::POST,
        path: format!("/v1/lobbies/{id}/joins"),
        body: serde_json::to_vec(&join)?,
    })
}

fn label(text: &str) -> anyhow::Result<Label> {
    Label::new("name", text).map_err(|e| anyhow::anyhow!("label {text}: {e}"))
}
