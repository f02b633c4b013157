//! The shared store several nodes meet in, as the handful of Redis operations the cluster uses:
//! leases (`SET NX PX`, compare-and-renew, compare-and-delete), keys with a time to live, hashes,
//! sets and lists with a blocking pop. [`super::redis_kv::RedisKv`] speaks them to Redis;
//! [`MemoryKv`] keeps them in one process, so `cargo test` runs several nodes in process with no
//! server (and a single node could, though it needs no cluster at all).

use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The store could not be reached, or answered something unexpected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shared state: {0}")]
pub struct KvError(pub String);

/// The operations, all atomic on their own.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    /// Sets `key` to `value` for `ttl` unless it exists: whether it was set (a lease taken).
    async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError>;
    /// Extends `key` to `ttl` if it holds `value`: whether it did (a lease renewed).
    async fn renew(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError>;
    /// Deletes `key` if it holds `value` (a lease given back).
    async fn del_if(&self, key: &str, value: &str) -> Result<bool, KvError>;
    /// Sets `key` (with a time to live, or for good).
    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), KvError>;
    /// The value of `key`.
    async fn get(&self, key: &str) -> Result<Option<String>, KvError>;
    /// Deletes `key`.
    async fn del(&self, key: &str) -> Result<(), KvError>;
    /// Sets a field of a hash.
    async fn hset(&self, hash: &str, field: &str, value: &str) -> Result<(), KvError>;
    /// Deletes a field of a hash.
    async fn hdel(&self, hash: &str, field: &str) -> Result<(), KvError>;
    /// A field of a hash.
    async fn hget(&self, hash: &str, field: &str) -> Result<Option<String>, KvError>;
    /// Every field of a hash.
    async fn hgetall(&self, hash: &str) -> Result<Vec<(String, String)>, KvError>;
    /// Adds to a set.
    async fn sadd(&self, set: &str, member: &str) -> Result<(), KvError>;
    /// Removes from a set.
    async fn srem(&self, set: &str, member: &str) -> Result<(), KvError>;
    /// Every member of a set.
    async fn smembers(&self, set: &str) -> Result<Vec<String>, KvError>;
    /// Appends to a list.
    async fn push(&self, list: &str, value: &str) -> Result<(), KvError>;
    /// Takes the head of a list, waiting up to `wait` for one.
    async fn pop(&self, list: &str, wait: Duration) -> Result<Option<String>, KvError>;
}

#[derive(Default)]
struct Data {
    keys: HashMap<String, (String, Option<Instant>)>,
    hashes: HashMap<String, HashMap<String, String>>,
    sets: HashMap<String, BTreeSet<String>>,
    lists: HashMap<String, VecDeque<String>>,
}

impl Data {
    fn live(&mut self, key: &str, now: Instant) -> Option<&String> {
        if self
            .keys
            .get(key)
            .is_some_and(|(_, exp)| exp.is_some_and(|e| e <= now))
        {
            self.keys.remove(key);
        }
        self.keys.get(key).map(|(v, _)| v)
    }
}

/// One process's store (tests; several in-process nodes share one through an `Arc`).
#[derive(Default)]
pub struct MemoryKv {
    data: Mutex<Data>,
    pushed: tokio::sync::Notify,
    /// While set, every operation fails as an unreachable Redis would (tests of the outage).
    down: std::sync::atomic::AtomicBool,
}

impl MemoryKv {
    /// Makes every operation fail (`true`) or work again: an outage, for tests.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data, Instant) -> T) -> Result<T, KvError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(KvError("connection refused (memory store set down)".into()));
        }
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&mut d, Instant::now()))
    }
}

