//! The run's private directory of Unix sockets, where MPyC and its agent meet.
//!
//! One socket per party: for each peer, the agent's forward that MPyC connects to; for the
//! party itself, the socket MPyC listens on and the agent delivers the peers' streams to. The
//! directory is made fresh for the run, readable and writable by its owner only (0700), so no
//! other local user can speak to MPyC or to a peer in this party's name (over loopback TCP any
//! local process could). It is removed with everything in it when the run ends.
//!
//! A Unix socket also costs the kernel a third less per message than loopback TCP, though the
//! agent then takes one more context switch per message: no gain in latency, measured in
//! docs/performance.md.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The longest socket path Linux takes (`sun_path` holds 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The directory, removed on drop.
#[derive(Debug)]
pub struct SocketDir {
    dir: tempfile::TempDir,
}

impl SocketDir {
    /// Makes a fresh directory under `$XDG_RUNTIME_DIR` (a per-user tmpfs) when it is set, else
    /// under the system's temporary directory.
    pub fn create() -> std::io::Result<Self> {
        let parent = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        Self::create_in(&std::path::absolute(parent)?)
    }

    /// Makes a fresh directory under `parent` (absolute: MPyC is given the paths); fails,
    /// saying why, if a socket's path in it would be too long for a Unix socket.
    pub fn create_in(parent: &Path) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mpcnet-run-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        let sockets = Self { dir };
        let longest = sockets.party(u16::MAX);
        if longest.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(std::io::Error::other(format!(
                "the socket path {} is longer than the {MAX_SOCKET_PATH} bytes a Unix socket \
                 takes: set TMPDIR to a shorter directory",
                longest.display()
            )));
        }
        Ok(sockets)
    }

    /// Party `index`'s socket.
    pub fn party(&self, index: u16) -> PathBuf {
        self.dir.path().join(format!("party-{index}.sock"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_its_owners_only_and_goes_with_the_run() {
        let parent = tempfile::tempdir().expect("parent");
        let sockets = SocketDir::create_in(parent.path()).expect("create");
        let path = sockets.path().to_owned();
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(sockets.party(3), path.join("party-3.sock"));
        drop(sockets);
        assert!(!path.exists());
    }

    /// Connects to `socket` from the system's `python3` running as `uid`; whether it got in.
    fn connects_as(uid: u32, socket: &Path) -> bool {
        use std::os::unix::process::CommandExt as _;
        let probe = "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])";
        let status = std::process::Command::new("/usr/bin/python3")
            .args(["-c", probe])
            .arg(socket)
            .uid(uid)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("python3 runs");
        status.success()
    }

    /// A socket at `path` that every user may write to, listening.
    fn open_socket(path: &Path) -> std::os::unix::net::UnixListener {
        let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        listener
    }

    #[test]
    fn another_user_cannot_connect_to_a_socket_of_the_run() {
        use std::os::unix::fs::MetadataExt as _;
        let nobody = 65534;
        let open = tempfile::tempdir().expect("open directory");
        let owner = std::fs::metadata(open.path()).expect("metadata").uid();
        if owner != 0 || !Path::new("/usr/bin/python3").exists() {
            eprintln!("skipped: needs root and /usr/bin/python3 to connect as another user");
            return;
        }
        // The control: the same user gets into an open directory's socket, so the probe works.
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let _open = open_socket(&open.path().join("open.sock"));
        assert!(connects_as(nobody, &open.path().join("open.sock")));

        let sockets = SocketDir::create_in(&std::env::temp_dir()).expect("create");
        let _listener = open_socket(&sockets.party(0));
        assert!(
            connects_as(owner, &sockets.party(0)),
            "the owner must get in"
        );
        assert!(
            !connects_as(nobody, &sockets.party(0)),
            "another user got in"
        );
    }

    #[test]
    fn a_directory_too_deep_for_a_socket_path_is_refused_with_the_reason() {
        let parent = tempfile::tempdir().expect("parent");
        let deep = parent.path().join("d".repeat(100));
        std::fs::create_dir(&deep).expect("deep");
        let error = SocketDir::create_in(&deep).expect_err("too long");
        assert!(error.to_string().contains("set TMPDIR"), "{error}");
    }
}
