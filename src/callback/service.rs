//! The callback service: one task owns the fraud guard, the open requests and the schedule; the
//! store keeps every change. Requests come from the widget and the REST API through
//! [`CallbackHandle`]; each due callback is dialled by a [`Dialer`] (the trunk, in production) on a
//! task of its own, which reports progress and the outcome back. Whoever asked (a widget socket)
//! can watch: it receives `callback` messages, and the call's own `state` messages once answered.

use super::guard::{FraudGuard, GuardConfig, Refusal, Request, DEFAULT_DENY};
use super::number::{normalize, NumberError, NumberPlan};
use super::schedule::{after_attempt, Pacer};
use super::store::{Callback, CallbackState, Claim, Store, StoreError};
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
    Store(StoreError),
    /// The database cannot be reached (PostgreSQL down): nothing was stored.
    #[error("call-back is not available: {0}")]
    StoreUnavailable(StoreError),
}

impl From<StoreError> for CallbackError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            CallbackError::StoreUnavailable(e)
        } else {
            CallbackError::Store(e)
        }
    }
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
            CallbackError::StoreUnavailable(_) => "store_unavailable",
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

    /// Worth another attempt later.
    pub(crate) fn retryable(self) -> bool {
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

    /// Whether calls can be placed now (a draining node claims no callbacks: another node will).
    fn can_dial(&self) -> bool {
        true
    }
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
    /// This node, as the `owner` of what it claims.
    owner: String,
    /// The callbacks this node claimed and has not finished (dialling, in a call).
    mine: HashMap<String, Callback>,
    watchers: HashMap<String, Vec<mpsc::UnboundedSender<ServerMessage>>>,
    /// Dial tasks running (a confirmed call keeps its slot until it is over).
    active: usize,
    pacer: Pacer,
    /// This node's callbacks interrupted by its previous run are back to `scheduled`.
    recovered: bool,
    /// The store failed at the last poll (logged once until it works again).
    store_down: bool,
    tx: mpsc::UnboundedSender<Command>,
}

/// Starts the service for node `node` and serves until `stop`. Nothing is read yet: the first
/// poll returns this node's callbacks interrupted by a restart to `scheduled`, then claims what
/// is due (on whichever node polls first).
pub fn start(
    cfg: CallbackSection,
    queues: Vec<String>,
    node: u16,
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
    let default_queue = cfg
        .queue
        .clone()
        .or_else(|| queues.first().cloned())
        .unwrap_or_default();
    let pacer = Pacer::new(Instant::now(), Duration::from_secs(cfg.lease_secs));
    let svc = Service {
        cfg,
        queues,
        default_queue,
        plan,
        guard,
        store: store.clone(),
        dialer,
        owner: node.to_string(),
        mine: HashMap::new(),
        watchers: HashMap::new(),
        active: 0,
        pacer,
        recovered: false,
        store_down: false,
        tx: tx.clone(),
    };
    tokio::spawn(svc.run(rx, stop));
    Ok(CallbackHandle { tx, store })
}

