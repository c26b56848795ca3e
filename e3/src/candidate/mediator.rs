//! A candidate's mediator: its rendezvous or hub process on the internet host (mpcnet's lobby
//! server with its relay, Nebula's lighthouse, tinc's hub node, n2n's supernode, OpenVPN's
//! server). One handle owns the process; the candidate starts it through the handle, and a
//! `mediator` fault kills it and starts it again, from the same command line, through a clone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::netns::Namespace;

/// How long a started mediator gets to listen on its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Where a mediator listens once it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub protocol: Protocol,
    pub port: u16,
}

impl std::fmt::Display for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}/{protocol}", self.port)
    }
}

/// A candidate's mediator as a fault sees it.
#[derive(Debug, Clone)]
pub enum Mediator {
    /// The process, shared with the candidate that starts it.
    Process(MediatorHandle),
    /// Why the candidate has no mediator.
    None(&'static str),
}

/// The one owner of a mediator process; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MediatorHandle(Arc<Mutex<Option<Running>>>);

/// A started mediator: how to start it again, and the process while it runs.
#[derive(Debug)]
struct Running {
    recipe: Recipe,
    listening: Listening,
    /// Where a restarted process logs (appended).
    log: PathBuf,
    child: Option<tokio::process::Child>,
}

/// A command line as it was given, to run it again.
#[derive(Debug, Clone)]
struct Recipe {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
}

impl Recipe {
    fn of(command: &tokio::process::Command) -> Self {
        let std = command.as_std();
        Self {
            program: std.get_program().to_owned(),
            args: std.get_args().map(ToOwned::to_owned).collect(),
            envs: std
                .get_envs()
                .map(|(key, value)| (key.to_owned(), value.map(ToOwned::to_owned)))
                .collect(),
        }
    }

    fn spawn(&self, log: &Path) -> anyhow::Result<tokio::process::Child> {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args);
        for (key, value) in &self.envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        command
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .context("starting the mediator again")
    }
}

/// What a kill saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Killed {
    pub pid: u32,
    /// The process no longer exists and nothing listens on its port.
    pub gone: bool,
}

impl MediatorHandle {
    /// Starts `command` (its output as the caller set it up) as the mediator, remembering how
    /// to start it again (then logging into `log`); a mediator still running is killed first.
    /// Returns its stdout if the caller piped it.
    pub async fn start(
        &self,
        mut command: tokio::process::Command,
        listening: Listening,
        log: &Path,
    ) -> anyhow::Result<Option<tokio::process::ChildStdout>> {
        self.stop().await;
        let recipe = Recipe::of(&command);
        let mut child = command.kill_on_drop(true).spawn()?;
        let stdout = child.stdout.take();
        *self.lock() = Some(Running {
            recipe,
            listening,
            log: log.to_path_buf(),
            child: Some(child),
        });
        Ok(stdout)
    }

    /// Kills the mediator (if it runs) and forgets it; returns whether it had been started.
    pub async fn stop(&self) -> bool {
        let Some(running) = self.lock().take() else {
            return false;
        };
        if let Some(mut child) = running.child {
            let _ = child.kill().await;
        }
        true
    }

    /// Whether the mediator was started and is not killed.
    pub fn is_running(&self) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|running| running.child.is_some())
    }

    /// Kills the mediator, keeping how to start it again, and checks it is gone: its pid no
    /// longer exists and nothing listens on its port in `namespace`.
    pub async fn kill(&self, namespace: &Namespace) -> anyhow::Result<(Killed, Listening)> {
        let (child, listening) = {
            let mut guard = self.lock();
            let running = guard.as_mut().context("the mediator was never started")?;
            (running.child.take(), running.listening)
        };
        let mut child = child.context("the mediator is not running")?;
        let pid = child.id().context("the mediator had already exited")?;
        child.kill().await.context("killing the mediator")?;
        let gone = !Path::new(&format!("/proc/{pid}")).exists()
            && listener_pids(namespace, listening)?.is_empty();
        Ok((Killed { pid, gone }, listening))
    }

    /// Starts a killed mediator again from its command line and waits until it listens on its
    /// port; returns the new process's pid.
    pub async fn restart(&self, namespace: &Namespace) -> anyhow::Result<u32> {
        let (pid, listening) = {
            let mut guard = self.lock();
            let running = guard.as_mut().context("the mediator was never started")?;
            if running.child.is_some() {
                bail!("the mediator still runs");
            }
            let child = running.recipe.spawn(&running.log)?;
            let pid = child
                .id()
                .context("the restarted mediator exited at once")?;
            running.child = Some(child);
            (pid, running.listening)
        };
        wait_until_listening(namespace, listening, Some(pid)).await?;
        Ok(pid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        crate::lock(&self.0)
    }
}

/// Waits ([`LISTEN_TIMEOUT`] at most) until something in `namespace` listens on the port
/// (process `pid` if given).
pub async fn wait_until_listening(
    namespace: &Namespace,
    listening: Listening,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        let pids = listener_pids(namespace, listening)?;
        if pid.map_or(!pids.is_empty(), |pid| pids.contains(&pid)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "nothing listens on {listening} after {} s (see the log)",
                LISTEN_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pids of the processes listening on the port in `namespace`, from `ss -lnp`.
fn listener_pids(namespace: &Namespace, listening: Listening) -> anyhow::Result<Vec<u32>> {
    let flag = match listening.protocol {
        Protocol::Tcp => "-ltnpH",
        Protocol::Udp => "-lunpH",
    };
    let listing = namespace.exec("ss", &[flag])?;
    Ok(pids_on_port(&listing, listening.port))
}

/// In `ss -lnpH` output, the pids of the sockets whose local port is `port`.
fn pids_on_port(listing: &str, port: u16) -> Vec<u32> {
    let wanted = format!(":{port}");
    let mut pids: Vec<u32> = listing
        .lines()
        // The local address is one of the first columns; a listener's peer is `*`.
        .filter(|line| {
            line.split_whitespace()
                .take(5)
                .any(|field| field.ends_with(&wanted))
        })
        .flat_map(|line| line.split("pid=").skip(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_read_from_ss() {
        let tcp = "LISTEN 0 1024 198.18.0.2:443 0.0.0.0:* users:((\"mpcnet\",pid=4242,fd=9))\n\
                   LISTEN 0 1024 127.0.0.1:4430 0.0.0.0:* users:((\"other\",pid=7,fd=3))\n";
        assert_eq!(pids_on_port(tcp, 443), vec![4242]);
        assert_eq!(pids_on_port(tcp, 80), Vec::<u32>::new());
        let udp = "UNCONN 0 0 0.0.0.0:4242 0.0.0.0:* users:((\"nebula\",pid=12,fd=7),(\"nebula\",pid=12,fd=8))\n";
        assert_eq!(pids_on_port(udp, 4242), vec![12]);
        let listening = Listening {
            protocol: Protocol::Udp,
            port: 4242,
        };
        assert_eq!(listening.to_string(), "4242/udp");
    }
}
