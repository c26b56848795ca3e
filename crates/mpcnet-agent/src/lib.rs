//! A party's agent: it links with every other party of a sealed session and runs MPyC over
//! those links.
//!
//! - [`endpoint`]: the iroh endpoint keyed by the party's identity, our relay only.
//! - [`mesh`]: dial higher-numbered peers, accept lower-numbered ones, refuse strangers.
//! - [`forward`]: MPyC's TCP connections as QUIC streams, both ways, no batching.
//! - [`launcher`]: Python with `mpyc`, ports, and the MPyC command line.
//! - [`finish`]: ending together, so no link closes with data in flight.
//! - [`link`]: a link's route (direct or relayed), RTT and byte counts.
//! - [`wire`]: the bytes agents send each other (stream headers, codes, "finished").
//! - [`report`]: signed run reports to the lobby, for the session page.
//! - [`resume`]: what each side keeps of a stream so that a new connection can take it up at
//!   the exact byte (the state machine of ARCHITECTURE.md's "Links that heal"; the forwards
//!   do not drive it yet).
//! - [`run`]: all of the above, in order, for one run.

pub mod endpoint;
pub mod finish;
pub mod forward;
pub mod launcher;
pub mod link;
pub mod mesh;
pub mod report;
pub mod resume;
pub mod run;
pub mod wire;

pub use endpoint::{PathPolicy, RelayPlan};
pub use link::{LinkReport, Peer};
pub use run::{Progress, RunError, RunOutcome, RunPlan, run};
