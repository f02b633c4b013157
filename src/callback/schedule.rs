//! When the callback service looks at its store, and what a finished attempt becomes (sans-IO:
//! time is an argument).
//!
//! Every node polls the store for due work ([`Pacer`]): at once after something that may have
//! made a callback due (a request for now, a finished dial), else every [`POLL`]; each poll takes
//! over the callbacks whose node stopped renewing its lease and claims due ones
//! (`store::CallbackBackend::claim`). While it dials or has a call, it renews its leases every
//! third of [`lease_secs`](crate::config::CallbackSection::lease_secs).

use super::service::Outcome;
use super::store::{Callback, CallbackState};
use std::time::{Duration, Instant};

/// How often a node looks for due callbacks when nothing woke it.
pub const POLL: Duration = Duration::from_secs(1);

/// What is due at a timeout.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Claim due callbacks (and take over expired leases).
    pub claim: bool,
    /// Renew the leases of what this node holds.
    pub renew: bool,
}

/// The service's two deadlines: the next poll and the next lease renewal. Drive it with
/// [`Pacer::handle_timeout`] at [`Pacer::poll_timeout`], and [`Pacer::wake`] when work may be due.
#[derive(Debug)]
pub struct Pacer {
    renew_every: Duration,
    next_poll: Instant,
    next_renew: Instant,
}

impl Pacer {
    /// Polls at once; renews every third of `lease`.
    pub fn new(now: Instant, lease: Duration) -> Pacer {
        let renew_every = (lease / 3).max(Duration::from_millis(100));
        Pacer {
            renew_every,
            next_poll: now,
            next_renew: now + renew_every,
        }
    }

    /// Something may be due now (a request for now, a free dialling slot): poll at once.
    pub fn wake(&mut self, now: Instant) {
        self.next_poll = now;
    }

    /// The earliest deadline.
    pub fn poll_timeout(&self) -> Instant {
        self.next_poll.min(self.next_renew)
    }

    /// What is due at `now`; moves the deadlines on.
    pub fn handle_timeout(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        if now >= self.next_poll {
            due.claim = true;
            self.next_poll = now + POLL;
        }
        if now >= self.next_renew {
            due.renew = true;
            self.next_renew = now + self.renew_every;
        }
        due
    }
}

/// The retry rules: what `cb` becomes after an attempt ended with `outcome` at `now_ms` (unix
/// milliseconds). Busy, no answer and trunk errors are retried `retries` times, each
/// `retry_delay_secs` later (rounded up to the next second: never earlier); everything else is
/// final.
pub fn after_attempt(
    mut cb: Callback,
    outcome: Outcome,
    retries: u32,
    retry_delay_secs: u64,
    now_ms: u64,
) -> Callback {
    cb.reason = Some(outcome.as_str().into());
    if outcome.retryable() && cb.attempts <= retries {
        cb.state = CallbackState::Scheduled;
        cb.not_before = (now_ms + retry_delay_secs * 1000).div_ceil(1000);
    } else {
        cb.state = match outcome {
            Outcome::Completed => CallbackState::Completed,
            Outcome::Unconfirmed => CallbackState::Unconfirmed,
            _ => CallbackState::Failed,
        };
    }
    cb.updated = now_ms / 1000;
    cb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cb(attempts: u32) -> Callback {
        Callback {
            id: "cb-1".into(),
            number: "+15550100000".into(),
            context: Default::default(),
            verified: false,
            queue: "support".into(),
            site: None,
            not_before: 0,
            state: CallbackState::Dialing,
            attempts,
            reason: None,
            created: 0,
            updated: 0,
        }
    }

    #[test]
    fn the_pacer_polls_each_second_at_once_when_woken_and_renews_a_third_into_the_lease() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_secs(30));
        assert_eq!(p.poll_timeout(), t0);
        assert_eq!(
            p.handle_timeout(t0),
            Due {
                claim: true,
                renew: false
            }
        );
        assert_eq!(p.poll_timeout(), t0 + POLL);
        assert_eq!(
            p.handle_timeout(t0 + Duration::from_millis(500)),
            Due::default()
        );
        p.wake(t0 + Duration::from_millis(600));
        assert!(p.handle_timeout(t0 + Duration::from_millis(600)).claim);
        let renew_at = t0 + Duration::from_secs(10);
        let due = p.handle_timeout(renew_at);
        assert_eq!(
            due,
            Due {
                claim: true,
                renew: true
            }
        );
        assert_eq!(p.poll_timeout(), renew_at + POLL);
    }

    #[test]
    fn busy_is_retried_after_the_delay_never_early_and_fails_when_out_of_attempts() {
        let r = after_attempt(cb(1), Outcome::Busy, 1, 60, 1_000_500);
        assert_eq!(r.state, CallbackState::Scheduled);
        assert_eq!(r.not_before, 1_061, "60 s after 1000.5 s, rounded up");
        assert_eq!(r.reason.as_deref(), Some("busy"));
        let r = after_attempt(cb(2), Outcome::Busy, 1, 60, 1_000_000);
        assert_eq!(r.state, CallbackState::Failed);
        let r = after_attempt(cb(1), Outcome::Unconfirmed, 3, 60, 1_000_000);
        assert_eq!(r.state, CallbackState::Unconfirmed, "not retried");
        let r = after_attempt(cb(1), Outcome::InvalidNumber, 3, 60, 1_000_000);
        assert_eq!(r.state, CallbackState::Failed);
    }
}
