//! Token buckets per key (a visitor's IP address, say): `rate` a second sustained, `burst` at
//! once. Sans-IO: the time is an argument. Keys whose buckets are full again are forgotten, so the
//! table follows the keys active now; at most `max_keys` are tracked (beyond, new keys pass).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Buckets by key.
#[derive(Debug)]
pub struct TokenBuckets<K> {
    rate: f64,
    burst: f64,
    max_keys: usize,
    buckets: HashMap<K, (f64, Instant)>,
    next_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Copy> TokenBuckets<K> {
    /// `rate` tokens a second, at most `burst` saved up, at most `max_keys` keys tracked.
    pub fn new(rate: f64, burst: f64, max_keys: usize) -> Self {
        TokenBuckets {
            rate,
            burst: burst.max(1.0),
            max_keys,
            buckets: HashMap::new(),
            next_sweep: None,
        }
    }

    /// Takes a token for `key` at `now`; false when its bucket is empty.
    pub fn allow(&mut self, now: Instant, key: K) -> bool {
        self.sweep_if_due(now);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_keys {
            return true;
        }
        let (rate, burst) = (self.rate, self.burst);
        let (tokens, last) = self.buckets.entry(key).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets `key`'s bucket: its next message starts from a full one.
    pub fn forget(&mut self, key: &K) {
        self.buckets.remove(key);
    }

    /// True while `key` has a bucket.
    pub fn tracks(&self, key: &K) -> bool {
        self.buckets.contains_key(key)
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn sweep_if_due(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| t > now) {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(5));
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_key() {
        let t0 = Instant::now();
        let mut b = TokenBuckets::new(2.0, 5.0, 10);
        let allowed = (0..10).filter(|_| b.allow(t0, 1)).count();
        assert_eq!(allowed, 5);
        assert!(b.allow(t0, 2), "another key has its own bucket");
        assert!(!b.allow(t0 + Duration::from_millis(400), 1));
        assert!(
            b.allow(t0 + Duration::from_millis(500), 1),
            "one token a half second"
        );
        // Idle keys are forgotten once full again.
        b.allow(t0 + Duration::from_secs(10), 3);
        assert_eq!(b.len(), 1);
        // A forgotten key starts from a full bucket.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!((0..10).filter(|_| b.allow(t1, 3)).count(), 5);
        b.forget(&3);
        assert!(b.is_empty());
        assert!(b.allow(t1, 3));
    }

    #[test]
    fn beyond_the_key_limit_new_keys_pass_untracked() {
        let t0 = Instant::now();
        let mut b = TokenBuckets::new(1.0, 1.0, 2);
        assert!(b.allow(t0, 1) && b.allow(t0, 2));
        for _ in 0..5 {
            assert!(b.allow(t0, 3));
        }
        assert!(!b.allow(t0, 1));
    }
}
