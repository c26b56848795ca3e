//! A party's home directory: its Ed25519 identity (created on first use, mode 0600, never
//! printed) and the programs it fetched, one folder per lobby. Two homes are two parties.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use mpcnet_proto::{Bundle, BundleError, Identity, LobbyId};

const IDENTITY_FILE: &str = "identity.key";
const IDENTITY_HEADER: &str = "mpcnet identity v1";
const SESSIONS_DIR: &str = "sessions";
const RUN_STATUS_FILE: &str = "run-status.json";
const PROGRAM_DIR: &str = "program";
const BUNDLE_DIR: &str = "bundle";

/// Why the home directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("no home directory: set MPCNET_HOME (or HOME)")]
    NoHome,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an mpcnet identity file")]
    BadIdentity { path: PathBuf },
    #[error("cannot unpack the program bundle: {0}")]
    Unpack(BundleError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |source| HomeError::Io {
        path: path.into(),
        source,
    }
}

/// A party's home directory.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// The default home when `MPCNET_HOME` is not set: `$XDG_DATA_HOME/mpcnet`, else `~/.local/share/mpcnet`.
    pub fn default_dir() -> Result<PathBuf, HomeError> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(data) = non_empty("XDG_DATA_HOME") {
            return Ok(PathBuf::from(data).join("mpcnet"));
        }
        let home = non_empty("HOME").ok_or(HomeError::NoHome)?;
        Ok(PathBuf::from(home).join(".local/share/mpcnet"))
    }

    /// Opens `dir`, creating it (mode 0700) if needed.
    pub fn open(dir: PathBuf) -> Result<Self, HomeError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error(&dir))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The party's identity, created on first use. Returns whether it was just created.
    pub fn identity(&self) -> Result<(Identity, bool), HomeError> {
        let path = self.dir.join(IDENTITY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                warn_if_readable_by_others(&path);
                Ok((
                    parse_identity(&text).ok_or(HomeError::BadIdentity { path })?,
                    false,
                ))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let identity = Identity::generate();
                let text = format!(
                    "{IDENTITY_HEADER}\n{}\n",
                    data_encoding::BASE64URL_NOPAD.encode(&identity.to_secret_bytes())
                );
                match write_new_private(&path, text.as_bytes()) {
                    Ok(()) => Ok((identity, true)),
                    // Another mpcnet process made it first: use theirs.
                    Err(HomeError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        self.identity()
                    }
                    Err(error) => Err(error),
                }
            }
            Err(source) => Err(HomeError::Io { path, source }),
        }
    }

    /// Where a run of `lobby` keeps its live status (per-peer links) for `mpcnet status`.
    pub fn run_status_file(&self, lobby: &LobbyId) -> PathBuf {
        self.session_dir(lobby).join(RUN_STATUS_FILE)
    }

    fn session_dir(&self, lobby: &LobbyId) -> PathBuf {
        self.dir.join(SESSIONS_DIR).join(lobby.to_string())
    }

    /// Where the verified program `file_name` of `lobby` is kept: in a folder of its own, so
    /// no program name meets the session's other files.
    pub fn program_path(&self, lobby: &LobbyId, file_name: &str) -> PathBuf {
        self.session_dir(lobby).join(PROGRAM_DIR).join(file_name)
    }

    /// Stores a verified program of `lobby` as `file_name`, returning its path.
    pub fn save_program(
        &self,
        lobby: &LobbyId,
        file_name: &str,
        contents: &[u8],
    ) -> Result<PathBuf, HomeError> {
        let path = self.program_path(lobby, file_name);
        let dir = path.parent().expect("a program path has a folder");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        std::fs::write(&path, contents).map_err(io_error(&path))?;
        Ok(path)
    }

    /// Where the verified program bundle of `lobby` is unpacked.
    pub fn bundle_dir(&self, lobby: &LobbyId) -> PathBuf {
        self.session_dir(lobby).join(BUNDLE_DIR)
    }

    /// Unpacks a verified `bundle` of `lobby` into [`Self::bundle_dir`], in place of whatever
    /// was there.
    pub fn replace_bundle(&self, lobby: &LobbyId, bundle: &Bundle) -> Result<(), HomeError> {
        let session = self.session_dir(lobby);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&session)
            .map_err(io_error(&session))?;
        let dir = self.bundle_dir(lobby);
        match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error(&dir)(error));
            }
            _ => {}
        }
        bundle.unpack(&dir).map_err(HomeError::Unpack)
    }
}

fn parse_identity(text: &str) -> Option<Identity> {
    let mut lines = text.lines();
    if lines.next()? != IDENTITY_HEADER {
        return None;
    }
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(lines.next()?.trim().as_bytes())
        .ok()?;
    Some(Identity::from_secret_bytes(&bytes.try_into().ok()?))
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "identity file is readable by other users: chmod 600 it");
    }
}

/// Creates `path` with `contents` whole, only its owner may read it, failing if it exists.
/// The bytes go to a private temporary file beside it first, which is then linked in place
/// (no clobbering): another mpcnet process on the same home sees no file or all of it, never
/// an empty one half written.
fn write_new_private(path: &Path, contents: &[u8]) -> Result<(), HomeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io_error(dir))?;
    file.write_all(contents).map_err(io_error(file.path()))?;
    file.as_file().sync_all().map_err(io_error(file.path()))?;
    file.persist_noclobber(path)
        .map(drop)
        .map_err(|error| HomeError::Io {
            path: path.to_path_buf(),
            source: error.error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_starting_at_once_on_one_home_all_get_its_one_identity() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let home = Home::open(dir.path().join("party")).expect("home");
            let keys: Vec<_> = std::thread::scope(|scope| {
                let starts: Vec<_> = (0..6)
                    .map(|_| scope.spawn(|| home.identity().map(|(id, _)| id.public())))
                    .collect();
                starts
                    .into_iter()
                    .map(|start| start.join().expect("thread"))
                    .collect()
            });
            let first = keys[0].as_ref().expect("an identity");
            for key in &keys {
                assert_eq!(
                    key.as_ref()
                        .expect("an identity, never a half-written file"),
                    first
                );
            }
        }
    }

    #[test]
    fn the_identity_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path().join("party")).expect("home");
        let (first, created) = home.identity().expect("created");
        assert!(created);
        let (second, created) = home.identity().expect("loaded");
        assert!(!created);
        assert_eq!(first.public(), second.public());
        let mode = std::fs::metadata(home.dir().join(IDENTITY_FILE))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_foreign_identity_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path().into()).expect("home");
        std::fs::write(dir.path().join(IDENTITY_FILE), "ssh-ed25519 AAAA...\n").expect("write");
        assert!(matches!(
            home.identity(),
            Err(HomeError::BadIdentity { .. })
        ));
    }
}
