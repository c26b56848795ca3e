//! The real `mpcnet serve` as a child process on loopback: started on a free port with its own
//! data directory, measured from /proc (resident memory) and its files, killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use mpcnet_proto::ServerAddress;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use url::Url;

const MPCNET: &str = env!("CARGO_BIN_EXE_mpcnet");
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; killing it on drop, on success and failure alike.
pub struct Server {
    child: Child,
    pub origin: Url,
    pub https: SocketAddr,
    pub certificate: CertificateDer<'static>,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A TLS client configuration that trusts this server's certificate (and nothing else).
    pub fn tls_client_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.clone())?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    /// Starts `mpcnet serve` on 127.0.0.1 with the default limits and `extra` flags.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(MPCNET)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--public-name",
                "127.0.0.1",
            ])
            .args(["--metrics-listen", "off", "--data"])
            .arg(&data)
            .args(extra)
            .env("MPCNET_HOME", dir.path().join("home"))
            .env("MPCNET_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting mpcnet serve")?;
        let mut server = Self {
            child,
            origin: Url::parse("https://127.0.0.1/")?,
            https: SocketAddr::from(([127, 0, 0, 1], 0)),
            certificate: CertificateDer::from(Vec::new()),
            data,
            _dir: dir,
        };
        server.read_address()?;
        Ok(server)
    }

    /// Reads the `--server` value the server prints first, and its certificate.
    fn read_address(&mut self) -> anyhow::Result<()> {
        let stdout = self.child.stdout.take().context("no stdout")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(START_TIMEOUT)
            .context("the server printed no address")?;
        let address: ServerAddress = line.trim().parse().context("the server's address")?;
        self.origin = address.origin().clone();
        let port = self.origin.port().context("no port")?;
        self.https = SocketAddr::from(([127, 0, 0, 1], port));
        self.certificate = CertificateDer::from_pem_file(self.data.join("tls-cert.pem"))
            .context("the server's certificate")?;
        Ok(())
    }

    /// A field of /proc/PID/status in KiB (`VmRSS`: resident now, `VmHWM`: its peak).
    pub fn memory_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|line| line.starts_with(field))
            .with_context(|| format!("no {field}"))?;
        let value = line.split_whitespace().nth(1).context("no value")?;
        Ok(value.parse()?)
    }

    pub fn rss_mb(&self) -> anyhow::Result<f64> {
        Ok(self.memory_kib("VmRSS:")? as f64 / 1024.0)
    }

    /// The database's bytes on disk: the SQLite file and its write-ahead log.
    pub fn database_bytes(&self) -> u64 {
        ["lobbies.sqlite3", "lobbies.sqlite3-wal"]
            .iter()
            .filter_map(|name| std::fs::metadata(self.data.join(name)).ok())
            .map(|meta| meta.len())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
