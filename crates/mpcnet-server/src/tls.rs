//! The server's TLS identity: a certificate given by the operator, or a self-signed one
//! generated on first start and kept in the data directory, so invites that pin it stay valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mpcnet_proto::CertPin;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const SELF_SIGNED_CERT_FILE: &str = "tls-cert.pem";
const SELF_SIGNED_KEY_FILE: &str = "tls-key.pem";
/// The names the self-signed certificate was made for, one a line.
const SELF_SIGNED_NAMES_FILE: &str = "tls-names.txt";

/// Why the server's certificate could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no usable PEM {what} in it")]
    Pem { path: PathBuf, what: &'static str },
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("certificate and key do not fit together: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// Whether the error lies in files the operator named (missing, unreadable, not PEM).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Pem { .. })
    }
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum CertificateSource {
    /// A certificate chain and key in PEM files (e.g. from a CA); invites then carry no pin.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate in the data directory, made on first start for these names.
    SelfSigned {
        data_dir: PathBuf,
        names: Vec<String>,
    },
}

/// The certificate the server presents.
#[derive(Debug)]
pub struct ServerCertificate {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// Present when the certificate is self-signed: clients must pin it.
    pub pin: Option<CertPin>,
    /// The names the certificate covers (self-signed only; empty for a CA's certificate).
    pub names: Vec<String>,
}

impl ServerCertificate {
    /// Loads or makes the certificate described by `source`.
    pub fn load(source: &CertificateSource) -> Result<Self, TlsError> {
        match source {
            CertificateSource::Files { cert, key } => Ok(Self {
                chain: read_pem_certificates(cert)?,
                key: read_pem_key(key)?,
                pin: None,
                names: Vec::new(),
            }),
            CertificateSource::SelfSigned { data_dir, names } => {
                load_or_create_self_signed(data_dir, names)
            }
        }
    }

    /// The rustls configuration for the HTTPS listener and for QUIC address discovery.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        // The relay upgrades HTTP/1.1 connections to WebSockets: offer no h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn load_or_create_self_signed(
    data_dir: &Path,
    names: &[String],
) -> Result<ServerCertificate, TlsError> {
    let cert_path = data_dir.join(SELF_SIGNED_CERT_FILE);
    let key_path = data_dir.join(SELF_SIGNED_KEY_FILE);
    let names_path = data_dir.join(SELF_SIGNED_NAMES_FILE);
    if !cert_path.exists() {
        // The certificate is written last: it marks the set complete, so a crash part-way
        // leaves no certificate and the next start makes them all again.
        let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
        write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
        write_private(&names_path, names.join("\n").as_bytes())?;
        write_private(&cert_path, generated.cert.pem().as_bytes())?;
        tracing::info!(path = %cert_path.display(), ?names, "generated a self-signed certificate");
    }
    let chain = read_pem_certificates(&cert_path)?;
    let pin = CertPin::of_certificate(&chain[0]);
    let covered: Vec<String> = std::fs::read_to_string(&names_path)
        .map_err(|source| TlsError::Io {
            path: names_path.clone(),
            source,
        })?
        .lines()
        .map(str::to_owned)
        .collect();
    for name in names.iter().filter(|name| !covered.contains(name)) {
        tracing::warn!(
            %name,
            path = %cert_path.display(),
            "the kept self-signed certificate does not cover this name; relay clients that use it will fail. \
             Delete the certificate files to make a new one (this changes the pin: old invites stop working)"
        );
    }
    Ok(ServerCertificate {
        chain,
        key: read_pem_key(&key_path)?,
        pin: Some(pin),
        names: covered,
    })
}

fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|_| TlsError::Pem {
            path: path.into(),
            what: "certificate",
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem {
            path: path.into(),
            what: "certificate",
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.into(),
            what: "certificate",
        });
    }
    Ok(chain)
}

fn read_pem_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|_| TlsError::Pem {
        path: path.into(),
        what: "private key",
    })
}

/// Writes `contents` to `path` (only its owner may read it) through a temporary file and a
/// rename, so `path` never holds half a file.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let temporary = path.with_extension("tmp");
    let io = |source| TlsError::Io {
        path: path.into(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_kept_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = CertificateSource::SelfSigned {
            data_dir: dir.path().into(),
            names: vec!["localhost".into(), "127.0.0.1".into()],
        };
        let first = ServerCertificate::load(&source).expect("generated");
        let second = ServerCertificate::load(&source).expect("loaded");
        assert_eq!(first.pin, second.pin);
        assert!(first.pin.is_some());
        assert_eq!(
            second.names,
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        );
        let mode = std::fs::metadata(dir.path().join(SELF_SIGNED_KEY_FILE))
            .expect("key file")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        first.server_config().expect("usable by rustls");
    }

    #[test]
    fn a_set_interrupted_before_its_certificate_is_made_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(SELF_SIGNED_KEY_FILE),
            "stale half-written key",
        )
        .expect("stale key");
        let source = CertificateSource::SelfSigned {
            data_dir: dir.path().into(),
            names: vec!["localhost".into()],
        };
        let certificate =
            ServerCertificate::load(&source).expect("a fresh set replaces the stale key");
        certificate.server_config().expect("usable by rustls");
    }
}
