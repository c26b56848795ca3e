//! A party's agent: it links with every other party of a sealed session and runs MPyC over
//! those links.
//!
//! - [`endpoint`]: the iroh endpoint keyed by the party's identity, the session's relays only.
//! - [`failover`]: giving up a relay that died, so links move to another.
//! - [`mesh`]: dial higher-numbered peers, accept lower-numbered ones, refuse strangers.
//! - [`forward`]: MPyC's connections as streams of the links, both ways.
//! - [`sockets`]: the run's private directory of Unix sockets, where MPyC and the agent meet.
//! - [`stream`]: one such stream, pumped over carrier after carrier, resumed at the byte.
//! - [`control`]: a link kept across carriers (heartbeats, delivery reports, dialing again).
//! - [`launcher`]: Python with `mpyc`, and the MPyC command line.
//! - [`finish`]: ending together, so no link closes with data in flight.
//! - [`link`]: a link for the whole run: its carrier, streams, route, RTT and byte counts.
//! - [`wire`]: the bytes agents send each other (stream openings, control, codes, "finished").
//! - [`report`]: signed run reports to the lobby, for the session page.
//! - [`resume`]: what each side keeps of a stream so that a new connection can take it up at
//!   the exact byte (the state machine of ARCHITECTURE.md's "Links that heal").
//! - [`run`]: all of the above, in order, for one run.

pub mod control;
pub mod endpoint;
pub mod failover;
pub mod finish;
pub mod forward;
pub mod launcher;
pub mod link;
pub mod mesh;
pub mod python;
pub mod report;
pub mod resume;
pub mod run;
pub mod sockets;
pub mod stream;
pub mod wire;

pub use endpoint::{PathPolicy, RelayPlan, SessionRelay};
pub use link::{LinkReport, Peer};
pub use run::{Progress, RunError, RunOutcome, RunPlan, run};

/// Locks `mutex`, taking the data of a holder that panicked as it is: every lock here guards
/// plain bookkeeping that stays consistent between statements.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
