//! One party's run of a sealed session: bind the endpoint, share addresses through the lobby,
//! link with every peer, set up the forwards, run MPyC, and end together with the others.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::Endpoint;
use mpcnet_client::LobbyClient;
use mpcnet_proto::run_report::RunState;
use mpcnet_proto::{EndpointAnnouncement, Identity, LobbyId};
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use crate::endpoint::{self, PathPolicy, RelayPlan};
use crate::failover::{self, GoneRelays};
use crate::launcher::{Launch, LauncherError};
use crate::link::{LinkReport, Peer, PeerLink, Route};
use crate::mesh::{self, MeshError};
use crate::report::{RunReporter, RunUpdates, failure_reason};
use crate::sockets::SocketDir;
use crate::wire::FinishedMessage;
use crate::{control, finish};

/// How often addresses are exchanged through the lobby while linking.
const ADDRESS_EXCHANGE_PERIOD: Duration = Duration::from_millis(100);
/// How often the status file is rewritten.
const STATUS_PERIOD: Duration = Duration::from_secs(1);
/// How long to wait, in auto mode, for links to go direct before starting MPyC.
const DIRECT_PATH_GRACE: Duration = Duration::from_millis(500);
/// How long a party that stops early waits for its peers to hear it before closing its links.
const ABORT_GRACE: Duration = Duration::from_secs(3);
/// How often, while a peer is unreachable, the lobby is asked whether it is gone.
const GONE_CHECK_PERIOD: Duration = Duration::from_secs(1);
/// How long a closed link is given for the peer's last message to arrive before it counts as lost.
const LAST_WORDS_GRACE: Duration = Duration::from_millis(300);
/// How long pumps may take to drain once MPyC has exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing the endpoint may wait for its connections' close to be acknowledged. The
/// wait scales with each connection's RTT estimate, which an outage can inflate to minutes (a
/// packet acknowledged only after a 120 s blackout): E3 saw a finished run hang there for good.
/// The peers have heard this party's "finished" message by then.
const ENDPOINT_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Receives one human-readable line per event of the run.
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// Everything one party's run needs.
#[derive(Debug)]
pub struct RunPlan {
    pub identity: Identity,
    pub me: u16,
    /// Every other party, by index.
    pub peers: Vec<Peer>,
    pub relay: RelayPlan,
    pub policy: PathPolicy,
    /// Restrict direct paths to this local address (e.g. 127.0.0.1:0 on one machine).
    pub bind: Option<SocketAddr>,
    /// The lobby, for exchanging direct addresses.
    pub lobby: LobbyClient,
    pub lobby_id: LobbyId,
    pub python: PathBuf,
    pub program: PathBuf,
    /// Public arguments from the manifest, then this party's private ones.
    pub args: Vec<String>,
    /// How long to wait for every peer to link, and for MPyC to listen.
    pub link_timeout: Duration,
    /// How long to wait at the end for the peers to finish too.
    pub finish_timeout: Duration,
    /// How long a link may stay unreachable (no path, nothing heard) before the run gives up.
    pub patience: Duration,
    /// Where to keep the run's status for `mpcnet status`.
    pub status_file: Option<PathBuf>,
}

/// Why a run failed before or around MPyC.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error(transparent)]
    Mesh(#[from] MeshError),
    #[error(transparent)]
    Launcher(#[from] LauncherError),
    #[error("cannot open a local forward: {0}")]
    Forward(std::io::Error),
    #[error("lost {peer} while MPyC was running: {reason}")]
    LostPeer { peer: Peer, reason: String },
    /// A peer said its run ended badly; `cause` is the party it says made it stop, if any.
    #[error("{}; stopped this party's program too", describe_failure(peer, *code, cause.as_ref()))]
    PeerFailed {
        peer: Peer,
        code: i32,
        cause: Option<Peer>,
    },
    #[error("interrupted")]
    Interrupted,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// MPyC's exit code (-1 if it was killed by a signal).
    pub exit_code: i32,
    /// Each link at the end.
    pub links: Vec<LinkReport>,
    /// Peers that did not say they finished before the timeout.
    pub unfinished: Vec<String>,
}

/// What the status file holds.
#[derive(Debug, Serialize)]
struct StatusFile<'a> {
    updated_unix_ms: u128,
    /// The `mpcnet run` process.
    pid: u32,
    me: u16,
    state: &'a str,
    links: Vec<LinkReport>,
}

