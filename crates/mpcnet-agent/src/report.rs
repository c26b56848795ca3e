//! Run reports to the lobby: this party's state and its links' paths and RTTs, signed, so the
//! session page can show how the run goes. Best effort: a lobby that does not answer never
//! slows or stops the run.

use std::sync::Arc;
use std::time::Duration;

use mpcnet_client::LobbyClient;
use mpcnet_proto::label::printable;
use mpcnet_proto::run_report::{LinkStatus, MAX_REASON_CHARS, RunState};
use mpcnet_proto::{Identity, LobbyId, RunReport};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::link::LinkReport;

/// A report that changed nothing but RTTs is sent at most this often.
const RTT_REFRESH: Duration = Duration::from_secs(5);
/// How long the last report of a run may take.
const FINAL_REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends this party's run reports, skipping ones that would show nothing new.
#[derive(Debug, Clone)]
pub struct RunReporter {
    lobby: LobbyClient,
    lobby_id: LobbyId,
    identity: Identity,
    last_sent: Arc<Mutex<Option<(RunReport, Instant)>>>,
}

impl RunReporter {
    pub fn new(lobby: LobbyClient, lobby_id: LobbyId, identity: Identity) -> Self {
        Self {
            lobby,
            lobby_id,
            identity,
            last_sent: Arc::default(),
        }
    }

    /// Reports `state` and `links` if the state or a path changed, or RTTs are stale.
    pub async fn update(&self, state: RunState, links: &[LinkReport]) {
        let report = self.report(state, links);
        let mut last_sent = self.last_sent.lock().await;
        let fresh = last_sent.as_ref().is_some_and(|(sent, at)| {
            at.elapsed() < RTT_REFRESH
                && sent.state == report.state
                && sent
                    .links
                    .iter()
                    .map(|l| (l.peer, l.path))
                    .eq(report.links.iter().map(|l| (l.peer, l.path)))
        });
        if fresh {
            return;
        }
        match self
            .lobby
            .report_run(&self.lobby_id, &report.sign(&self.identity))
            .await
        {
            Ok(()) => *last_sent = Some((report, Instant::now())),
            Err(error) => tracing::debug!(%error, "reporting the run to the lobby failed"),
        }
    }

    /// Reports how the run ended, waiting briefly for the lobby.
    pub async fn finish(&self, state: RunState, links: &[LinkReport]) {
        let signed = self.report(state, links).sign(&self.identity);
        let sent = tokio::time::timeout(
            FINAL_REPORT_TIMEOUT,
            self.lobby.report_run(&self.lobby_id, &signed),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!("the lobby did not take the run's last report");
        }
    }

    fn report(&self, state: RunState, links: &[LinkReport]) -> RunReport {
        RunReport {
            lobby_id: self.lobby_id,
            party: self.identity.public(),
            state,
            links: links
                .iter()
                .map(|link| LinkStatus {
                    peer: link.index,
                    path: (&link.route).into(),
                    rtt_ms: link.rtt_ms,
                })
                .collect(),
        }
    }
}

/// A failure's message as a report may carry it: printable and bounded.
pub fn failure_reason(message: &str) -> String {
    printable(message).chars().take(MAX_REASON_CHARS).collect()
}
