//! OpenID Connect for identity proofs: an issuer's discovery document and published keys, the
//! logins that get a party its ID token (the device authorization grant, RFC 8628, or the
//! loopback redirect with PKCE, RFC 8252: `loopback`), and the check every party runs on every
//! other party's proof.
//!
//! Issuers are reached over HTTPS trusting the platform's CA roots, plus the certificates in
//! the PEM file `MPCNET_OIDC_EXTRA_CA` names (for tests, whose provider runs on loopback under
//! a certificate they made). TLS is always verified.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mpcnet_proto::identity_proof::{IssuerKeys, Jwks, ProofContext, proof_nonce};
use mpcnet_proto::lobby::VerifiedLobby;
use mpcnet_proto::{IdentityProof, LobbyId, PublicKey, VerifyError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;

use crate::loopback::LoopbackLogin;
use serde::de::DeserializeOwned;

/// The environment variable naming a PEM file of CA certificates trusted for issuers besides
/// the platform's (tests only: a real issuer has a CA-signed certificate).
pub const EXTRA_CA_VAR: &str = "MPCNET_OIDC_EXTRA_CA";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes mpcnet reads of an issuer's answer.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// RFC 8628 3.5: the polling interval when the issuer names none, and what `slow_down` adds.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Why talking to an issuer failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot read {EXTRA_CA_VAR}={path}: {reason}")]
    ExtraCa { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client setup: {0}")]
    Setup(String),
    #[error("cannot reach the issuer {issuer}: {reason}")]
    Unreachable { issuer: String, reason: String },
    #[error("the issuer {issuer} answered {url} with something mpcnet cannot use: {reason}")]
    BadAnswer {
        issuer: String,
        url: String,
        reason: String,
    },
    #[error("the discovery document at {issuer} names another issuer, {named:?}")]
    IssuerMismatch { issuer: String, named: String },
    #[error("the issuer {0} does not offer the device authorization grant")]
    NoDeviceFlow(String),
    #[error("the issuer {issuer} refused to issue a token: {error}")]
    Refused { issuer: String, error: String },
    #[error("the ID token the issuer returned does not verify: {0}")]
    OwnProof(mpcnet_proto::identity_proof::ProofError),
    #[error("the login's loopback redirect: {0}")]
    Loopback(String),
}

/// How the user approves the login that gets the ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFlow {
    /// The device authorization grant: a URL and a code to enter, on any device.
    Device,
    /// The authorization code flow with PKCE, redirected to a listener on 127.0.0.1: a browser
    /// on this machine.
    Loopback,
}

