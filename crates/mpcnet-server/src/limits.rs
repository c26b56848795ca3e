//! Every bound the server keeps against strangers and hostile members, in one place, with the
//! defaults `mpcnet serve` starts with and why each is as large as it is.
//!
//! The defaults leave room for a 64-party session doing its heaviest honest work (the lobby:
//! 64 joins, one seal, a run report per party every few seconds, a few live pages; the relay:
//! MPyC's bandwidth-heavy programs move ~2.5 MB/s per party) and stop one address from taking
//! more than a small share of the server.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::https::ConnectionLimits;

/// A rate: how many per second on average, and how many at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `per_second` on average with bursts of `burst`; zeros count as one.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// What the relay lets session members use.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Bytes per second one relay client may send, and its burst.
    pub client_rate: Rate,
    /// How long a relay client may take from its WebSocket upgrade to being admitted.
    pub handshake_timeout: Duration,
    /// Relay clients (keys connected at once) over all sessions one address created.
    pub keys_per_creator: usize,
    /// Bytes relayed for the live sessions one address created; past it their relay ends.
    pub bytes_per_creator: u64,
}

/// The server's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest program file a lobby accepts.
    pub max_program_bytes: usize,
    /// Program bytes stored over all live lobbies, and over the live lobbies of one address.
    pub stored_program_bytes: u64,
    pub stored_program_bytes_per_creator: u64,
    /// Request body bytes being received at once, over all clients (uploads wait for none: a
    /// create that does not fit now is refused with 503).
    pub upload_bytes_in_flight: usize,
    /// Creates one address may be uploading at once, so one address cannot hold the whole
    /// budget in flight.
    pub uploads_per_address: usize,
    /// The most lobbies alive at once, and live lobbies one address may have created.
    pub max_lobbies: u64,
    pub max_lobbies_per_creator: usize,
    /// Connections of the HTTPS listener (API and relay together).
    pub connections: ConnectionLimits,
    /// Live session pages (event streams), in all, from one address and of one lobby.
    pub live_pages: usize,
    pub live_pages_per_address: usize,
    pub live_pages_per_lobby: usize,
    /// API requests (reads and writes) from one address.
    pub requests_per_address: Rate,
    /// Statements (announcements, run reports) one party key may store, per lobby.
    pub statements_per_party: Rate,
    pub relay: RelayLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // The largest bundle parties accept (`mpcnet_proto::bundle`).
            max_program_bytes: mpcnet_proto::bundle::MAX_BUNDLE_BYTES,
            // 1 GiB in all; one address may hold 64 MiB (8 programs of the largest size).
            stored_program_bytes: 1 << 30,
            stored_program_bytes_per_creator: 64 << 20,
            // Four of the largest uploads at once (base64 makes 8 MiB about 11 MiB).
            upload_bytes_in_flight: 48 << 20,
            // A creator uploads one program at a time; two leaves room for a retry.
            uploads_per_address: 2,
            max_lobbies: 10_000,
            max_lobbies_per_creator: 20,
            // An agent opens a few connections; a 64-party session starting behind one NAT a
            // few hundred at once.
            connections: ConnectionLimits {
                total: 4096,
                per_ip: 64,
                new_per_ip: Rate::new(50, 250),
            },
            // A session page holds one connection; 16 per address, so it takes 256 addresses
            // to hold every slot, and 128 per lobby (a 64-party session watched twice over).
            live_pages: 4096,
            live_pages_per_address: 16,
            live_pages_per_lobby: 128,
            // An agent polls the lobby every 100 ms while it waits for the seal and for its
            // peers' addresses: a 64-party session behind one NAT makes 640 requests a second.
            requests_per_address: Rate::new(1000, 2000),
            // An agent reports at once on each change and every 5 s; it announces a few times.
            statements_per_party: Rate::new(10, 50),
            relay: RelayLimits {
                // 25 MB/s (200 Mbit/s) per client, 16 MiB bursts: ten times what MPyC's
                // bandwidth-heavy programs send per party.
                client_rate: Rate::new(25_000_000, 16 << 20),
                handshake_timeout: Duration::from_secs(10),
                // 20 lobbies of up to 64 parties would be 1280; 256 clients at once is more than
                // any honest creator needs over its live sessions.
                keys_per_creator: 256,
                // 64 GiB per address over its live sessions (a day of relayed heavy MPC).
                bytes_per_creator: 64 << 30,
            },
        }
    }
}