#[async_trait]
impl Kv for MemoryKv {
    async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        self.with(|d, now| {
            if d.live(key, now).is_some() {
                return false;
            }
            d.keys.insert(key.into(), (value.into(), Some(now + ttl)));
            true
        })
    }

    async fn renew(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        self.with(|d, now| {
            if d.live(key, now).map(String::as_str) != Some(value) {
                return false;
            }
            d.keys.insert(key.into(), (value.into(), Some(now + ttl)));
            true
        })
    }

    async fn del_if(&self, key: &str, value: &str) -> Result<bool, KvError> {
        self.with(|d, now| {
            let held = d.live(key, now).map(String::as_str) == Some(value);
            if held {
                d.keys.remove(key);
            }
            held
        })
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), KvError> {
        self.with(|d, now| {
            d.keys
                .insert(key.into(), (value.into(), ttl.map(|t| now + t)));
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        self.with(|d, now| d.live(key, now).cloned())
    }

    async fn del(&self, key: &str) -> Result<(), KvError> {
        self.with(|d, _| {
            d.keys.remove(key);
        })
    }

    async fn hset(&self, hash: &str, field: &str, value: &str) -> Result<(), KvError> {
        self.with(|d, _| {
            let h = d.hashes.entry(hash.into()).or_default();
            h.insert(field.into(), value.into());
        })
    }

    async fn hdel(&self, hash: &str, field: &str) -> Result<(), KvError> {
        self.with(|d, _| {
            if let Some(h) = d.hashes.get_mut(hash) {
                h.remove(field);
            }
        })
    }

    async fn hget(&self, hash: &str, field: &str) -> Result<Option<String>, KvError> {
        self.with(|d, _| d.hashes.get(hash).and_then(|h| h.get(field)).cloned())
    }

    async fn hgetall(&self, hash: &str) -> Result<Vec<(String, String)>, KvError> {
        self.with(|d, _| {
            let h = d.hashes.get(hash);
            h.map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        })
    }

    async fn sadd(&self, set: &str, member: &str) -> Result<(), KvError> {
        self.with(|d, _| {
            d.sets.entry(set.into()).or_default().insert(member.into());
        })
    }

    async fn srem(&self, set: &str, member: &str) -> Result<(), KvError> {
        self.with(|d, _| {
            if let Some(s) = d.sets.get_mut(set) {
                s.remove(member);
            }
        })
    }

    async fn smembers(&self, set: &str) -> Result<Vec<String>, KvError> {
        self.with(|d, _| {
            let s = d.sets.get(set);
            s.map(|s| s.iter().cloned().collect()).unwrap_or_default()
        })
    }

    async fn push(&self, list: &str, value: &str) -> Result<(), KvError> {
        self.with(|d, _| {
            d.lists
                .entry(list.into())
                .or_default()
                .push_back(value.into());
        })?;
        self.pushed.notify_waiters();
        Ok(())
    }

    async fn pop(&self, list: &str, wait: Duration) -> Result<Option<String>, KvError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.with(|d, _| d.lists.get_mut(list).and_then(VecDeque::pop_front))?;
            if got.is_some() {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lease_is_taken_once_renewed_by_its_holder_and_expires() {
        let kv = MemoryKv::default();
        let ttl = Duration::from_millis(50);
        assert!(kv.set_nx("lease", "a", ttl).await.unwrap());
        assert!(!kv.set_nx("lease", "b", ttl).await.unwrap());
        assert!(!kv.renew("lease", "b", ttl).await.unwrap());
        assert!(kv.renew("lease", "a", ttl).await.unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(!kv.renew("lease", "a", ttl).await.unwrap(), "expired");
        assert!(kv.set_nx("lease", "b", ttl).await.unwrap());
        assert!(!kv.del_if("lease", "a").await.unwrap());
        assert!(kv.del_if("lease", "b").await.unwrap());
        assert_eq!(kv.get("lease").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_blocked_pop_wakes_on_a_push_and_times_out_on_none() {
        let kv = std::sync::Arc::new(MemoryKv::default());
        let k = kv.clone();
        let waiter = tokio::spawn(async move { k.pop("l", Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        kv.push("l", "one").await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap().as_deref(), Some("one"));
        let none = kv.pop("l", Duration::from_millis(20)).await.unwrap();
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn a_store_set_down_fails_every_operation_and_comes_back() {
        let kv = MemoryKv::default();
        kv.hset("h", "f", "v").await.unwrap();
        kv.set_down(true);
        assert!(kv.hget("h", "f").await.is_err());
        assert!(kv.pop("l", Duration::from_millis(1)).await.is_err());
        kv.set_down(false);
        assert_eq!(kv.hget("h", "f").await.unwrap().as_deref(), Some("v"));
        assert_eq!(kv.hgetall("h").await.unwrap().len(), 1);
    }
}
