//! How a run's links are doing: the per-peer lines a running agent reports and `mpcnet status`
//! shows (route, RTT, bytes). Plain data, shared by the agent that writes it and the client
//! that reads it.

use serde::{Deserialize, Serialize};

/// How a link is routed at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "via")]
pub enum Route {
    /// A direct UDP path to this address.
    Direct(String),
    /// Through this relay.
    Relay(String),
    /// No path is selected (yet, or any more).
    None,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Direct(address) => write!(f, "direct {address}"),
            Self::Relay(url) => write!(f, "relayed via {url}"),
            Self::None => f.write_str("no path"),
        }
    }
}

/// One line of `mpcnet status` for a peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkReport {
    pub index: u16,
    pub name: String,
    pub state: String,
    pub route: Route,
    pub rtt_ms: Option<f64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Seconds since the peer was last heard, while it is unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_s: Option<u64>,
    /// How many times a new QUIC connection took the link over, its streams resumed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reconnections: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}
