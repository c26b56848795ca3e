//! Run reports to the lobby: this party's state and its links' paths and RTTs, signed, so the
//! session page and `mpcnet status` can show how the run goes. A task of its own sends them,
//! so a lobby that answers slowly or not at all never slows or stops the run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mpcnet_client::LobbyClient;
use mpcnet_proto::label::printable;
use mpcnet_proto::run_report::{LinkStatus, MAX_REASON_CHARS, RunState};
use mpcnet_proto::{Identity, LobbyId, RunReport};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::link::LinkReport;

/// A report that changed nothing but RTTs is sent at most this often.
const RTT_REFRESH: Duration = Duration::from_secs(5);
/// How long one report may take to reach the lobby.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a run waits for its last report to reach the lobby.
const FINAL_REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the run says now: its state, its links, and whether this is its last word.
#[derive(Debug, Clone, PartialEq)]
struct Latest {
    state: RunState,
    links: Vec<LinkStatus>,
    last: bool,
}

/// The sender of this party's run reports; [`RunReporter::finish`] sends the last one.
#[derive(Debug)]
pub struct RunReporter {
    updates: RunUpdates,
    task: JoinHandle<()>,
}

/// Where the run tells the reporter how it goes; cheap to clone.
#[derive(Debug, Clone)]
pub struct RunUpdates(watch::Sender<Latest>);

impl RunUpdates {
    /// The run is now in `state` with `links`; sent at once if the state or a path changed.
    /// Once the run's last word is given, nothing replaces it.
    pub fn update(&self, state: RunState, links: &[LinkReport]) {
        self.0.send_if_modified(|latest| {
            if latest.last {
                return false;
            }
            *latest = Latest {
                state,
                links: link_statuses(links),
                last: false,
            };
            true
        });
    }
}

impl RunReporter {
    /// Starts reporting, with the run linking.
    pub fn start(lobby: LobbyClient, lobby_id: LobbyId, identity: Identity) -> Self {
        let (latest, updates) = watch::channel(Latest {
            state: RunState::Linking,
            links: Vec::new(),
            last: false,
        });
        let task = tokio::spawn(send_reports(lobby, lobby_id, identity, updates));
        Self {
            updates: RunUpdates(latest),
            task,
        }
    }

    pub fn updates(&self) -> &RunUpdates {
        &self.updates
    }

    /// Sends how the run ended, waiting briefly for the lobby.
    pub async fn finish(mut self, state: RunState, links: &[LinkReport]) {
        self.updates.0.send_replace(Latest {
            state,
            links: link_statuses(links),
            last: true,
        });
        if tokio::time::timeout(FINAL_REPORT_TIMEOUT, &mut self.task)
            .await
            .is_err()
        {
            tracing::debug!("the lobby did not take the run's last report in time");
            self.task.abort();
        }
    }
}

fn link_statuses(links: &[LinkReport]) -> Vec<LinkStatus> {
    links
        .iter()
        .map(|link| LinkStatus {
            peer: link.index,
            path: (&link.route).into(),
            rtt_ms: link.rtt_ms,
            unreachable_s: link.unreachable_s,
        })
        .collect()
}

/// Sends each new state or path at once, RTT-only changes every [`RTT_REFRESH`], until the last.
async fn send_reports(
    lobby: LobbyClient,
    lobby_id: LobbyId,
    identity: Identity,
    mut updates: watch::Receiver<Latest>,
) {
    let mut sent: Option<(Latest, Instant)> = None;
    let mut stamp = 0;
    loop {
        let latest = updates.borrow_and_update().clone();
        let news = sent.as_ref().is_none_or(|(before, at)| {
            latest.last
                || before.state != latest.state
                || !before
                    .links
                    .iter()
                    .map(|l| (l.peer, l.path))
                    .eq(latest.links.iter().map(|l| (l.peer, l.path)))
                || (at.elapsed() >= RTT_REFRESH && before.links != latest.links)
        });
        if news {
            // Later reports carry later stamps, so the lobby can refuse an old one replayed.
            stamp = unix_millis().max(stamp + 1);
            let report = RunReport {
                lobby_id,
                party: identity.public(),
                at_unix_ms: stamp,
                state: latest.state.clone(),
                links: latest.links.clone(),
            };
            let signed = report.sign(&identity);
            match tokio::time::timeout(SEND_TIMEOUT, lobby.report_run(&lobby_id, &signed)).await {
                Ok(Ok(())) if latest.last => return,
                // Only a report the lobby took counts as sent: a failed one is tried again.
                Ok(Ok(())) => sent = Some((latest, Instant::now())),
                Ok(Err(error)) => tracing::debug!(%error, "reporting the run to the lobby failed"),
                Err(_) => tracing::debug!("reporting the run to the lobby timed out"),
            }
        }
        let wait_refresh = tokio::time::sleep(RTT_REFRESH);
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return },
            () = wait_refresh => {}
        }
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A failure's message as a report may carry it: printable and bounded.
pub fn failure_reason(message: &str) -> String {
    printable(message).chars().take(MAX_REASON_CHARS).collect()
}