/// What the user is asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Prompt<'a> {
    Device(&'a DevicePrompt),
    /// Open this URL in a browser on this machine.
    Browser(&'a str),
}

/// What the user must do to approve the device flow.
#[derive(Debug, Clone, Deserialize)]
pub struct DevicePrompt {
    pub verification_uri: String,
    /// The verification URL with the code filled in, if the issuer offers one.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
}

/// The parts of an issuer's discovery document mpcnet uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    #[serde(flatten)]
    prompt: DevicePrompt,
    #[serde(default)]
    interval: Option<u64>,
    expires_in: u64,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// An HTTPS client for OpenID issuers.
#[derive(Debug, Clone)]
pub struct OidcClient {
    http: reqwest::Client,
}

impl OidcClient {
    /// A client trusting the platform's CA roots and those in [`EXTRA_CA_VAR`].
    pub fn new() -> Result<Self, OidcError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots()?,
            provider.clone(),
        )?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("mpcnet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OidcError::Setup(e.to_string()))?;
        Ok(Self { http })
    }

    /// The issuer's published signing keys, found through its discovery document.
    pub async fn keys(&self, issuer: &str) -> Result<Jwks, OidcError> {
        let discovery = self.discover(issuer).await?;
        self.get_json(issuer, &discovery.jwks_uri).await
    }

    /// Gets an ID token for `party` in `lobby` from `issuer` by `flow`: `on_prompt` shows the
    /// user where to approve it; this waits until they did (or refused). The token is checked
    /// here as every other party will check it.
    pub async fn prove(
        &self,
        login: &ProveWith,
        lobby: &LobbyId,
        party: &PublicKey,
    ) -> Result<IdentityProof, OidcError> {
        let issuer = login.issuer.as_str();
        let discovery = self.discover(issuer).await?;
        let nonce = proof_nonce(lobby, party);
        let id_token = match login.flow {
            LoginFlow::Device => self.device_token(&discovery, login, &nonce).await?,
            LoginFlow::Loopback => self.loopback_token(&discovery, login, &nonce).await?,
        };
        let proof = IdentityProof {
            issuer: issuer.to_owned(),
            client_id: login.client_id.clone(),
            id_token,
        };
        let jwks = self.get_json(issuer, &discovery.jwks_uri).await?;
        let keys = IssuerKeys::from([(issuer.to_owned(), jwks)]);
        let context = ProofContext {
            lobby,
            party,
            requirement: None,
        };
        proof
            .verify(context, &keys, unix_now())
            .map_err(OidcError::OwnProof)?;
        Ok(proof)
    }

    /// The device authorization grant: asks for a code, shows it, polls for the token.
    async fn device_token(
        &self,
        discovery: &Discovery,
        login: &ProveWith,
        nonce: &str,
    ) -> Result<String, OidcError> {
        let issuer = login.issuer.as_str();
        let endpoint = discovery
            .device_authorization_endpoint
            .as_deref()
            .ok_or_else(|| OidcError::NoDeviceFlow(issuer.to_owned()))?;
        let form = [
            ("client_id", login.client_id.as_str()),
            ("scope", "openid email"),
            ("nonce", nonce),
        ];
        let authorization: DeviceAuthorization = self.post_form(issuer, endpoint, &form).await?;
        (login.on_prompt)(Prompt::Device(&authorization.prompt));
        self.poll_token(
            issuer,
            &discovery.token_endpoint,
            &login.client_id,
            &authorization,
        )
        .await
    }

    /// The authorization code flow with PKCE and a loopback redirect.
    async fn loopback_token(
        &self,
        discovery: &Discovery,
        login: &ProveWith,
        nonce: &str,
    ) -> Result<String, OidcError> {
        let issuer = login.issuer.as_str();
        let endpoint = discovery.authorization_endpoint.as_deref().ok_or_else(|| {
            OidcError::Loopback(format!("{issuer} names no authorization endpoint"))
        })?;
        let redirect = LoopbackLogin::bind().await?;
        let url = redirect.authorization_url(endpoint, &login.client_id, nonce)?;
        (login.on_prompt)(Prompt::Browser(&url));
        let code = redirect.code().await?;
        let form = redirect.token_form(&code, &login.client_id);
        let answer: TokenAnswer = self
            .post_form(issuer, &discovery.token_endpoint, &form)
            .await?;
        answer.id_token.ok_or_else(|| OidcError::Refused {
            issuer: issuer.to_owned(),
            error: answer
                .error
                .unwrap_or_else(|| "no ID token in the answer".into()),
        })
    }

    /// Polls the token endpoint as RFC 8628 3.4-3.5 says, until a token, a refusal or expiry.
    async fn poll_token(
        &self,
        issuer: &str,
        token_endpoint: &str,
        client_id: &str,
        authorization: &DeviceAuthorization,
    ) -> Result<String, OidcError> {
        let mut interval = authorization
            .interval
            .map_or(DEFAULT_POLL_INTERVAL, Duration::from_secs);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(authorization.expires_in);
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", authorization.device_code.as_str()),
            ("client_id", client_id),
        ];
        loop {
            tokio::time::sleep(interval).await;
            let answer: TokenAnswer = self.post_form(issuer, token_endpoint, &form).await?;
            match (answer.id_token, answer.error.as_deref()) {
                (Some(token), _) => return Ok(token),
                (None, Some("authorization_pending")) => {}
                (None, Some("slow_down")) => interval += DEFAULT_POLL_INTERVAL,
                (None, error) => {
                    return Err(OidcError::Refused {
                        issuer: issuer.to_owned(),
                        error: error.unwrap_or("no ID token in the answer").to_owned(),
                    });
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OidcError::Refused {
                    issuer: issuer.to_owned(),
                    error: "the code expired before it was approved".into(),
                });
            }
        }
    }

    /// The discovery document, which must name `issuer` exactly (OpenID Connect Discovery 4.3).
    pub async fn discover(&self, issuer: &str) -> Result<Discovery, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(issuer, &url).await?;
        if discovery.issuer != issuer {
            return Err(OidcError::IssuerMismatch {
                issuer: issuer.to_owned(),
                named: discovery.issuer,
            });
        }
        Ok(discovery)
    }

    async fn get_json<T: DeserializeOwned>(&self, issuer: &str, url: &str) -> Result<T, OidcError> {
        self.read_json(issuer, url, self.http.get(url)).await
    }

    async fn post_form<T: DeserializeOwned>(
        &self,
        issuer: &str,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<T, OidcError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.read_json(issuer, url, request).await
    }

    /// Sends `request` and decodes its JSON answer (error answers too: OAuth errors are JSON).
    async fn read_json<T: DeserializeOwned>(
        &self,
        issuer: &str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, OidcError> {
        let unreachable = |e: reqwest::Error| OidcError::Unreachable {
            issuer: issuer.to_owned(),
            reason: error_chain(&e),
        };
        let bad = |reason: String| OidcError::BadAnswer {
            issuer: issuer.to_owned(),
            url: url.to_owned(),
            reason,
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(bad(format!("longer than {MAX_ANSWER_BYTES} bytes")));
            }
        }
        serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))
    }
}

