//! The callback service over fake and shared stores: nothing is acknowledged that was not stored,
//! and two nodes on one store dial a due callback once.

use super::service::{start, CallbackHandle, Dialer, NewCallback, Outcome, Progress};
use super::sqlite::SqliteCallbacks;
use super::store::{Callback, CallbackBackend, CallbackState, Claim, Claimed, Store, StoreError};
use crate::config::CallbackSection;
use crate::widget::protocol::ServerMessage;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A SQLite store that can be switched off, as PostgreSQL going away.
struct Switchable {
    inner: SqliteCallbacks,
    down: Arc<AtomicBool>,
}

impl Switchable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            let e: StoreError = crate::storage::pg::PgError {
                unavailable: true,
                message: "postgresql: connection refused".into(),
            }
            .into();
            return Err(e);
        }
        Ok(())
    }
}

impl CallbackBackend for Switchable {
    fn insert(&self, cb: &Callback) -> Result<(), StoreError> {
        self.check()?;
        self.inner.insert(cb)
    }
    fn update(&self, cb: &Callback) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update(cb)
    }
    fn get(&self, id: &str) -> Result<Option<Callback>, StoreError> {
        self.check()?;
        self.inner.get(id)
    }
    fn open_requests(&self) -> Result<Vec<Callback>, StoreError> {
        self.check()?;
        self.inner.open_requests()
    }
    fn list(&self, state: Option<&str>, limit: usize) -> Result<Vec<Callback>, StoreError> {
        self.check()?;
        self.inner.list(state, limit)
    }
    fn open_for_number(&self, number: &str) -> Result<Option<Callback>, StoreError> {
        self.check()?;
        self.inner.open_for_number(number)
    }
    fn count_open(&self) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.count_open()
    }
    fn cancel(&self, id: &str, now: u64) -> Result<Option<Callback>, StoreError> {
        self.check()?;
        self.inner.cancel(id, now)
    }
    fn claim(&self, c: &Claim) -> Result<Claimed, StoreError> {
        self.check()?;
        self.inner.claim(c)
    }
    fn save_owned(
        &self,
        cb: &Callback,
        owner: &str,
        lease: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.save_owned(cb, owner, lease)
    }
    fn renew(&self, owner: &str, lease_until: u64) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.renew(owner, lease_until)
    }
    fn recover(&self, owner: &str, now: u64) -> Result<Vec<Callback>, StoreError> {
        self.check()?;
        self.inner.recover(owner, now)
    }
}

/// A trunk whose customer is always busy; counts the dials. `draining`: the node places no calls.
struct Busy(Arc<AtomicUsize>, bool);

#[async_trait::async_trait]
impl Dialer for Busy {
    async fn dial(
        &self,
        _cb: Callback,
        _progress: mpsc::UnboundedSender<Progress>,
        _widget: Option<mpsc::UnboundedSender<ServerMessage>>,
    ) -> Outcome {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        Outcome::Busy
    }

    fn can_dial(&self) -> bool {
        !self.1
    }
}

fn cfg() -> CallbackSection {
    CallbackSection {
        enabled: true,
        retries: 0,
        ..CallbackSection::default()
    }
}

fn request(number: &str) -> NewCallback {
    NewCallback {
        number: number.into(),
        context: Default::default(),
        verified: false,
        queue: None,
        site: None,
        ip: None,
        not_before: None,
    }
}

fn node(
    node: u16,
    store: Store,
    dials: &Arc<AtomicUsize>,
    stop: &CancellationToken,
) -> CallbackHandle {
    node_with(node, store, Busy(dials.clone(), false), stop)
}

fn node_with(node: u16, store: Store, dialer: Busy, stop: &CancellationToken) -> CallbackHandle {
    start(
        cfg(),
        vec!["support".into()],
        node,
        Arc::new(store),
        Arc::new(dialer),
        stop.clone(),
    )
    .unwrap()
}

async fn wait_for_state(h: &CallbackHandle, id: &str, state: CallbackState) -> Callback {
    for _ in 0..100 {
        if let Some(cb) = h.store.get(id).unwrap() {
            if cb.state == state {
                return cb;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never reached {state:?}: {:?}", h.store.get(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_while_the_store_is_down_is_refused_with_a_stable_code_and_nothing_is_dialled() {
    let down = Arc::new(AtomicBool::new(true));
    let store = Store::with(Box::new(Switchable {
        inner: SqliteCallbacks::open(std::path::Path::new(":memory:")).unwrap(),
        down: down.clone(),
    }));
    let (dials, stop) = (Arc::new(AtomicUsize::new(0)), CancellationToken::new());
    let h = node(1, store, &dials, &stop);
    let err = h
        .request(request("+1 555 010 4000"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store_unavailable", "{err}");
    down.store(false, Ordering::SeqCst);
    assert_eq!(h.store.count_open().unwrap(), 0, "nothing stored");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dials.load(Ordering::SeqCst), 0, "nothing dialled");
    // Back: accepted, dialled once, busy with no retries left: failed.
    let a = h.request(request("+1 555 010 4000"), None).await.unwrap();
    let done = wait_for_state(&h, &a.callback.id, CallbackState::Failed).await;
    assert_eq!((done.attempts, done.reason.as_deref()), (1, Some("busy")));
    assert_eq!(dials.load(Ordering::SeqCst), 1);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_store_dial_each_due_callback_once() {
    let dir = std::env::temp_dir().join(format!("c2c-nodes-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cb.db");
    let (dials, stop) = (Arc::new(AtomicUsize::new(0)), CancellationToken::new());
    let one = node(1, Store::open(&path).unwrap(), &dials, &stop);
    let two = node(2, Store::open(&path).unwrap(), &dials, &stop);
    let mut ids = Vec::new();
    for (i, h) in [&one, &two, &one, &two, &one].into_iter().enumerate() {
        let a = h
            .request(request(&format!("+1 555 010 41{i:02}")), None)
            .await
            .unwrap();
        ids.push(a.callback.id);
    }
    // A request on node 2 for a number node 1 holds joins the open callback.
    let dup = two.request(request("+1 555 010 4100"), None).await.unwrap();
    assert!(dup.duplicate && dup.callback.id == ids[0]);
    for id in &ids {
        let cb = wait_for_state(&two, id, CallbackState::Failed).await;
        assert_eq!(cb.attempts, 1, "{id} dialled once");
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await; // one more poll on each node
    assert_eq!(dials.load(Ordering::SeqCst), ids.len());
    stop.cancel();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_takes_requests_but_leaves_the_dialling_to_the_others() {
    let dir = std::env::temp_dir().join(format!("c2c-drain-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cb.db");
    let stop = CancellationToken::new();
    let (drained, live) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let draining = node_with(
        1,
        Store::open(&path).unwrap(),
        Busy(drained.clone(), true),
        &stop,
    );
    let _live = node_with(
        2,
        Store::open(&path).unwrap(),
        Busy(live.clone(), false),
        &stop,
    );
    let a = draining
        .request(request("+1 555 010 4200"), None)
        .await
        .unwrap();
    wait_for_state(&draining, &a.callback.id, CallbackState::Failed).await;
    assert_eq!(
        (drained.load(Ordering::SeqCst), live.load(Ordering::SeqCst)),
        (0, 1)
    );
    stop.cancel();
    std::fs::remove_dir_all(&dir).ok();
}
