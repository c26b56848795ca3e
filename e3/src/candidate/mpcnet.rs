//! `mpcnet`: `mpcnet serve` on the internet host; party 0 creates the session, every party runs
//! `mpcnet run` with the invite. The path of each link comes from `mpcnet status --json`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::mediator::{Listening, Mediator, MediatorHandle, Protocol};
use super::{Effort, Observation, RunOutcome, Tools, pairs, run_parties};
use crate::record::PathKind;
use crate::scenario::{Network, Workload};
use crate::topology::Lab;

/// HTTPS (lobby API and relay) and QUIC address discovery: 443 gets through "TCP 443 only".
const SERVER_PORT: u16 = 443;
/// The server's HTTPS listener, the one the lobby answers on.
const SERVER_LISTENS: Listening = Listening {
    protocol: Protocol::Tcp,
    port: SERVER_PORT,
};
/// The longest `mpcnet create` or `mpcnet status` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Mpcnet {
    tools: Tools,
    parties: u16,
    /// `https://HOST:PORT#sha256=PIN`, as `mpcnet serve` printed it.
    server_url: String,
    /// Each party's MPCNET_HOME (identity kept across the runs on this network).
    homes: Vec<PathBuf>,
    /// The invite of the last run, for `observe`.
    last_invite: Option<String>,
    /// `mpcnet serve` (a `mediator` fault may kill it and start it again).
    server: MediatorHandle,
}