/// Runs the session to its end. `interrupt` resolving stops everything (e.g. Ctrl-C).
/// `progress` receives one human-readable line per event.
pub async fn run(
    plan: RunPlan,
    interrupt: impl Future<Output = ()>,
    progress: Progress,
) -> Result<RunOutcome, RunError> {
    let reporter = RunReporter::start(plan.lobby.clone(), plan.lobby_id, plan.identity.clone());
    let endpoint = endpoint::bind(
        &plan.identity,
        &plan.relay,
        plan.policy,
        plan.bind,
        plan.patience,
    )
    .await;
    let result = match endpoint {
        Ok(endpoint) => {
            let updates = reporter.updates();
            let result = run_linked(&plan, &endpoint, interrupt, &progress, updates).await;
            let _ = tokio::time::timeout(ENDPOINT_CLOSE_TIMEOUT, endpoint.close()).await;
            result
        }
        Err(error) => Err(error.into()),
    };
    match &result {
        Ok(outcome) => {
            let state = RunState::Finished {
                exit_code: outcome.exit_code,
            };
            reporter.finish(state, &outcome.links).await;
        }
        Err(error) => {
            let reason = failure_reason(&error.to_string());
            reporter.finish(RunState::Failed { reason }, &[]).await;
        }
    }
    result
}

/// The run once the endpoint is bound, phase by phase: link with every peer, open the
/// forwards, run the program, finish together.
async fn run_linked(
    plan: &RunPlan,
    endpoint: &Endpoint,
    interrupt: impl Future<Output = ()>,
    progress: &Progress,
    reporter: &RunUpdates,
) -> Result<RunOutcome, RunError> {
    tokio::pin!(interrupt);
    let _introduced = failover::introduce(&plan.relay, plan.lobby_id);
    let (mesh, addresses) = tokio::select! {
        linked = link_with_everyone(plan, endpoint, progress) => linked?,
        () = &mut interrupt => return Err(RunError::Interrupted),
    };
    let links = &mesh.links;
    let gone = GoneRelays::default();
    let _failover = failover::watch(endpoint.clone(), plan.relay.clone(), gone.clone());
    let _keepers = keep_links(plan, endpoint, links, &addresses, &gone);
    let forwards = Forwards::open(plan, links).await?;
    let finish_listener = finish::listen(links);
    let finished = finish_listener.finished();
    let watcher = watch_links(links, plan, progress.clone(), reporter.clone());
    let exit_code = run_program(
        plan,
        links,
        &forwards,
        finished.clone(),
        &mut interrupt,
        progress,
    )
    .await?;
    let ending = finish_together(plan, links, &forwards, exit_code, finished);
    let unfinished = tokio::select! {
        unfinished = ending => unfinished,
        () = &mut interrupt => return Err(RunError::Interrupted),
    };
    let reports: Vec<LinkReport> = links.iter().map(PeerLink::report).collect();
    links.iter().for_each(PeerLink::log_traffic);
    drop(watcher);
    write_status(
        plan.status_file.as_ref(),
        plan.me,
        "finished",
        reports.clone(),
    );
    Ok(RunOutcome {
        exit_code,
        links: reports,
        unfinished,
    })
}

/// Links with every peer (exchanging direct addresses through the lobby meanwhile), or fails
/// naming who is missing; in auto mode then gives the links a moment to go direct. Returns the
/// mesh and the peers' direct addresses as last announced.
async fn link_with_everyone(
    plan: &RunPlan,
    endpoint: &Endpoint,
    progress: &Progress,
) -> Result<(mesh::Mesh, mesh::AddressBook), RunError> {
    let deadline = Instant::now() + plan.link_timeout;
    progress(format!(
        "linking with {} part{} ({})",
        plan.peers.len(),
        if plan.peers.len() == 1 { "y" } else { "ies" },
        match plan.policy {
            PathPolicy::Auto => "direct when possible, relayed otherwise",
            PathPolicy::DirectOnly => "direct only",
            PathPolicy::RelayOnly => "relayed only",
        }
    ));
    let (book_writer, addresses) = watch::channel(HashMap::new());
    let exchange = exchange_addresses(plan, endpoint.clone(), book_writer);
    let mesh_plan = mesh::MeshPlan {
        endpoint,
        me: plan.me,
        peers: &plan.peers,
        relay: &plan.relay,
        policy: plan.policy,
    };
    let linking = mesh::link_all(mesh_plan, addresses.clone(), deadline, |link| {
        let (route, rtt) = link.route();
        progress(format!("{}: linked, {route}{}", link.peer, format_rtt(rtt)));
    });
    let mesh = tokio::select! {
        mesh = linking => mesh?,
        () = exchange => unreachable!("the address exchange runs until dropped"),
    };
    if plan.policy == PathPolicy::Auto {
        await_direct_paths(&mesh.links, progress).await;
    }
    Ok((mesh, addresses))
}

