//! The callback service: one task owns the fraud guard, the open requests and the schedule; the
//! store keeps every change. Requests come from the widget and the REST API through
//! [`CallbackHandle`]; each due callback is dialled by a [`Dialer`] (the trunk, in production) on a
//! task of its own, which reports progress and the outcome back. Whoever asked (a widget socket)
//! can watch: it receives `callback` messages, and the call's own `state` messages once answered.

use super::guard::{FraudGuard, GuardConfig, Refusal, Request, DEFAULT_DENY};
use super::number::{normalize, NumberError, NumberPlan};
use super::store::{Callback, CallbackState, Store, StoreError};
use crate::config::CallbackSection;
use crate::widget::protocol::ServerMessage;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A new request, as the widget or the API hands it over.
#[derive(Debug, Clone)]
pub struct NewCallback {
    /// The number as typed.
    pub number: String,
    /// Context (signature fields already checked and removed).
    pub context: Map<String, Value>,
    /// Whether the context's signature checked out.
    pub verified: bool,
    /// The queue asked for.
    pub queue: Option<String>,
    /// Site key.
    pub site: Option<String>,
    /// The visitor's address (none for the API).
    pub ip: Option<IpAddr>,
    /// Not before (unix seconds).
    pub not_before: Option<u64>,
}

/// Why a request was not accepted; `code()` is stable.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Not a phone number.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// The fraud guard said no.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A queue that does not exist.
    #[error("no queue named {0:?}")]
    UnknownQueue(String),
    /// Callbacks are off, or the gateway is stopping.
    #[error("call-back is not available")]
    Unavailable,
    /// No such callback (or no longer open).
    #[error("no open callback {0:?}")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallbackError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CallbackError::Number(_) => "invalid_number",
            CallbackError::Refused(r) => r.code(),
            CallbackError::UnknownQueue(_) => "unknown_queue",
            CallbackError::Unavailable => "callback_unavailable",
            CallbackError::NotFound(_) => "not_found",
            CallbackError::Store(_) => "internal",
        }
    }
}

/// An accepted request.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The callback (the existing one, for a duplicate).
    pub callback: Callback,
    /// The number already had an open callback: this request joined it.
    pub duplicate: bool,
}

/// How far a dial has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The customer's phone rings (180/183).
    Ringing,
    /// The customer answered; the greeting plays.
    Answered,
    /// The customer pressed the digit and went into the queue.
    Confirmed,
}

/// How a dial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Confirmed and queued (the call may go on; the callback is done).
    Completed,
    /// Answered, no digit: hung up.
    Unconfirmed,
    /// 486/600.
    Busy,
    /// Rang out (our timeout, 408, 480, 487).
    NoAnswer,
    /// 603 or another refusal.
    Rejected,
    /// 404/484/604.
    InvalidNumber,
    /// 5xx, a transport failure, or no media port.
    TrunkError,
}

impl Outcome {
    /// The stable reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Unconfirmed => "unconfirmed",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Rejected => "rejected",
            Outcome::InvalidNumber => "invalid_number",
            Outcome::TrunkError => "trunk_error",
        }
    }

    /// From the final response to the INVITE.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            486 | 600 => Outcome::Busy,
            408 | 480 | 487 => Outcome::NoAnswer,
            404 | 484 | 604 => Outcome::InvalidNumber,
            500..=599 => Outcome::TrunkError,
            _ => Outcome::Rejected,
        }
    }

    fn retryable(self) -> bool {
        matches!(
            self,
            Outcome::Busy | Outcome::NoAnswer | Outcome::TrunkError
        )
    }
}

/// Places one callback's call. `progress` is told how far it got; the return value is how it
/// ended. It returns when the call is over (or never got through).
#[async_trait::async_trait]
pub trait Dialer: Send + Sync + 'static {
    /// Dials `cb`; call states go to `widget` once answered.
    async fn dial(
        &self,
        cb: Callback,
        progress: mpsc::UnboundedSender<Progress>,
        widget: Option<mpsc::UnboundedSender<ServerMessage>>,
    ) -> Outcome;
}

