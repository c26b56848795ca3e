//! How many live lobbies one client address may hold, so that one address cannot take every
//! seat of the server's `max_lobbies` (the web page makes creating a lobby one click).
//! Kept in memory: a restart forgets who made what, which only ever allows more.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The client address of a request, as the HTTPS listener saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// Live lobbies per client address, each remembered by its expiry time.
#[derive(Debug)]
pub struct CreatorQuota {
    limit: usize,
    held: Mutex<HashMap<IpAddr, Vec<u64>>>,
}

impl CreatorQuota {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Mutex::default(),
        }
    }

    /// Takes one of `address`'s places for a lobby that expires at `expires_at`, unless the
    /// address holds `limit` live ones at `now` already.
    pub fn reserve(&self, address: IpAddr, now: u64, expires_at: u64) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|_, expiries| {
            expiries.retain(|&expiry| expiry > now);
            !expiries.is_empty()
        });
        let expiries = held.entry(address).or_default();
        if expiries.len() >= self.limit {
            return false;
        }
        expiries.push(expires_at);
        true
    }

    /// Gives back a place taken by [`reserve`](Self::reserve) for a lobby that was not made.
    pub fn release(&self, address: IpAddr, expires_at: u64) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(expiries) = held.get_mut(&address)
            && let Some(at) = expiries.iter().position(|&expiry| expiry == expires_at)
        {
            expiries.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_limit_until_lobbies_expire() {
        let quota = CreatorQuota::new(2);
        let (one, two): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        assert!(quota.reserve(one, 0, 100));
        assert!(quota.reserve(one, 0, 200));
        assert!(!quota.reserve(one, 50, 300), "two live lobbies already");
        assert!(
            quota.reserve(two, 50, 300),
            "another address is not affected"
        );
        quota.release(one, 200);
        assert!(
            quota.reserve(one, 50, 300),
            "a released place is free again"
        );
        assert!(
            quota.reserve(one, 150, 400),
            "the first lobby expired at 100"
        );
        assert!(!quota.reserve(one, 150, 500));
    }
}