/// Keeps every link across carriers for as long as the returned handles live; this side dials
/// new carriers to the peers it dialed first (the higher-numbered ones).
fn keep_links(
    plan: &RunPlan,
    endpoint: &Endpoint,
    links: &[PeerLink],
    addresses: &mesh::AddressBook,
    gone: &GoneRelays,
) -> Vec<AbortOnDropHandle<()>> {
    links
        .iter()
        .map(|link| {
            let redial = (link.peer.index > plan.me).then(|| control::Redial {
                endpoint: endpoint.clone(),
                relay: plan.relay.clone(),
                gone: gone.clone(),
                policy: plan.policy,
                addresses: addresses.clone(),
            });
            control::keep(link.clone(), redial, plan.patience)
        })
        .collect()
}

/// Each link's forward (serving MPyC's connections to a higher-numbered peer, or delivering a
/// lower-numbered peer's to MPyC), the pumps they run, and the sockets MPyC is given.
struct Forwards {
    _tasks: tokio::task::JoinSet<()>,
    pumps: TaskTracker,
    /// The run's socket directory; removed (sockets and all) when the forwards go.
    sockets: SocketDir,
}

impl Forwards {
    async fn open(plan: &RunPlan, links: &[PeerLink]) -> Result<Self, RunError> {
        let pumps = TaskTracker::new();
        let mut tasks = tokio::task::JoinSet::new();
        let sockets = SocketDir::create().map_err(RunError::Forward)?;
        for link in links {
            let socket = sockets.party(link.peer.index);
            if link.peer.index > plan.me {
                let listener = UnixListener::bind(&socket).map_err(RunError::Forward)?;
                tasks.spawn(crate::forward::serve_outgoing(
                    listener,
                    link.clone(),
                    pumps.clone(),
                ));
            } else {
                tasks.spawn(crate::forward::deliver_incoming(
                    link.clone(),
                    sockets.party(plan.me),
                    plan.link_timeout,
                    pumps.clone(),
                ));
            }
        }
        Ok(Self {
            _tasks: tasks,
            pumps,
            sockets,
        })
    }

    /// MPyC's `-P` sockets, by party: its own, and the forward to each peer.
    fn mpyc_sockets(&self, parties: usize) -> Vec<PathBuf> {
        (0..)
            .take(parties)
            .map(|index| self.sockets.party(index))
            .collect()
    }
}

/// Starts MPyC and waits until it exits (its exit code), or until a peer fails, is lost or
/// is gone, or this party is interrupted: then stops MPyC, tells the others why, and fails.
async fn run_program(
    plan: &RunPlan,
    links: &[PeerLink],
    forwards: &Forwards,
    finished: finish::Finished,
    interrupt: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    progress: &Progress,
) -> Result<i32, RunError> {
    let launch = Launch {
        python: plan.python.clone(),
        program: plan.program.clone(),
        me: plan.me,
        sockets: forwards.mpyc_sockets(plan.peers.len() + 1),
        args: plan.args.clone(),
    };
    progress(format!(
        "starting {} as party {} of {}",
        plan.program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        plan.me,
        plan.peers.len() + 1
    ));
    let mut child = launch.spawn().await?;
    let stopped: Result<std::process::ExitStatus, RunError> = tokio::select! {
        status = child.wait() => Ok(status.map_err(|source| LauncherError::Spawn { python: plan.python.display().to_string(), source })?),
        (peer, reason) = first_lost_link(links, finished.clone()) => Err(RunError::LostPeer { peer, reason }),
        (peer, reason) = first_gone_peer(links, plan, finished.clone()) => Err(RunError::LostPeer { peer, reason }),
        error = first_failed_peer(links, finished.clone()) => Err(error),
        () = interrupt.as_mut() => Err(RunError::Interrupted),
    };
    match stopped {
        Ok(status) => Ok(status.code().unwrap_or(-1)),
        Err(error) => {
            // Stopping early: say so and why, so the others hear a failure rather than a lost
            // link, and whose.
            let _ = child.kill().await;
            let ending = FinishedMessage {
                exit_code: finish::ABORTED,
                cause: error.blamed_party(),
            };
            finish::announce_and_wait(links, ending, finished, ABORT_GRACE).await;
            Err(error)
        }
    }
}