impl Mpcnet {
    /// Starts the server on the internet host and waits for the URL it prints.
    pub async fn prepare(
        lab: &Lab,
        network: &Network,
        tools: &Tools,
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let data = logs.join("server");
        let listen = format!("{}:{SERVER_PORT}", lab.internet_host.address);
        let mut command = lab.internet_host.namespace.command(&tools.mpcnet);
        let log = logs.join("server.err");
        command
            .args(["serve", "--listen", &listen, "--metrics-listen", "off"])
            .args(["--public-name", &lab.internet_host.address.to_string()])
            .arg("--data")
            .arg(&data)
            .env("MPCNET_HOME", &data)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log)?));
        let server = MediatorHandle::default();
        let stdout = server
            .start(command, SERVER_LISTENS, &log)
            .await
            .context("starting mpcnet serve")?
            .context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let server_url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("mpcnet serve printed no URL in 30 s")??
            .context("mpcnet serve exited without printing its URL (see server.err)")?;
        // Keep reading what else it prints, so a later line never meets a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let homes = (0..network.parties())
            .map(|party| logs.join(format!("home{party}")))
            .collect();
        Ok(Self {
            tools: tools.clone(),
            parties: network.parties(),
            server_url,
            homes,
            last_invite: None,
            server,
        })
    }

    /// Per party one command (`mpcnet run`), plus the creator's `mpcnet create`, plus handing
    /// the invite to the others; nothing to configure.
    pub fn effort(&self) -> Effort {
        Effort {
            manual_steps: u32::from(self.parties) + 2,
            config_lines: 0,
        }
    }

    pub async fn run(
        &mut self,
        lab: &Lab,
        workload: &Workload,
        logs: &Path,
    ) -> anyhow::Result<RunOutcome> {
        let started = Instant::now();
        if !self.server.is_running() {
            // A fault killed it in an earlier run: each run starts with the lobby up.
            self.server
                .restart(&lab.internet_host.namespace)
                .await
                .context("starting mpcnet serve again")?;
        }
        let invite = self.create(lab, workload).await?;
        let timeout = Duration::from_secs_f64(workload.timeout_s);
        let commands = (0..self.parties)
            .map(|me| {
                let mut command = self.mpcnet(lab, me);
                command
                    .args(["run", "--yes", "--finish-timeout", "10s"])
                    .arg("--timeout")
                    .arg(format!("{}s", workload.timeout_s.ceil()))
                    .arg("--python")
                    .arg(&self.tools.python)
                    .env("MPCNET_INVITE", &invite);
                command
            })
            .collect();
        let parties = run_parties(commands, timeout, logs).await?;
        self.last_invite = Some(invite);
        Ok(RunOutcome::since(started, parties))
    }

    /// The lobby server (with its embedded relay), for faults.
    pub fn mediator(&self) -> Mediator {
        Mediator::Process(self.server.clone())
    }

    /// Each party's index and link routes at the end of the last run, from `mpcnet status`.
    pub async fn observe(&self, lab: &Lab) -> Observation {
        let Some(invite) = &self.last_invite else {
            return Observation::default();
        };
        let mut observation = Observation::default();
        let mut routes = Vec::new();
        // mpcnet numbers parties in the order they joined; E3's numbering is by host.
        for me in 0..self.parties {
            match self.routes(lab, me, invite).await {
                Ok((pid, found)) => {
                    observation.mpc_pids.push(Some(pid));
                    routes.push(found);
                }
                Err(error) => {
                    let error = format!("party {me}: mpcnet status: {error:#}");
                    observation.errors.push(error);
                    observation.mpc_pids.push(None);
                    routes.push(Vec::new());
                }
            }
        }
        for (a, b) in pairs(self.parties) {
            let path = routes[usize::from(a)]
                .iter()
                .find(|(peer, _)| *peer == b)
                .map_or(PathKind::Unknown, |(_, path)| *path);
            observation.paths.push((a, b, path));
        }
        observation
    }

    /// `mpcnet` in party `me`'s namespace with its home.
    fn mpcnet(&self, lab: &Lab, me: u16) -> tokio::process::Command {
        let mut command = lab.hosts[usize::from(me)]
            .namespace
            .command(&self.tools.mpcnet);
        command
            .env("MPCNET_HOME", &self.homes[usize::from(me)])
            .env("MPCNET_PARTY_NAME", party_name(me));
        command
    }

    /// Party 0 creates the session; returns the invite.
    async fn create(&self, lab: &Lab, workload: &Workload) -> anyhow::Result<String> {
        let output = self
            .mpcnet(lab, 0)
            .args(["create", "--json", "--server", &self.server_url])
            .args(["--parties", &self.parties.to_string()])
            .arg("--program")
            .arg(&workload.program)
            .arg("--")
            .args(&workload.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output();
        let output = tokio::time::timeout(COMMAND_TIMEOUT, output)
            .await
            .context("mpcnet create did not finish in 60 s")?
            .context("running mpcnet create")?;
        if !output.status.success() {
            bail!(
                "mpcnet create failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let created: serde_json::Value = serde_json::from_slice(&output.stdout)
            .context("mpcnet create --json printed no JSON")?;
        created["invite"]
            .as_str()
            .map(str::to_string)
            .context("mpcnet create --json printed no invite")
    }

    /// Party `me`'s index in the session and the route of each of its links at the end of its
    /// run (peers by E3 party), from `mpcnet status`.
    async fn routes(
        &self,
        lab: &Lab,
        me: u16,
        invite: &str,
    ) -> anyhow::Result<(u16, Vec<(u16, PathKind)>)> {
        let output = self
            .mpcnet(lab, me)
            .args(["status", "--json"])
            .env("MPCNET_INVITE", invite)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output();
        let output = tokio::time::timeout(COMMAND_TIMEOUT, output)
            .await
            .context("did not finish in 60 s")??;
        if !output.status.success() {
            bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
        }
        let status: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let pid = status["you"]
            .as_u64()
            .and_then(|you| u16::try_from(you).ok())
            .context("status names no index for this party")?;
        let links = status["run"]["links"]
            .as_array()
            .context("no run report (the run never linked)")?;
        let routes = links
            .iter()
            .filter_map(|link| {
                let peer = link["name"].as_str()?.strip_prefix("party")?.parse().ok()?;
                let path = match link["route"]["kind"].as_str()? {
                    "direct" => PathKind::Direct,
                    "relay" => PathKind::Relay,
                    _ => PathKind::Failed,
                };
                Some((peer, path))
            })
            .collect();
        Ok((pid, routes))
    }
}

/// The name each party joins under: its E3 number, so links can be matched to hosts.
fn party_name(party: u16) -> String {
    format!("party{party}")
}