/// The error and its causes on one line (reqwest hides the TLS reason in its sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The certificates of the PEM file [`EXTRA_CA_VAR`] names, if it is set.
fn extra_roots() -> Result<Vec<CertificateDer<'static>>, OidcError> {
    let Some(path) = std::env::var_os(EXTRA_CA_VAR).map(PathBuf::from) else {
        return Ok(Vec::new());
    };
    let failed = |reason: String| OidcError::ExtraCa {
        path: path.clone(),
        reason,
    };
    let roots = CertificateDer::pem_file_iter(&path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if roots.is_empty() {
        return Err(failed("no certificate in it".into()));
    }
    Ok(roots)
}

/// How a party proves its identity when it joins: which issuer, as which OAuth client, by
/// which login, and how the user is shown what to do.
#[derive(Debug, Clone)]
pub struct ProveWith {
    pub issuer: String,
    pub client_id: String,
    pub flow: LoginFlow,
    pub on_prompt: fn(Prompt<'_>),
}

impl ProveWith {
    /// An ID token binding `party` in `lobby` to the user's account (see [`OidcClient::prove`]).
    pub async fn prove(
        &self,
        lobby: &LobbyId,
        party: &PublicKey,
    ) -> Result<IdentityProof, OidcError> {
        OidcClient::new()?.prove(self, lobby, party).await
    }
}

/// This machine's clock, Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks every party's identity proof against its issuer's keys, fetching each issuer's keys
/// once; a party calls it on every verified lobby, trusting no check the server made.
#[derive(Debug, Default)]
pub struct ProofChecker {
    client: Option<OidcClient>,
    keys: IssuerKeys,
}

/// Why a lobby's identity proofs could not be checked, or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ProofCheckError {
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Refused(#[from] VerifyError),
}

impl ProofChecker {
    /// Verifies the proofs of `lobby`'s parties (signatures, claims, age).
    pub async fn check(&mut self, lobby: &VerifiedLobby) -> Result<(), ProofCheckError> {
        for issuer in lobby.proof_issuers() {
            if self.keys.contains_key(&issuer) {
                continue;
            }
            let client = match &self.client {
                Some(client) => client,
                None => self.client.insert(OidcClient::new()?),
            };
            let jwks = client.keys(&issuer).await?;
            self.keys.insert(issuer, jwks);
        }
        Ok(lobby.verify_identities(&self.keys, unix_now())?)
    }
}