/// After MPyC exited with `exit_code`: drains the forwards, tells every peer, and waits for
/// theirs (at most the finish timeout). Returns the peers that did not answer.
async fn finish_together(
    plan: &RunPlan,
    links: &[PeerLink],
    forwards: &Forwards,
    exit_code: i32,
    finished: finish::Finished,
) -> Vec<String> {
    forwards.pumps.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, forwards.pumps.wait())
        .await
        .is_err()
    {
        tracing::warn!("MPyC's streams did not drain within {DRAIN_TIMEOUT:?} of its exit");
    }
    let ending = FinishedMessage {
        exit_code,
        cause: None,
    };
    finish::announce_and_wait(links, ending, finished, plan.finish_timeout).await
}

/// Gives freshly made links a moment to move from the relay to a direct path before MPyC's
/// first message: each round trip over the relay costs milliseconds, a direct one microseconds.
async fn await_direct_paths(links: &[PeerLink], progress: &Progress) {
    let all_direct = || {
        links
            .iter()
            .all(|link| matches!(link.route().0, Route::Direct(_)))
    };
    let waited = Instant::now();
    while !all_direct() && waited.elapsed() < DIRECT_PATH_GRACE {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for link in links {
        let (route, rtt) = link.route();
        progress(format!("{}: {route}{}", link.peer, format_rtt(rtt)));
    }
}

/// Announces this endpoint's direct addresses and collects the peers', until dropped.
async fn exchange_addresses(
    plan: &RunPlan,
    endpoint: Endpoint,
    book: watch::Sender<HashMap<iroh::PublicKey, Vec<SocketAddr>>>,
) {
    let members: HashMap<mpcnet_proto::PublicKey, iroh::PublicKey> = plan
        .peers
        .iter()
        .filter_map(|peer| {
            Some((
                mpcnet_proto::PublicKey::from_bytes(peer.key.as_bytes()).ok()?,
                peer.key,
            ))
        })
        .collect();
    let mut announced: Option<Vec<SocketAddr>> = None;
    let mut stamps = AnnouncementStamps::default();
    let mut ticker = tokio::time::interval(ADDRESS_EXCHANGE_PERIOD);
    loop {
        ticker.tick().await;
        let mine: Vec<SocketAddr> = endpoint.addr().ip_addrs().copied().collect();
        if plan.policy != PathPolicy::RelayOnly
            && !mine.is_empty()
            && announced.as_ref() != Some(&mine)
        {
            let signed = EndpointAnnouncement::sign(
                plan.lobby_id,
                &plan.identity,
                stamps.next(),
                mine.clone(),
            );
            match plan.lobby.announce(&plan.lobby_id, &signed).await {
                Ok(()) => announced = Some(mine),
                Err(error) => tracing::debug!(%error, "announcing addresses failed"),
            }
        }
        if plan.policy == PathPolicy::RelayOnly {
            continue;
        }
        match plan.lobby.announcements(&plan.lobby_id).await {
            Ok(list) => {
                let verified = list.iter().filter_map(|signed| {
                    let announcement = signed.verify_statement(&plan.lobby_id).ok()?;
                    Some((*members.get(&announcement.party)?, announcement.addrs))
                });
                let verified: HashMap<_, _> = verified.collect();
                book.send_if_modified(|book| {
                    let changed = *book != verified;
                    *book = verified;
                    changed
                });
            }
            Err(error) => tracing::debug!(%error, "fetching addresses failed"),
        }
    }
}

/// Stamps of this agent's announcements: its clock in Unix milliseconds (so a restarted agent's
/// are newer than its last run's), but always later than the stamp before, so the lobby takes
/// each as the newest even if the clock steps back.
#[derive(Debug, Default)]
struct AnnouncementStamps {
    last: u64,
}

impl AnnouncementStamps {
    fn next(&mut self) -> u64 {
        let now = u64::try_from(unix_ms()).unwrap_or(u64::MAX);
        self.last = now.max(self.last.saturating_add(1));
        self.last
    }
}

/// The first link that ends before its peer said it finished.
async fn first_lost_link(links: &[PeerLink], finished: finish::Finished) -> (Peer, String) {
    let mut watches = tokio::task::JoinSet::new();
    for link in links {
        let (link, mut finished) = (link.clone(), finished.clone());
        watches.spawn(async move {
            let reason = link.ended().await;
            // The peer's last words ("finished", "aborted") may still be on their way in.
            let index = link.peer.index;
            let _ = tokio::time::timeout(
                LAST_WORDS_GRACE,
                finished.wait_for(|said| said.contains_key(&index)),
            )
            .await;
            if finished.borrow().contains_key(&index) {
                std::future::pending::<()>().await;
            }
            (link.peer, reason)
        });
    }
    match watches.join_next().await {
        Some(Ok(lost)) => lost,
        _ => std::future::pending().await,
    }
}

/// The first unreachable peer that the lobby says is gone (it closed its relay connection: its
/// agent exited or was killed on a machine that is still up), so the run need not wait out its
/// patience for it. Asks only while some peer that has not finished is unreachable.
async fn first_gone_peer(
    links: &[PeerLink],
    plan: &RunPlan,
    finished: finish::Finished,
) -> (Peer, String) {
    let mut ticker = tokio::time::interval(GONE_CHECK_PERIOD);
    loop {
        ticker.tick().await;
        let unreachable: Vec<&PeerLink> = links
            .iter()
            .filter(|link| link.unreachable_for().is_some())
            .filter(|link| !finished.borrow().contains_key(&link.peer.index))
            .collect();
        if unreachable.is_empty() {
            continue;
        }
        let Ok(departures) = plan.lobby.departures(&plan.lobby_id).await else {
            continue;
        };
        for link in unreachable {
            let key = link.peer.key.as_bytes();
            if let Some(gone) = departures.iter().find(|d| d.party.to_bytes() == *key) {
                let reason = format!(
                    "it is gone: its connection to the relay closed {} s ago and nothing was heard from it since",
                    gone.seconds_ago
                );
                return (link.peer.clone(), reason);
            }
        }
    }
}

/// The first peer that says its run ended with a failure (this party's MPyC would wait for it
/// forever), preferring one that failed on its own over one that stopped for another party.
async fn first_failed_peer(links: &[PeerLink], mut finished: finish::Finished) -> RunError {
    let failed = |said: &HashMap<u16, FinishedMessage>| said.values().any(|m| m.exit_code != 0);
    if finished.wait_for(failed).await.is_err() {
        return std::future::pending().await;
    }
    let said = finished.borrow();
    let peer_of = |index: u16| {
        links
            .iter()
            .find(|link| link.peer.index == index)
            .map(|link| link.peer.clone())
    };
    let mut failures: Vec<(&u16, &FinishedMessage)> =
        said.iter().filter(|(_, m)| m.exit_code != 0).collect();
    failures.sort_by_key(|(index, message)| (message.cause.is_some(), **index));
    let (index, message) = failures[0];
    RunError::PeerFailed {
        peer: peer_of(*index).expect("only linked peers' messages are recorded"),
        code: message.exit_code,
        cause: message.cause.and_then(peer_of),
    }
}

/// How a peer's failure reads: what it said, and for whom it stopped if it stopped for another.
fn describe_failure(peer: &Peer, code: i32, cause: Option<&Peer>) -> String {
    match (code, cause) {
        (_, Some(cause)) => format!("{peer} stopped its run because of {cause}"),
        (finish::ABORTED, None) => format!("{peer} failed (it stopped its run)"),
        (code, None) => format!("{peer} failed (its program exited with code {code})"),
    }
}

impl RunError {
    /// The party this party stops for, which it names to the others when it stops early.
    fn blamed_party(&self) -> Option<u16> {
        match self {
            Self::LostPeer { peer, .. } => Some(peer.index),
            Self::PeerFailed { peer, cause, .. } => Some(cause.as_ref().unwrap_or(peer).index),
            _ => None,
        }
    }
}

/// Reports route changes and unreachable peers as progress lines, keeps the status file fresh
/// and reports to the lobby, until dropped.
fn watch_links(
    links: &[PeerLink],
    plan: &RunPlan,
    progress: Progress,
    reporter: RunUpdates,
) -> AbortOnDropHandle<()> {
    let links = links.to_vec();
    let (status_file, me, patience) = (plan.status_file.clone(), plan.me, plan.patience);
    AbortOnDropHandle::new(tokio::spawn(async move {
        let mut told: Vec<Told> = links
            .iter()
            .map(|link| Told {
                route: link.route().0,
                unreachable: None,
                carrier: 0,
            })
            .collect();
        let mut ticker = tokio::time::interval(STATUS_PERIOD);
        loop {
            ticker.tick().await;
            for (link, told) in links.iter().zip(told.iter_mut()) {
                tell_link_changes(link, told, patience, &progress);
            }
            let reports: Vec<LinkReport> = links.iter().map(PeerLink::report).collect();
            reporter.update(RunState::Running, &reports);
            write_status(status_file.as_ref(), me, "running", reports);
        }
    }))
}

/// How often a progress line says a peer is still unreachable.
const UNREACHABLE_REMINDER: u64 = 10;

/// What the progress lines last said of a link.
struct Told {
    route: Route,
    /// While the peer is unreachable: since when, and the silence last told (seconds).
    unreachable: Option<(Instant, u64)>,
    /// The number of the carrier last told.
    carrier: u64,
}

/// Tells what changed on `link` since `told`: a new connection carrying it, the peer
/// unreachable (at once, then every [`UNREACHABLE_REMINDER`] seconds), reachable again, or on
/// another route.
fn tell_link_changes(link: &PeerLink, told: &mut Told, patience: Duration, progress: &Progress) {
    let peer = &link.peer;
    let carrier = link.reconnections();
    if carrier != told.carrier {
        progress(format!(
            "{peer}: a new connection carries the link, its streams resumed where they were"
        ));
        told.carrier = carrier;
    }
    match (link.unreachable_for(), told.unreachable) {
        (Some(silence), None) => {
            let silent = silence.as_secs();
            progress(format!(
                "{peer}: unreachable for {silent} s, waiting for any path (direct or relayed) for up to {} s",
                patience.as_secs()
            ));
            told.unreachable = Some((Instant::now() - silence, silent));
        }
        (Some(silence), Some((since, last))) => {
            let silent = silence.as_secs();
            if silent >= last + UNREACHABLE_REMINDER {
                progress(format!("{peer}: still unreachable after {silent} s"));
                told.unreachable = Some((since, silent));
            }
        }
        (None, Some((since, _))) => {
            let (route, rtt) = link.route();
            progress(format!(
                "{peer}: reachable again after {:.0} s, {route}{}",
                since.elapsed().as_secs_f64(),
                format_rtt(rtt)
            ));
            told.route = route;
            told.unreachable = None;
        }
        (None, None) => {
            let (route, rtt) = link.route();
            if route != told.route && route != Route::None {
                progress(format!(
                    "{peer}: now {route}{} (was {})",
                    format_rtt(rtt),
                    told.route
                ));
                told.route = route;
            }
        }
    }
}

/// Writes the status file atomically (write, then rename); failures are only logged.
fn write_status(path: Option<&PathBuf>, me: u16, state: &str, links: Vec<LinkReport>) {
    let Some(path) = path else {
        return;
    };
    let status = StatusFile {
        updated_unix_ms: unix_ms(),
        pid: std::process::id(),
        me,
        state,
        links,
    };
    let temporary = path.with_extension("tmp");
    let written = serde_json::to_vec_pretty(&status)
        .map_err(std::io::Error::other)
        .and_then(|json| std::fs::write(&temporary, json))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        tracing::debug!(path = %path.display(), %error, "cannot write the status file");
    }
}

/// This machine's clock in Unix milliseconds (0 before 1970).
fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// ", rtt 1.2 ms", or nothing when unknown.
pub fn format_rtt(rtt: Option<Duration>) -> String {
    rtt.map(|rtt| format!(", rtt {:.1} ms", rtt.as_secs_f64() * 1000.0))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcement_stamps_start_from_the_clock_and_always_grow() {
        let before = u64::try_from(unix_ms()).expect("ms");
        let mut stamps = AnnouncementStamps::default();
        let first = stamps.next();
        assert!(first >= before);
        let mut last = first;
        for _ in 0..1000 {
            let next = stamps.next();
            assert!(next > last);
            last = next;
        }
        // A clock stepped back does not make a stamp older.
        let mut ahead = AnnouncementStamps { last: u64::MAX - 1 };
        assert_eq!(ahead.next(), u64::MAX);
    }
}
