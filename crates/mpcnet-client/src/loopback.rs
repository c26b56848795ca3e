//! The loopback redirect with PKCE (RFC 8252 7.3, RFC 7636): a one-shot HTTP listener on
//! 127.0.0.1 receives the authorization code the user's browser brings back from the issuer.
//!
//! The `state` ties the answer to this request; the code verifier, never sent until the code
//! is exchanged, keeps a code caught by another local program useless to it.

use std::time::Duration;

use mpcnet_proto::Sha256Digest;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::oidc::OidcError;

/// How long the user has to log in and approve in the browser.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// The most bytes read of one request to the listener.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long one connection to the listener may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A login waiting for its redirect.
#[derive(Debug)]
pub(crate) struct LoopbackLogin {
    listener: TcpListener,
    pub(crate) redirect_uri: String,
    state: String,
    verifier: String,
}

fn random_text() -> String {
    data_encoding::BASE64URL_NOPAD.encode(&rand::random::<[u8; 32]>())
}

impl LoopbackLogin {
    /// Listens on a free loopback port.
    pub(crate) async fn bind() -> Result<Self, OidcError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| OidcError::Loopback(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| OidcError::Loopback(e.to_string()))?
            .port();
        Ok(Self {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            state: random_text(),
            verifier: random_text(),
        })
    }

    /// The URL the user opens: an authorization code request for `client_id` with `nonce`.
    pub(crate) fn authorization_url(
        &self,
        endpoint: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<String, OidcError> {
        let mut url = url::Url::parse(endpoint)
            .map_err(|e| OidcError::Loopback(format!("{endpoint}: {e}")))?;
        let challenge = Sha256Digest::of(self.verifier.as_bytes());
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "openid email")
            .append_pair("state", &self.state)
            .append_pair("nonce", nonce)
            .append_pair(
                "code_challenge",
                &data_encoding::BASE64URL_NOPAD.encode(&challenge.0),
            )
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Waits for the browser to bring back the code for this login's `state`.
    pub(crate) async fn code(&self) -> Result<String, OidcError> {
        tokio::time::timeout(LOGIN_TIMEOUT, self.accept_code())
            .await
            .map_err(|_| OidcError::Loopback("no login came back within 10 minutes".into()))?
    }

    async fn accept_code(&self) -> Result<String, OidcError> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| OidcError::Loopback(e.to_string()))?;
            let Ok(Ok(target)) =
                tokio::time::timeout(REQUEST_TIMEOUT, request_target(&mut stream)).await
            else {
                continue;
            };
            let answer = self.answer(&target);
            let page = match &answer {
                Some(Ok(_)) => "mpcnet: login approved; you may close this page.\n",
                Some(Err(_)) => "mpcnet: the login was refused; see the terminal.\n",
                None => "mpcnet: not this login's answer.\n",
            };
            respond(&mut stream, page).await;
            if let Some(answer) = answer {
                return answer;
            }
        }
    }

    /// The code (or the issuer's refusal) in a redirect to `target`; `None` if it is not an
    /// answer to this login (another path or state).
    fn answer(&self, target: &str) -> Option<Result<String, OidcError>> {
        let url = url::Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        if url.path() != "/callback" || param("state").as_deref() != Some(&self.state) {
            return None;
        }
        Some(match (param("code"), param("error")) {
            (Some(code), None) => Ok(code),
            (_, error) => Err(OidcError::Refused {
                issuer: "the issuer".into(),
                error: error.unwrap_or_else(|| "no code in the redirect".into()),
            }),
        })
    }

    /// The token request's form for `code`.
    pub(crate) fn token_form<'a>(
        &'a self,
        code: &'a str,
        client_id: &'a str,
    ) -> [(&'a str, &'a str); 5] {
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &self.verifier),
        ]
    }
}

/// The target of an HTTP request's first line (`GET TARGET HTTP/1.1`).
async fn request_target(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n")
        && request.len() < MAX_REQUEST_BYTES
    {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&request);
    let line = text.lines().next().unwrap_or_default();
    match line.split(' ').collect::<Vec<_>>()[..] {
        ["GET", target, _] => Ok(target.to_owned()),
        _ => Err(std::io::Error::other("not a GET request")),
    }
}

async fn respond(stream: &mut TcpStream, page: &str) {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
