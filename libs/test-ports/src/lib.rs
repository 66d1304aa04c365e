//! Loopback ports for servers a test starts as child processes, which cannot be handed a
//! bound listener.
//!
//! A port found by binding `127.0.0.1:0` lies in the kernel's ephemeral range: once it is
//! released, the kernel may give it to the next `bind(0)` (the next server of the same test)
//! or to an outgoing connection's local end before the child has bound it. So ports come
//! from below that range, where the kernel never picks on its own. Each process walks the
//! range from a random start and never hands out a port twice, so neither its own servers
//! nor a concurrent test process (another random start) is likely to be given the same one;
//! a port some other server already holds is skipped because it cannot be bound.

use std::{
    net::TcpListener,
    sync::{Mutex, PoisonError},
};

/// The lowest port handed out: above the well-known and registered services run here.
const LOWEST: u16 = 10_000;

/// The next candidate of this process, chosen at random on first use.
static NEXT: Mutex<Option<u16>> = Mutex::new(None);

/// `n` distinct loopback ports that were free when chosen.
pub fn free_ports(n: usize) -> Vec<u16> {
    let (low, high) = range();
    let mut next = NEXT.lock().unwrap_or_else(PoisonError::into_inner);
    let start = next.unwrap_or_else(|| low + (random() % u32::from(high - low)) as u16);
    let (ports, after) = walk(start, low, high, n);
    *next = Some(after);
    assert_eq!(
        ports.len(),
        n,
        "no {n} free loopback ports in {low}..{high}"
    );
    ports
}

/// One loopback port that was free when chosen.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// Up to `n` ports of `low..high` that can be bound, from `start` on, wrapping around; and
/// where the next walk starts.
fn walk(start: u16, low: u16, high: u16, n: usize) -> (Vec<u16>, u16) {
    let mut port = start;
    let mut ports = Vec::with_capacity(n);
    // Every port of the range once, then a second lap: the ones released by then are free.
    for _ in 0..2 * u32::from(high - low) {
        if ports.len() == n {
            break;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
        port = if port + 1 >= high { low } else { port + 1 };
    }
    (ports, port)
}

/// The larger of the spans below and above the kernel's ephemeral range (Linux's default,
/// 32768–60999, leaves `10000..32768`); the whole space if neither is of use.
fn range() -> (u16, u16) {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut bounds = s.split_whitespace().map(|b| b.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32_768, 60_999));
    let below = (LOWEST, ephemeral.0.max(LOWEST));
    let above = (ephemeral.1.saturating_add(1).max(LOWEST), u16::MAX);
    let widest = if below.1 - below.0 >= above.1 - above.0 {
        below
    } else {
        above
    };
    if widest.1 - widest.0 >= 1_000 {
        widest
    } else {
        (LOWEST, u16::MAX)
    }
}

/// A random number without a dependency: std's per-process random hasher keys.
fn random() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_below_the_ephemeral_range() {
        let first = free_ports(20);
        let second = free_ports(20);
        let mut all: Vec<u16> = first.iter().chain(&second).copied().collect();
        let (low, high) = range();
        assert!(all.iter().all(|p| (low..high).contains(p)), "{all:?}");
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 40, "a port was handed out twice");
    }

    #[test]
    fn a_port_in_use_is_skipped() {
        let held = TcpListener::bind(("127.0.0.1", free_port())).expect("bind");
        let taken = held.local_addr().expect("addr").port();
        let (low, high) = range();
        let (ports, _) = walk(taken, low, high, 1);
        assert_eq!(ports.len(), 1);
        assert_ne!(ports[0], taken);
    }
}