enum Command {
    Request(
        NewCallback,
        Option<mpsc::UnboundedSender<ServerMessage>>,
        oneshot::Sender<Result<Accepted, CallbackError>>,
    ),
    Cancel(String, oneshot::Sender<Result<Callback, CallbackError>>),
    Progress(String, Progress),
    Finished(String, Outcome),
}

/// The way in to the callback service.
#[derive(Clone)]
pub struct CallbackHandle {
    tx: mpsc::UnboundedSender<Command>,
    /// Reads (REST `GET`) go straight to the store.
    pub store: Arc<Store>,
}

impl CallbackHandle {
    /// Checks, stores and schedules a request; `watcher` receives its progress.
    pub async fn request(
        &self,
        req: NewCallback,
        watcher: Option<mpsc::UnboundedSender<ServerMessage>>,
    ) -> Result<Accepted, CallbackError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Request(req, watcher, tx))
            .map_err(|_| CallbackError::Unavailable)?;
        rx.await.unwrap_or(Err(CallbackError::Unavailable))
    }

    /// Cancels an open callback that is not yet in a call.
    pub async fn cancel(&self, id: &str) -> Result<Callback, CallbackError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Cancel(id.into(), tx))
            .map_err(|_| CallbackError::Unavailable)?;
        rx.await.unwrap_or(Err(CallbackError::Unavailable))
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Service {
    cfg: CallbackSection,
    queues: Vec<String>,
    default_queue: String,
    plan: NumberPlan,
    guard: FraudGuard,
    store: Arc<Store>,
    dialer: Arc<dyn Dialer>,
    open: HashMap<String, Callback>,
    watchers: HashMap<String, Vec<mpsc::UnboundedSender<ServerMessage>>>,
    active: usize,
    tx: mpsc::UnboundedSender<Command>,
}

/// Starts the service: reopens the store's open requests (a callback interrupted by a restart is
/// scheduled again) and serves until `stop`.
pub fn start(
    cfg: CallbackSection,
    queues: Vec<String>,
    store: Arc<Store>,
    dialer: Arc<dyn Dialer>,
    stop: CancellationToken,
) -> Result<CallbackHandle, StoreError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let plan = cfg.plan();
    let allow = if cfg.allow.is_empty() {
        vec![format!("+{}", cfg.country_code)]
    } else {
        cfg.allow.clone()
    };
    let deny = DEFAULT_DENY
        .iter()
        .map(|s| s.to_string())
        .chain(cfg.deny.iter().cloned())
        .collect();
    let guard = FraudGuard::new(GuardConfig {
        allow,
        deny,
        per_ip_per_hour: cfg.per_ip_per_hour,
        per_number_per_hour: cfg.per_number_per_hour,
        per_site_per_hour: cfg.per_site_per_hour,
        max_pending: cfg.max_pending,
    });
    let mut open = HashMap::new();
    let now = unix_now();
    for mut cb in store.open_requests()? {
        if cb.state != CallbackState::Scheduled {
            // Dialling or in a call when the gateway stopped: that attempt is lost.
            cb.state = CallbackState::Scheduled;
            cb.reason = Some("interrupted".into());
            cb.updated = now;
            store.update(&cb)?;
        }
        info!(callback = %cb.id, not_before = cb.not_before, "callback restored");
        open.insert(cb.id.clone(), cb);
    }
    let default_queue = cfg
        .queue
        .clone()
        .or_else(|| queues.first().cloned())
        .unwrap_or_default();
    let svc = Service {
        cfg,
        queues,
        default_queue,
        plan,
        guard,
        store: store.clone(),
        dialer,
        open,
        watchers: HashMap::new(),
        active: 0,
        tx: tx.clone(),
    };
    tokio::spawn(svc.run(rx, stop));
    Ok(CallbackHandle { tx, store })
}

