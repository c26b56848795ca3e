//! Starting the unmodified MPyC program: checking that its Python has `mpyc` (which Python
//! is `python.rs`'s choice), and building `python PROGRAM -I i -P ... [public args] [private
//! args]`.
//!
//! MPyC and its agent meet on Unix sockets in the run's private directory
//! ([`crate::sockets`]), never on TCP: each `-P` is `SOCKET_PATH:PORT`, the port nominal. The
//! program runs under a small bootstrap (`bootstrap.py`) that makes MPyC's event loop connect to
//! those paths and listen on its own one instead of a TCP port (which MPyC would bind on every
//! interface), so the agent's authenticated links are the only way in from other machines and
//! the directory's owner the only way in on this one. The bootstrap also refuses program
//! arguments that would set MPyC's own options (parties, threshold, ports, security
//! parameter): MPyC reads them from the same command line.
//!
//! Program arguments never appear on a command line (every local user can read those): they
//! reach the bootstrap as JSON over a pipe whose reading end the child inherits, and the
//! bootstrap appends them to `sys.argv`, so the program sees them exactly as if they had been
//! passed there. Nor does any `MPCNET_*` variable reach the program (`MPCNET_INVITE` may hold
//! the creator's secret key).

use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rustix::io::FdFlags;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

/// The bootstrap run as `python -c BOOTSTRAP ARGS_FD PROGRAM -I i -P ...`.
const BOOTSTRAP: &str = include_str!("bootstrap.py");
/// The nominal TCP port of party `i` in MPyC's `-P` is this plus `i` (MPyC's own default
/// numbering): MPyC's parser wants one, the bootstrap matches MPyC's listener by it, and no
/// TCP port is opened.
const NOMINAL_PORT_BASE: u16 = 11365;
/// What names the variables of mpcnet itself, which the program must not inherit.
const OWN_VARIABLES_PREFIX: &str = "MPCNET_";

/// Why MPyC cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    #[error("no Python found: install python3, or name one with --python / MPCNET_PYTHON")]
    NoPython,
    #[error(
        "{python} cannot import mpyc ({detail}).\n  Install it:  {python} -m pip install mpyc\n  \
         or make a venv:  python3 -m venv ~/.venv-mpyc && ~/.venv-mpyc/bin/pip install mpyc  \
         and pass --python ~/.venv-mpyc/bin/python"
    )]
    NoMpyc { python: String, detail: String },
    #[error("cannot start {python}: {source}")]
    Spawn {
        python: String,
        source: std::io::Error,
    },
    #[error("cannot make the pipe for the program arguments: {0}")]
    ArgumentPipe(std::io::Error),
}

impl LauncherError {
    /// Whether the error lies in what the user named (a Python that is not there).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::NoPython | Self::Spawn { .. })
    }
}

/// Checks that `python` imports `mpyc`; returns MPyC's version.
pub async fn check_mpyc(python: &Path) -> Result<String, LauncherError> {
    let shown = python.display().to_string();
    let output = tokio::process::Command::new(python)
        .args(["-c", "import mpyc; print(mpyc.__version__)"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| LauncherError::Spawn {
            python: shown.clone(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .last()
            .unwrap_or("import failed")
            .trim()
            .to_owned();
        return Err(LauncherError::NoMpyc {
            python: shown,
            detail,
        });
    }
    // MPyC logs to stdout on import: the version is the last line.
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout.lines().last().unwrap_or_default().trim().to_owned())
}

/// What MPyC is started with.
#[derive(Debug, Clone)]
pub struct Launch {
    pub python: PathBuf,
    pub program: PathBuf,
    /// This party's index (`-I`).
    pub me: u16,
    /// One Unix socket per party in index order (`-P`): the agent's forward to each peer,
    /// MPyC's own listening socket for `me`.
    pub sockets: Vec<PathBuf>,
    /// Arguments every party passes (from the manifest), then this party's own.
    pub args: Vec<String>,
}

impl Launch {
    /// Starts MPyC with stdin, stdout and stderr inherited: the program's output is the run's output.
    pub async fn spawn(&self) -> Result<Child, LauncherError> {
        self.spawn_with(|_| {}).await
    }

    /// Starts MPyC after `adjust` has changed its command (e.g. to capture its output), and
    /// hands it the program arguments over the pipe.
    pub async fn spawn_with(
        &self,
        adjust: impl FnOnce(&mut Command),
    ) -> Result<Child, LauncherError> {
        let (reader, writer) = std::io::pipe().map_err(LauncherError::ArgumentPipe)?;
        // Only the reading end crosses into the child (std makes both close-on-exec). A process
        // this one starts meanwhile on another thread inherits it too: mpcnet starts none.
        rustix::io::fcntl_setfd(&reader, FdFlags::empty())
            .map_err(|errno| LauncherError::ArgumentPipe(errno.into()))?;
        let mut command = self.command(reader.as_raw_fd());
        adjust(&mut command);
        let child = command.spawn().map_err(|source| LauncherError::Spawn {
            python: self.python.display().to_string(),
            source,
        })?;
        drop(reader);
        if let Err(error) = send_program_args(writer.into(), &self.args).await {
            // The bootstrap refuses to run without them: its exit tells the rest.
            tracing::warn!(%error, "cannot hand the program its arguments");
        }
        Ok(child)
    }

    /// The command line, which holds no program argument, and an environment without mpcnet's
    /// own variables.
    fn command(&self, args_fd: RawFd) -> Command {
        let mut command = Command::new(&self.python);
        command.arg("-c").arg(BOOTSTRAP).arg(args_fd.to_string());
        command.arg(&self.program);
        command.arg("-I").arg(self.me.to_string());
        for (index, socket) in (0..).zip(&self.sockets) {
            command.arg("-P").arg(mpyc_address(socket, index));
        }
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(OWN_VARIABLES_PREFIX) {
                command.env_remove(name);
            }
        }
        // No byte code written next to the verified copy (a bundle's modules stay as verified).
        command
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true);
        command
    }
}

/// Party `index`'s `-P`: its socket's path, then a nominal port (MPyC splits at the last `:`).
fn mpyc_address(socket: &Path, index: u16) -> std::ffi::OsString {
    let mut address = socket.as_os_str().to_owned();
    address.push(format!(":{}", NOMINAL_PORT_BASE + index));
    address
}

/// Writes `args` as a JSON list to the pipe and closes it (the bootstrap reads to its end).
async fn send_program_args(pipe: OwnedFd, args: &[String]) -> std::io::Result<()> {
    let json = serde_json::to_vec(args).map_err(std::io::Error::other)?;
    let mut pipe = tokio::net::unix::pipe::Sender::from_owned_fd(pipe)?;
    pipe.write_all(&json).await
}
