//! Limits per client address: connections and live session pages held open at once, and
//! live lobbies created (so that one address cannot take every lobby of the server's
//! `max_lobbies`: the web page makes creating one a click). IPv6 addresses count per /64, the
//! block one subscriber usually holds. Kept in memory: a restart forgets, which only allows more.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// The client address of a request, as the HTTPS listener saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// The address limits count under: IPv4 as is, IPv6 by its /64 (an IPv4-mapped one as IPv4).
fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Things (connections, event streams) open per client address.
#[derive(Debug, Default)]
pub struct OpenPerAddress(Mutex<HashMap<IpAddr, usize>>);

impl OpenPerAddress {
    /// Counts one more from `address`, unless it has `limit` open already; the guard uncounts it.
    pub fn enter(self: &Arc<Self>, address: IpAddr, limit: usize) -> Option<OpenGuard> {
        let address = counted_as(address);
        let mut open = lock(&self.0);
        let count = open.entry(address).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(OpenGuard {
            counts: self.clone(),
            address,
        })
    }
}

/// Uncounts its connection or stream when dropped.
#[derive(Debug)]
pub struct OpenGuard {
    counts: Arc<OpenPerAddress>,
    address: IpAddr,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut open = lock(&self.counts.0);
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Live lobbies per creating address, each remembered by its expiry time.
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
        let mut held = lock(&self.held);
        held.retain(|_, expiries| {
            expiries.retain(|&expiry| expiry > now);
            !expiries.is_empty()
        });
        let expiries = held.entry(counted_as(address)).or_default();
        if expiries.len() >= self.limit {
            return false;
        }
        expiries.push(expires_at);
        true
    }

    /// Gives back a place taken by [`reserve`](Self::reserve) for a lobby that was not made.
    pub fn release(&self, address: IpAddr, expires_at: u64) {
        let mut held = lock(&self.held);
        if let Some(expiries) = held.get_mut(&counted_as(address))
            && let Some(at) = expiries.iter().position(|&expiry| expiry == expires_at)
        {
            expiries.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn open_things_are_counted_per_address_and_released() {
        let counts = Arc::new(OpenPerAddress::default());
        let first = counts.enter(ip("192.0.2.7"), 2).expect("first");
        let _second = counts.enter(ip("192.0.2.7"), 2).expect("second");
        assert!(
            counts.enter(ip("192.0.2.7"), 2).is_none(),
            "a third is refused"
        );
        assert!(
            counts.enter(ip("192.0.2.8"), 2).is_some(),
            "other addresses are not"
        );
        drop(first);
        assert!(
            counts.enter(ip("192.0.2.7"), 2).is_some(),
            "a closed one frees its place"
        );
    }

    #[test]
    fn an_ipv6_subscriber_counts_once_per_64() {
        let counts = Arc::new(OpenPerAddress::default());
        let _one = counts.enter(ip("2001:db8:1:2::1"), 1).expect("first");
        assert!(
            counts.enter(ip("2001:db8:1:2:ffff::9"), 1).is_none(),
            "same /64"
        );
        assert!(
            counts.enter(ip("2001:db8:1:3::1"), 1).is_some(),
            "another /64"
        );
        let _v4 = counts.enter(ip("192.0.2.1"), 1).expect("v4");
        assert!(
            counts.enter(ip("::ffff:192.0.2.1"), 1).is_none(),
            "mapped v4 is v4"
        );
    }

    #[test]
    fn an_address_holds_at_most_its_limit_until_lobbies_expire() {
        let quota = CreatorQuota::new(2);
        let (one, two) = (ip("10.0.0.1"), ip("10.0.0.2"));
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
