//! TLS trust for the lobby client: the certificate pinned by the invite, or the platform's CA
//! roots; and for an agent's relays, any of the session's pinned certificates.

use std::sync::Arc;

use mpcnet_proto::CertPin;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The server presented a certificate other than the pinned one.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server's certificate does not match the pin in the invite (sha256={expected}): wrong server, or an attacker in between"
)]
pub struct PinMismatch {
    pub expected: CertPin,
}

/// Accepts exactly the pinned certificates, by their SHA-256 (or, with `otherwise`, what that
/// verifier accepts), and checks the handshake is signed with the certificate's key.
#[derive(Debug)]
struct PinnedCertificate {
    pins: Vec<CertPin>,
    otherwise: Option<Arc<dyn ServerCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pins.contains(&CertPin::of_certificate(end_entity)) {
            return Ok(ServerCertVerified::assertion());
        }
        match (&self.otherwise, self.pins.first()) {
            (Some(otherwise), _) => otherwise.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            (None, Some(&expected)) => Err(rustls::Error::InvalidCertificate(
                CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch { expected }))),
            )),
            (None, None) => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls client configuration for a server with `pin`, or for one with a CA certificate.
pub fn client_config(pin: Option<CertPin>) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous();
    let verifier = servers_verifier(&Vec::from_iter(pin), pin.is_none(), provider)?;
    Ok(builder
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Trusts exactly the servers pinned in `pins`, and with `ca_too` also those the platform's
/// CA roots vouch for (for a session whose relays are some pinned, some CA-signed).
pub fn servers_verifier(
    pins: &[CertPin],
    ca_too: bool,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
    let otherwise: Option<Arc<dyn ServerCertVerifier>> = if ca_too {
        Some(Arc::new(rustls_platform_verifier::Verifier::new(
            provider.clone(),
        )?))
    } else {
        None
    };
    if pins.is_empty()
        && let Some(platform) = otherwise
    {
        return Ok(platform);
    }
    Ok(Arc::new(PinnedCertificate {
        pins: pins.to_vec(),
        otherwise,
        provider,
    }))
}
