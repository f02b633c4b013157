//! What the records writer holds while its database is unreachable (PostgreSQL down), sans-IO:
//! the latest milestone of each record (a record is written whole, so a later milestone
//! replaces an earlier one), oldest record first, at most [`BACKLOG_LIMIT`] records; past that the
//! oldest is dropped and counted. It also says when to try the database again (time is passed in).

use super::cdr::CallRecord;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Records held in memory during an outage, at most (about 40 MB of the largest records).
pub const BACKLOG_LIMIT: usize = 10_000;
/// How often the writer tries the database again during an outage.
pub const RETRY: Duration = Duration::from_secs(1);

/// The held records and the outage's bookkeeping. Drive it: [`Backlog::handle_outage`] when a
/// write fails as unreachable, [`Backlog::push`] for each write while [`Backlog::in_outage`],
/// and at [`Backlog::poll_timeout`] try [`Backlog::front`] again: [`Backlog::handle_written`] on
/// success (repeat until empty), [`Backlog::handle_outage`] on failure.
#[derive(Debug)]
pub struct Backlog {
    limit: usize,
    order: VecDeque<String>,
    latest: HashMap<String, (Box<CallRecord>, &'static str)>,
    retry_at: Option<Instant>,
    /// Records dropped because the backlog was full, in this outage.
    dropped: u64,
    written: u64,
}

/// What happened to a record handed to [`Backlog::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    /// Held (a new record, or a later milestone replacing the held one).
    Queued,
    /// Held, and the oldest held record was dropped to make room (count it).
    DroppedOldest(String),
}

/// What changed when the outage ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Records written from the backlog.
    pub written: u64,
    /// Records dropped in the outage.
    pub dropped: u64,
}

impl Backlog {
    /// An empty backlog holding at most `limit` records.
    pub fn new(limit: usize) -> Backlog {
        Backlog {
            limit: limit.max(1),
            order: VecDeque::new(),
            latest: HashMap::new(),
            retry_at: None,
            dropped: 0,
            written: 0,
        }
    }

    /// The database is unreachable (a write failed so): returns `true` when this starts an outage
    /// (log it once); the next try is [`RETRY`] from `now`.
    pub fn handle_outage(&mut self, now: Instant) -> bool {
        let started = self.retry_at.is_none();
        self.retry_at = Some(now + RETRY);
        started
    }

    /// In an outage: new writes go to the backlog, behind the held ones.
    pub fn in_outage(&self) -> bool {
        self.retry_at.is_some()
    }

    /// When to try the database again.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether a retry is due at `now`.
    pub fn retry_due(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now >= t)
    }

    /// Holds `record` at milestone `event`.
    pub fn push(&mut self, record: Box<CallRecord>, event: &'static str) -> Held {
        let id = record.id.clone();
        if let Some(slot) = self.latest.get_mut(&id) {
            *slot = (record, event);
            return Held::Queued;
        }
        let mut held = Held::Queued;
        if self.order.len() >= self.limit {
            if let Some(old) = self.order.pop_front() {
                self.latest.remove(&old);
                self.dropped += 1;
                held = Held::DroppedOldest(old);
            }
        }
        self.order.push_back(id.clone());
        self.latest.insert(id, (record, event));
        held
    }

    /// The oldest held record, to write next.
    pub fn front(&self) -> Option<&(Box<CallRecord>, &'static str)> {
        self.order.front().and_then(|id| self.latest.get(id))
    }

    /// The front record was written; when the backlog is empty the outage is over and this says
    /// how it went (log it once).
    pub fn handle_written(&mut self) -> Option<Recovered> {
        if let Some(id) = self.order.pop_front() {
            self.latest.remove(&id);
            self.written += 1;
        }
        if !self.order.is_empty() {
            return None;
        }
        self.retry_at.take()?;
        let r = Recovered {
            written: self.written,
            dropped: self.dropped,
        };
        self.written = 0;
        self.dropped = 0;
        Some(r)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn rec(call: u64, at: i64) -> Box<CallRecord> {
        Box::new(CallRecord::new(call, "sip", Map::new(), at))
    }

    #[test]
    fn an_outage_holds_the_latest_milestone_per_record_and_retries_each_second() {
        let t0 = Instant::now();
        let mut b = Backlog::new(100);
        assert!(!b.in_outage());
        assert!(b.handle_outage(t0), "the first failure starts the outage");
        assert!(!b.handle_outage(t0), "logged once");
        assert_eq!(b.poll_timeout(), Some(t0 + RETRY));
        let mut one = rec(1, 1_000);
        b.push(one.clone(), "call.started");
        b.push(rec(2, 2_000), "call.started");
        one.queued("support", 1_500);
        assert_eq!(b.push(one, "call.queued"), Held::Queued);
        assert_eq!(b.len(), 2, "one entry per record");
        let (first, event) = b.front().unwrap();
        assert_eq!((first.call, *event), (1, "call.queued"));
        assert_eq!(first.queued_ms, Some(1_500), "the latest milestone");

        assert!(!b.retry_due(t0 + Duration::from_millis(999)));
        assert!(b.retry_due(t0 + RETRY));
        // Still down at the retry: the next one a second later.
        b.handle_outage(t0 + RETRY);
        assert_eq!(b.poll_timeout(), Some(t0 + RETRY * 2));
        // Back: both written, in order, then the outage is over.
        assert_eq!(b.handle_written(), None);
        assert_eq!(b.front().unwrap().0.call, 2);
        assert_eq!(
            b.handle_written(),
            Some(Recovered {
                written: 2,
                dropped: 0
            })
        );
        assert!(!b.in_outage() && b.is_empty() && b.poll_timeout().is_none());
    }

    #[test]
    fn a_full_backlog_drops_the_oldest_record_and_counts_it() {
        let t0 = Instant::now();
        let mut b = Backlog::new(2);
        b.handle_outage(t0);
        let first = rec(1, 1);
        b.push(first.clone(), "call.started");
        b.push(rec(2, 2), "call.started");
        let third = rec(3, 3);
        assert_eq!(
            b.push(third.clone(), "call.started"),
            Held::DroppedOldest(first.id)
        );
        // A later milestone of a held record takes no room.
        assert_eq!(b.push(third, "call.ended"), Held::Queued);
        assert_eq!(b.len(), 2);
        assert_eq!(b.front().unwrap().0.call, 2);
        b.handle_written();
        assert_eq!(
            b.handle_written(),
            Some(Recovered {
                written: 2,
                dropped: 1
            })
        );
    }
}