impl Service {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>, stop: CancellationToken) {
        let mut sweep = tokio::time::interval(Duration::from_secs(60));
        loop {
            let due = self.pacer.handle_timeout(Instant::now());
            if due.renew {
                self.renew();
            }
            if due.claim {
                self.claim();
            }
            let wait = crate::lifecycle::sleep_until(Some(self.pacer.poll_timeout()));
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
                let r = match self.store.cancel(&id, unix_now()) {
                    Ok(Some(cb)) => {
                        info!(callback = %id, "callback cancelled");
                        self.notify(&id, &cb, None);
                        self.watchers.remove(&id);
                        Ok(cb)
                    }
                    Ok(None) => Err(CallbackError::NotFound(id)),
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(r);
            }
            Command::Progress(id, p) => self.progress(id, p),
            Command::Finished(id, outcome) => {
                self.active = self.active.saturating_sub(1);
                // A dialling slot is free.
                self.pacer.wake(Instant::now());
                let Some(cb) = self.mine.get(&id).cloned() else {
                    return; // completed earlier
                };
                let now_ms = crate::records::now_ms().max(0) as u64;
                let retries = self.cfg.retries;
                let cb = after_attempt(cb, outcome, retries, self.cfg.retry_delay_secs, now_ms);
                if cb.state == CallbackState::Scheduled {
                    info!(callback = %id, reason = outcome.as_str(), attempt = cb.attempts, retry_at = cb.not_before, "callback attempt failed; retrying later");
                } else {
                    info!(callback = %id, state = cb.state.as_str(), reason = outcome.as_str(), "callback finished");
                }
                self.close(cb);
            }
        }
    }

    fn progress(&mut self, id: String, p: Progress) {
        let Some(mut cb) = self.mine.get(&id).cloned() else {
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
        let shown = number.clone();
        let stored = move |e: StoreError| {
            warn!(number = %shown, error = %e, "callback refused: the store failed");
            CallbackError::from(e)
        };
        if let Some(existing) = self.store.open_for_number(&number).map_err(&stored)? {
            info!(callback = %existing.id, %number, "duplicate callback request joined the open one");
            return Ok(Accepted {
                callback: existing,
                duplicate: true,
            });
        }
        let pending = self.store.count_open().map_err(&stored)?;
        self.guard
            .check(
                Instant::now(),
                Request {
                    number: &number,
                    ip: req.ip,
                    site: req.site.as_deref(),
                    pending,
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
        self.store.insert(&cb).map_err(&stored)?;
        info!(callback = %cb.id, number = %cb.number, not_before = cb.not_before, "callback scheduled");
        if cb.not_before <= now {
            self.pacer.wake(Instant::now());
        }
        Ok(Accepted {
            callback: cb,
            duplicate: false,
        })
    }

    /// A poll: this node's interrupted callbacks back to `scheduled` (once), expired leases taken
    /// over, and due callbacks claimed and dialled, up to the free slots.
    fn claim(&mut self) {
        let now = unix_now();
        if !self.recovered {
            match self.store.recover(&self.owner, now) {
                Ok(cbs) => {
                    self.recovered = true;
                    for cb in cbs {
                        info!(callback = %cb.id, not_before = cb.not_before, "callback restored");
                    }
                }
                Err(e) => return self.store_failed(e),
            }
        }
        let claim = Claim {
            owner: self.owner.clone(),
            now,
            lease_until: now + self.cfg.lease_secs,
            limit: if self.dialer.can_dial() {
                self.cfg.max_concurrent.saturating_sub(self.active)
            } else {
                0
            },
            retries: self.cfg.retries,
            retry_delay_secs: self.cfg.retry_delay_secs,
        };
        let claimed = match self.store.claim(&claim) {
            Ok(c) => c,
            Err(e) => return self.store_failed(e),
        };
        if self.store_down {
            self.store_down = false;
            info!("callback store reachable again");
        }
        for cb in claimed.taken_over {
            warn!(callback = %cb.id, state = cb.state.as_str(), not_before = cb.not_before, "callback taken over: its node stopped renewing the lease (it died mid-attempt)");
        }
        for cb in claimed.dial {
            self.dial(cb);
        }
    }

    fn store_failed(&mut self, e: StoreError) {
        if !self.store_down {
            self.store_down = true;
            warn!(error = %e, "callback store unavailable: no callbacks are placed until it is back");
        }
    }

    fn renew(&mut self) {
        if self.mine.is_empty() {
            return;
        }
        if let Err(e) = self
            .store
            .renew(&self.owner, unix_now() + self.cfg.lease_secs)
        {
            warn!(error = %e, "callback leases not renewed");
        }
    }

    /// Dials a claimed callback on a task of its own.
    fn dial(&mut self, cb: Callback) {
        self.active += 1;
        info!(callback = %cb.id, number = %cb.number, attempt = cb.attempts, "dialling callback");
        self.notify(&cb.id.clone(), &cb, None);
        self.mine.insert(cb.id.clone(), cb.clone());
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

    /// Stores and announces a change of a callback this node holds (its lease renewed).
    fn save(&mut self, mut cb: Callback) {
        cb.updated = unix_now();
        let lease = cb.updated + self.cfg.lease_secs;
        self.write_owned(&cb, Some(lease));
        self.notify(&cb.id.clone(), &cb, None);
        self.mine.insert(cb.id.clone(), cb);
    }

    /// Stores and announces the end of this node's hold on a callback (final, or scheduled for
    /// a retry: any node may claim it then).
    fn close(&mut self, cb: Callback) {
        self.write_owned(&cb, None);
        self.notify(&cb.id.clone(), &cb, None);
        self.mine.remove(&cb.id);
        if !cb.state.is_open() {
            self.watchers.remove(&cb.id);
        }
    }

    fn write_owned(&self, cb: &Callback, lease: Option<u64>) {
        match self.store.save_owned(cb, &self.owner, lease) {
            Ok(true) => {}
            Ok(false) => {
                warn!(callback = %cb.id, state = cb.state.as_str(), "callback not saved: another node took it over (this node's lease ran out)")
            }
            Err(e) => warn!(callback = %cb.id, error = %e, "callback not saved"),
        }
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
