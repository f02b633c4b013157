//! Readiness, draining and shutdown (the mini-redis pattern: a broadcast token plus a completion count).
//!
//! `serving` → (SIGTERM) → `draining`: readiness fails, new calls are refused, calls in progress continue
//! for the grace period → `stopping`: the stop token fires, every task winds down.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Shared process state; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ready: AtomicBool,
    draining: AtomicBool,
    /// The cluster's shared state is unreachable (a single node never sets it).
    shared_down: AtomicBool,
    calls: AtomicUsize,
    /// The most calls at once (0: no limit).
    max_calls: AtomicUsize,
    idle: tokio::sync::Notify,
    end_calls: CancellationToken,
    stop: CancellationToken,
}

/// Why a new call was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallRefused {
    /// The gateway is shutting down.
    #[error("the gateway is draining")]
    Draining,
    /// At the configured limit of calls at once.
    #[error("at the limit of {0} calls at once")]
    Full(usize),
    /// The cluster's shared state (Redis) is unreachable: no agent could be found for it.
    #[error("the cluster's shared state is unreachable")]
    SharedStateDown,
}

impl CallRefused {
    /// Stable reason (metrics, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            CallRefused::Draining => "draining",
            CallRefused::Full(_) => "overload",
            CallRefused::SharedStateDown => "shared_state_down",
        }
    }
}

/// Held by every call in progress; dropping it ends the call's claim on the grace period.
#[derive(Debug)]
pub struct CallGuard {
    inner: Arc<Inner>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.inner.calls.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// A new lifecycle, not yet ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks start-up complete (listeners bound).
    pub fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Release);
    }

    /// True while serving and not draining (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// True once shutdown has begun: refuse new calls.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// Registers a new call, or `None` while draining or at the call limit (the caller answers
    /// 503 / `busy`); [`Lifecycle::try_start_call`] says which.
    pub fn start_call(&self) -> Option<CallGuard> {
        self.try_start_call().ok()
    }

    /// Registers a new call, or says why not.
    pub fn try_start_call(&self) -> Result<CallGuard, CallRefused> {
        if self.is_draining() {
            return Err(CallRefused::Draining);
        }
        if self.inner.shared_down.load(Ordering::Acquire) {
            return Err(CallRefused::SharedStateDown);
        }
        let max = self.inner.max_calls.load(Ordering::Acquire);
        let before = self.inner.calls.fetch_add(1, Ordering::AcqRel);
        let guard = CallGuard {
            inner: self.inner.clone(),
        };
        if max > 0 && before >= max {
            drop(guard);
            return Err(CallRefused::Full(max));
        }
        Ok(guard)
    }

    /// The cluster's shared state became unreachable (`true`: new calls are refused) or is back.
    pub fn set_shared_state_down(&self, down: bool) {
        self.inner.shared_down.store(down, Ordering::Release);
    }

    /// Sets the most calls at once (0: no limit). Calls in progress are never touched.
    pub fn set_max_calls(&self, max: usize) {
        self.inner.max_calls.store(max, Ordering::Release);
    }

    /// The call limit (0: none).
    pub fn max_calls(&self) -> usize {
        self.inner.max_calls.load(Ordering::Acquire)
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.inner.calls.load(Ordering::Acquire)
    }

    /// Fires when everything must stop now.
    pub fn stop_token(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// Fires when the grace period is over: calls still up hang up (BYE) now.
    pub fn end_calls_token(&self) -> CancellationToken {
        self.inner.end_calls.clone()
    }

    /// Drains: stop taking calls, wait up to `grace` for calls in progress, then tell the remaining
    /// calls to hang up (with a few seconds for their BYEs) and fire the stop token.
    /// Returns the number of calls still up when the grace period ended.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.inner.draining.store(true, Ordering::Release);
        self.wait_idle(grace).await;
        let left = self.active_calls();
        if left > 0 {
            self.inner.end_calls.cancel();
            self.wait_idle(Duration::from_secs(3)).await;
        }
        self.inner.stop.cancel();
        left
    }

    async fn wait_idle(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let idle = self.inner.idle.notified();
            if self.active_calls() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
    }
}

/// Sleeps until a sans-IO core's next deadline (`poll_timeout`), or forever when it has none: the
/// one timer of a task's `select!`.
pub async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_refuses_new_calls_and_waits_for_running_ones() {
        let life = Lifecycle::new();
        life.set_ready();
        let call = life.start_call().expect("serving");
        let l2 = life.clone();
        let drain = tokio::spawn(async move { l2.drain(Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!life.is_ready());
        assert!(life.start_call().is_none(), "no new calls while draining");
        assert!(
            !life.stop_token().is_cancelled(),
            "running call keeps the process up"
        );
        drop(call);
        assert_eq!(drain.await.unwrap(), 0);
        assert!(life.stop_token().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn grace_period_ends_stuck_calls() {
        let life = Lifecycle::new();
        let _stuck = life.start_call().unwrap();
        let left = life.drain(Duration::from_secs(30)).await;
        assert_eq!(left, 1);
        assert!(life.stop_token().is_cancelled());
    }

    #[test]
    fn the_call_limit_refuses_new_calls_and_frees_with_them() {
        let life = Lifecycle::new();
        life.set_max_calls(2);
        let a = life.try_start_call().unwrap();
        let _b = life.try_start_call().unwrap();
        assert_eq!(life.try_start_call().unwrap_err(), CallRefused::Full(2));
        assert_eq!(life.active_calls(), 2, "a refused call leaves no trace");
        drop(a);
        assert!(life.try_start_call().is_ok());
    }
}
