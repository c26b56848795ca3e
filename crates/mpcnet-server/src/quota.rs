//! Limits per client address (and per lobby): connections and live session pages held open at once, and
//! live lobbies created (so that one address cannot take every lobby of the server's
//! `max_lobbies`: the web page makes creating one a click). IPv6 addresses count per /64, the
//! block one subscriber usually holds. Kept in memory: a restart forgets, which only allows more.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use crate::limits::Rate;
use crate::lock;

/// The client address of a request, as the HTTPS listener saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// The address limits count under: IPv4 as is, IPv6 by its /64 (an IPv4-mapped one as IPv4).
pub(crate) fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Things (connections, event streams) open per key: a client address, a lobby.
#[derive(Debug)]
pub struct OpenPer<K>(Mutex<HashMap<K, usize>>);

/// Things open per client address (counted as [`counted_as`] says).
pub type OpenPerAddress = OpenPer<IpAddr>;

impl<K> Default for OpenPer<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: Hash + Eq + Copy> OpenPer<K> {
    /// Counts one more for `key`, unless it has `limit` open already; the guard uncounts it.
    pub fn enter(self: &Arc<Self>, key: K, limit: usize) -> Option<OpenGuard<K>> {
        let mut open = lock(&self.0);
        let count = open.entry(key).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(OpenGuard {
            counts: self.clone(),
            key,
        })
    }
}

impl OpenPerAddress {
    /// Counts one more from `address`, unless it has `limit` open already.
    pub fn enter_from(
        self: &Arc<Self>,
        address: IpAddr,
        limit: usize,
    ) -> Option<OpenGuard<IpAddr>> {
        self.enter(counted_as(address), limit)
    }
}

/// Uncounts its connection or stream when dropped.
#[derive(Debug)]
pub struct OpenGuard<K: Hash + Eq + Copy> {
    counts: Arc<OpenPer<K>>,
    key: K,
}

impl<K: Hash + Eq + Copy> Drop for OpenGuard<K> {
    fn drop(&mut self) {
        let mut open = lock(&self.counts.0);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
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

    /// Whether `address` has a place left at `now` (what [`reserve`](Self::reserve) would
    /// say, asked before a create's body is read).
    pub fn has_room(&self, address: IpAddr, now: u64) -> bool {
        let held = lock(&self.held);
        let live = held.get(&counted_as(address)).map_or(0, |expiries| {
            expiries.iter().filter(|&&at| at > now).count()
        });
        live < self.limit
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

/// A rate limit per key (a client address, a party of a lobby): GCRA from `governor`.
#[derive(Debug)]
pub struct KeyedRate<K: Hash + Eq + Clone>(governor::DefaultKeyedRateLimiter<K>);

impl<K: Hash + Eq + Clone> KeyedRate<K> {
    pub fn new(rate: Rate) -> Self {
        let quota = governor::Quota::per_second(rate.per_second).allow_burst(rate.burst);
        Self(governor::RateLimiter::keyed(quota))
    }

    /// Takes one from `key`'s allowance; false if it has none left now.
    pub fn allows(&self, key: K) -> bool {
        self.0.check_key(&key).is_ok()
    }

    /// Forgets keys whose allowance is full again (they would start afresh anyway).
    pub fn forget_quiet(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
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
        let first = counts.enter_from(ip("192.0.2.7"), 2).expect("first");
        let _second = counts.enter_from(ip("192.0.2.7"), 2).expect("second");
        assert!(
            counts.enter_from(ip("192.0.2.7"), 2).is_none(),
            "a third is refused"
        );
        assert!(
            counts.enter_from(ip("192.0.2.8"), 2).is_some(),
            "other addresses are not"
        );
        drop(first);
        assert!(
            counts.enter_from(ip("192.0.2.7"), 2).is_some(),
            "a closed one frees its place"
        );
    }

    #[test]
    fn an_ipv6_subscriber_counts_once_per_64() {
        let counts = Arc::new(OpenPerAddress::default());
        let _one = counts.enter_from(ip("2001:db8:1:2::1"), 1).expect("first");
        assert!(
            counts.enter_from(ip("2001:db8:1:2:ffff::9"), 1).is_none(),
            "same /64"
        );
        assert!(
            counts.enter_from(ip("2001:db8:1:3::1"), 1).is_some(),
            "another /64"
        );
        let _v4 = counts.enter_from(ip("192.0.2.1"), 1).expect("v4");
        assert!(
            counts.enter_from(ip("::ffff:192.0.2.1"), 1).is_none(),
            "mapped v4 is v4"
        );
    }

    #[test]
    fn a_keyed_rate_allows_its_burst_then_refuses_only_that_key() {
        let rate = KeyedRate::new(Rate::new(1, 3));
        for _ in 0..3 {
            assert!(rate.allows(ip("192.0.2.1")));
        }
        assert!(!rate.allows(ip("192.0.2.1")), "the burst is spent");
        assert!(rate.allows(ip("192.0.2.2")), "another key has its own");
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