impl Service {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>, stop: CancellationToken) {
        let mut sweep = tokio::time::interval(Duration::from_secs(60));
        loop {
            self.dispatch_due();
            let next = self.next_due();
            let wait = crate::lifecycle::sleep_until(next);
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(c) => self.handle(c),
                    None => break,
                },
                _ = wait => {}
                _ = sweep.tick() => self.guard.sweep(Instant::now()),
                _ = stop.cancelled() => break,
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Request(req, watcher, reply) => {
                let r = self.accept(req);
                if let (Ok(a), Some(w)) = (&r, watcher) {
                    let _ = w.send(message(&a.callback));
                    self.watchers
                        .entry(a.callback.id.clone())
                        .or_default()
                        .push(w);
                }
                let _ = reply.send(r);
            }
            Command::Cancel(id, reply) => {
                let r = match self.open.get(&id) {
                    Some(cb) if cb.state == CallbackState::Scheduled => {
                        let mut cb = cb.clone();
                        cb.state = CallbackState::Cancelled;
                        self.close(cb.clone());
                        Ok(cb)
                    }
                    _ => Err(CallbackError::NotFound(id)),
                };
                let _ = reply.send(r);
            }
            Command::Progress(id, p) => {
                let Some(mut cb) = self.open.get(&id).cloned() else {
                    return;
                };
                match p {
                    Progress::Ringing => self.notify(&id, &cb, Some("ringing")),
                    Progress::Answered => {
                        cb.state = CallbackState::InCall;
                        self.save(cb);
                    }
                    Progress::Confirmed => {
                        cb.state = CallbackState::Completed;
                        cb.reason = None;
                        info!(callback = %id, "callback confirmed: customer queued");
                        self.close(cb);
                    }
                }
            }
            Command::Finished(id, outcome) => {
                self.active = self.active.saturating_sub(1);
                let Some(mut cb) = self.open.get(&id).cloned() else {
                    return; // completed earlier
                };
                cb.reason = Some(outcome.as_str().into());
                if outcome.retryable() && cb.attempts <= self.cfg.retries {
                    cb.state = CallbackState::Scheduled;
                    cb.not_before = unix_now() + self.cfg.retry_delay_secs;
                    info!(callback = %id, reason = outcome.as_str(), attempt = cb.attempts, retry_at = cb.not_before, "callback attempt failed; retrying later");
                    self.save(cb);
                } else {
                    cb.state = match outcome {
                        Outcome::Completed => CallbackState::Completed,
                        Outcome::Unconfirmed => CallbackState::Unconfirmed,
                        _ => CallbackState::Failed,
                    };
                    info!(callback = %id, state = cb.state.as_str(), reason = outcome.as_str(), "callback finished");
                    self.close(cb);
                }
            }
        }
    }

    fn accept(&mut self, req: NewCallback) -> Result<Accepted, CallbackError> {
        let number = normalize(&req.number, &self.plan).inspect_err(|e| {
            info!(ip = ?req.ip, error = %e, "callback refused: not a number");
        })?;
        let queue = req
            .queue
            .clone()
            .unwrap_or_else(|| self.default_queue.clone());
        if !self.queues.contains(&queue) {
            return Err(CallbackError::UnknownQueue(queue));
        }
        if let Some(existing) = self.open.values().find(|c| c.number == number) {
            info!(callback = %existing.id, %number, "duplicate callback request joined the open one");
            return Ok(Accepted {
                callback: existing.clone(),
                duplicate: true,
            });
        }
        self.guard
            .check(
                Instant::now(),
                Request {
                    number: &number,
                    ip: req.ip,
                    site: req.site.as_deref(),
                    pending: self.open.len(),
                },
            )
            .inspect_err(|r| {
                warn!(%number, ip = ?req.ip, site = ?req.site, code = r.code(), reason = %r, "callback refused");
            })?;
        let now = unix_now();
        let cb = Callback {
            id: format!("cb-{:016x}", rand::random::<u64>()),
            number,
            context: req.context,
            verified: req.verified,
            queue,
            site: req.site,
            not_before: req.not_before.unwrap_or(now),
            state: CallbackState::Scheduled,
            attempts: 0,
            reason: None,
            created: now,
            updated: now,
        };
        self.store.insert(&cb)?;
        info!(callback = %cb.id, number = %cb.number, not_before = cb.not_before, "callback scheduled");
        self.open.insert(cb.id.clone(), cb.clone());
        Ok(Accepted {
            callback: cb,
            duplicate: false,
        })
    }

    fn next_due(&self) -> Option<Instant> {
        if self.active >= self.cfg.max_concurrent {
            return None;
        }
        let now = unix_now();
        self.open
            .values()
            .filter(|c| c.state == CallbackState::Scheduled)
            .map(|c| c.not_before)
            .min()
            .map(|t| Instant::now() + Duration::from_secs(t.saturating_sub(now)))
    }

    fn dispatch_due(&mut self) {
        let now = unix_now();
        let mut due: Vec<Callback> = self
            .open
            .values()
            .filter(|c| c.state == CallbackState::Scheduled && c.not_before <= now)
            .cloned()
            .collect();
        due.sort_by_key(|c| (c.not_before, c.created));
        for mut cb in due {
            if self.active >= self.cfg.max_concurrent {
                break;
            }
            self.active += 1;
            cb.state = CallbackState::Dialing;
            cb.attempts += 1;
            info!(callback = %cb.id, number = %cb.number, attempt = cb.attempts, "dialling callback");
            self.save(cb.clone());
            let widget = self.watchers.get(&cb.id).and_then(|w| w.first().cloned());
            let dialer = self.dialer.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let id = cb.id.clone();
                let (ptx, mut prx) = mpsc::unbounded_channel();
                let fwd_tx = tx.clone();
                let fwd_id = id.clone();
                let forward = tokio::spawn(async move {
                    while let Some(p) = prx.recv().await {
                        let _ = fwd_tx.send(Command::Progress(fwd_id.clone(), p));
                    }
                });
                let outcome = dialer.dial(cb, ptx, widget).await;
                let _ = forward.await;
                let _ = tx.send(Command::Finished(id, outcome));
            });
        }
    }

    /// Stores and announces a change of an open callback.
    fn save(&mut self, mut cb: Callback) {
        cb.updated = unix_now();
        if let Err(e) = self.store.update(&cb) {
            warn!(callback = %cb.id, error = %e, "callback not saved");
        }
        self.notify(&cb.id.clone(), &cb, None);
        self.open.insert(cb.id.clone(), cb);
    }

    /// Stores and announces a final state; forgets the callback.
    fn close(&mut self, mut cb: Callback) {
        cb.updated = unix_now();
        if let Err(e) = self.store.update(&cb) {
            warn!(callback = %cb.id, error = %e, "callback not saved");
        }
        self.notify(&cb.id.clone(), &cb, None);
        self.open.remove(&cb.id);
        self.watchers.remove(&cb.id);
    }

    fn notify(&mut self, id: &str, cb: &Callback, state: Option<&str>) {
        let Some(ws) = self.watchers.get_mut(id) else {
            return;
        };
        let mut m = message(cb);
        if let (ServerMessage::Callback { state: s, .. }, Some(st)) = (&mut m, state) {
            *s = st.into();
        }
        ws.retain(|w| w.send(m.clone()).is_ok());
    }
}

/// The widget message for a callback's current state.
pub fn message(cb: &Callback) -> ServerMessage {
    ServerMessage::Callback {
        id: cb.id.clone(),
        state: cb.state.as_str().into(),
        reason: cb.reason.clone(),
        not_before: (cb.state == CallbackState::Scheduled).then_some(cb.not_before),
    }
}
