//! Call ids that stay unique across nodes and restarts, and still fit a JSON number exactly
//! (53 bits, so a JavaScript console reads them right): the node's number in the top 10 bits,
//! then a counter that starts, at each start of the node, at the seconds since 2025-01-01
//! times 8192. A restart therefore never reuses an id unless the previous run handed out more
//! than 8,192 calls for every second it ran.

use std::sync::atomic::{AtomicU64, Ordering};

/// A call, unique across the nodes of a deployment (see the module docs).
pub type CallId = u64;

/// The largest node number (`cluster.node_id`).
pub const MAX_NODE: u16 = 1023;
/// Bits of the counter.
const COUNTER_BITS: u32 = 43;
/// Calls per second of uptime a restart can never catch up with.
const PER_SECOND: u64 = 1 << 13;
/// 2025-01-01T00:00:00Z.
const EPOCH_SECS: u64 = 1_735_689_600;

/// Hands out a node's call ids.
#[derive(Debug)]
pub struct CallIds {
    node: u64,
    next: AtomicU64,
}

impl CallIds {
    /// The ids of node `node` (at most [`MAX_NODE`]) started at `unix_secs`.
    pub fn new(node: u16, unix_secs: u64) -> Self {
        let mask = (1u64 << COUNTER_BITS) - 1;
        let start = (unix_secs.saturating_sub(EPOCH_SECS) * PER_SECOND) & mask;
        CallIds {
            node: u64::from(node.min(MAX_NODE)) << COUNTER_BITS,
            next: AtomicU64::new(start.max(1)),
        }
    }

    /// The next id.
    pub fn next(&self) -> CallId {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & ((1u64 << COUNTER_BITS) - 1);
        self.node | n
    }

    /// The node an id was made on.
    pub fn node_of(id: CallId) -> u16 {
        (id >> COUNTER_BITS) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_across_nodes_and_restarts_and_fit_a_json_number() {
        let t = 1_795_000_000;
        let a = CallIds::new(1, t);
        let b = CallIds::new(2, t);
        let (a1, b1) = (a.next(), b.next());
        assert_ne!(a1, b1);
        assert_eq!((CallIds::node_of(a1), CallIds::node_of(b1)), (1, 2));
        assert_eq!(a.next(), a1 + 1);
        // A restart a second later, after 8,000 calls, does not reuse an id.
        let a = CallIds::new(1, t);
        let used: Vec<_> = (0..8000).map(|_| a.next()).collect();
        let restarted = CallIds::new(1, t + 1);
        assert!(restarted.next() > *used.last().unwrap());
        let max = CallIds::new(MAX_NODE, EPOCH_SECS + 34 * 365 * 86400).next();
        assert!(max < 1 << 53, "fits a JSON number exactly: {max}");
    }
}
