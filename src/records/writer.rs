//! The records writer: one thread owns the database connection (SQLite, or PostgreSQL through
//! [`super::pg`]); call tasks send it records and never wait. `flush` returns once everything sent
//! before it is written (the drain waits on it). While PostgreSQL is unreachable the records wait
//! in a bounded [`Backlog`] and are written when it is back.

use super::backlog::{Backlog, Held, BACKLOG_LIMIT};
use super::cdr::CallRecord;
use super::store::{Filter, RecordBackend, RecordError, RecordStore};
use crate::storage::Database;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;
use tracing::{info, warn};

enum Job {
    Write(Box<CallRecord>, &'static str),
    Query(
        Filter,
        oneshot::Sender<Result<Vec<serde_json::Value>, RecordError>>,
    ),
    Flush(oneshot::Sender<()>),
    /// A recording's file was deleted (retention): (call id, file, when).
    Deleted(u64, String, i64),
    /// Another node of the cluster died: its open records end as `interrupted`.
    CloseNode(u16),
}

/// Where call tasks send their records.
#[derive(Clone)]
pub struct Records {
    tx: mpsc::Sender<Job>,
}

/// The thread's state: the database, the webhook URLs and what waits for an unreachable server.
struct Writer {
    store: Box<dyn RecordBackend>,
    urls: Vec<String>,
    wake: Arc<tokio::sync::Notify>,
    backlog: Backlog,
    /// This node's records left open by a previous run are still to be closed (the server was
    /// unreachable at start).
    close_pending: bool,
}

impl Records {
    /// Opens the store `database` (a SQLite path or a `postgres://` URL) for node `node` and
    /// starts its thread; each event is also queued for the webhook `urls` (then `wake` is
    /// notified). A SQLite file that cannot be opened is an error now; an unreachable PostgreSQL
    /// is not (records wait for it).
    pub fn open(
        database: &Path,
        node: u16,
        urls: Vec<String>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<Records, RecordError> {
        match Database::parse(database) {
            Database::Sqlite(path) => {
                let store = RecordStore::open(&path)?;
                Records::start(move || Ok(Box::new(store)), urls, wake)
            }
            Database::Postgres(url) => {
                url.parse::<tokio_postgres::Config>()
                    .map_err(|e| RecordError::Failed(format!("not a PostgreSQL URL: {e}")))?;
                // The connection is made (and dropped) on the writer's thread: it owns a runtime.
                let open = move || -> Result<Box<dyn RecordBackend>, RecordError> {
                    Ok(Box::new(super::pg::PgRecords::new(&url, node)?))
                };
                Records::start(open, urls, wake)
            }
        }
    }

    /// Starts the writer's thread over the backend `open` makes there (tests pass fakes).
    pub fn start(
        open: impl FnOnce() -> Result<Box<dyn RecordBackend>, RecordError> + Send + 'static,
        urls: Vec<String>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<Records, RecordError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("records".into())
            .spawn(move || {
                let store = match open() {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "call records: no database; records are not kept");
                        return;
                    }
                };
                let mut w = Writer {
                    store,
                    urls,
                    wake,
                    backlog: Backlog::new(BACKLOG_LIMIT),
                    close_pending: true,
                };
                w.close_interrupted();
                w.run(rx);
            })
            .map_err(|e| RecordError::Failed(format!("cannot start the records thread: {e}")))?;
        Ok(Records { tx })
    }

    /// Writes `record` at a milestone, `event` (`call.started`, `call.queued`, ...) for webhooks;
    /// never blocks the caller.
    pub fn write(&self, record: &CallRecord, event: &'static str) {
        let _ = self.tx.send(Job::Write(Box::new(record.clone()), event));
    }

    /// Records matching `filter`.
    pub async fn query(&self, filter: Filter) -> Result<Vec<serde_json::Value>, RecordError> {
        let stopped = || RecordError::Failed("the records thread has stopped".into());
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Query(filter, tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Call `call`'s recording `file` was deleted (retention): its record says so.
    pub fn mark_recording_deleted(&self, call: u64, file: String) {
        let now = crate::call::task::unix_ms();
        let _ = self.tx.send(Job::Deleted(call, file, now));
    }

    /// Node `node` of the cluster died: its open records end as `interrupted` (in a shared
    /// database; a database of this node's own holds none of them).
    pub fn close_node(&self, node: u16) {
        let _ = self.tx.send(Job::CloseNode(node));
    }

    /// Waits until every record sent so far is written (or held, while the database is
    /// unreachable).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Job>) {
        loop {
            let job = match self.backlog.poll_timeout() {
                None => match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                },
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                },
            };
            if self.backlog.retry_due(Instant::now()) {
                self.retry();
            }
            match job {
                Some(Job::Write(r, event)) => self.write(r, event),
                Some(Job::Query(f, reply)) => {
                    let _ = reply.send(self.store.query(&f));
                }
                Some(Job::Flush(reply)) => {
                    let _ = reply.send(());
                }
                Some(Job::Deleted(call, file, at)) => {
                    if let Err(e) = self.store.mark_recording_deleted(call, &file, at) {
                        warn!(call, error = %e, "record not marked: recording deleted");
                    }
                }
                Some(Job::CloseNode(node)) => match self.store.close_node(node, &self.urls) {
                    Ok(n) => info!(node, closed = n, "a dead node's calls ended as interrupted"),
                    Err(e) => warn!(node, error = %e, "a dead node's calls not closed"),
                },
                None => {}
            }
        }
    }

    /// Writes one record, or holds it while the database is unreachable.
    fn write(&mut self, r: Box<CallRecord>, event: &'static str) {
        if self.backlog.in_outage() {
            self.hold(r, event);
            return;
        }
        match self.store.write_event(&r, event, &self.urls) {
            Ok(()) if !self.urls.is_empty() => self.wake.notify_one(),
            Ok(()) => {}
            Err(e) if e.is_unavailable() => {
                if self.backlog.handle_outage(Instant::now()) {
                    warn!(error = %e, limit = BACKLOG_LIMIT, "records database unreachable: call records are held in memory until it is back");
                }
                self.hold(r, event);
            }
            Err(e) => warn!(record = %r.id, error = %e, "call record not written"),
        }
    }

    fn hold(&mut self, r: Box<CallRecord>, event: &'static str) {
        if let Held::DroppedOldest(id) = self.backlog.push(r, event) {
            crate::metrics::records_dropped();
            warn!(record = %id, limit = BACKLOG_LIMIT, "records backlog full: oldest held record dropped");
        }
    }

    /// The retry is due: write the held records, oldest first, until done or the server fails.
    fn retry(&mut self) {
        if self.close_pending {
            self.close_interrupted();
            if self.close_pending {
                self.backlog.handle_outage(Instant::now());
                return;
            }
        }
        while let Some((r, event)) = self.backlog.front() {
            match self.store.write_event(r, event, &self.urls) {
                Ok(()) => {
                    if let Some(done) = self.backlog.handle_written() {
                        info!(
                            written = done.written,
                            dropped = done.dropped,
                            "records database back: held call records written"
                        );
                    }
                }
                Err(e) if e.is_unavailable() => {
                    self.backlog.handle_outage(Instant::now());
                    return;
                }
                Err(e) => {
                    warn!(record = %r.id, error = %e, "call record not written");
                    self.backlog.handle_written();
                }
            }
        }
        if !self.urls.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Ends this node's records a previous run left open; retried later if the server is down.
    fn close_interrupted(&mut self) {
        match self.store.close_interrupted(&self.urls) {
            Ok(n) => {
                self.close_pending = false;
                if n > 0 {
                    warn!(records = n, "calls left open by a previous run (it did not stop cleanly) ended as interrupted");
                    if !self.urls.is_empty() {
                        self.wake.notify_one();
                    }
                }
            }
            Err(e) if e.is_unavailable() => {
                if self.backlog.handle_outage(Instant::now()) {
                    warn!(error = %e, limit = BACKLOG_LIMIT, "records database unreachable: call records are held in memory until it is back");
                }
            }
            Err(e) => {
                self.close_pending = false;
                warn!(error = %e, "could not end the records a previous run left open");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// Record id and end reason, as written.
    type Rows = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// A database that can be switched off: what it holds, and whether it answers.
    #[derive(Clone, Default)]
    struct Fake {
        rows: Rows,
        down: Arc<AtomicBool>,
    }

    impl RecordBackend for Fake {
        fn write_event(
            &mut self,
            r: &CallRecord,
            _: &str,
            _: &[String],
        ) -> Result<(), RecordError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(RecordError::Unavailable("connection refused".into()));
            }
            let mut rows = self.rows.lock().unwrap();
            rows.retain(|(id, _)| *id != r.id);
            rows.push((r.id.clone(), r.end_reason.clone()));
            Ok(())
        }
        fn query(&mut self, _: &Filter) -> Result<Vec<serde_json::Value>, RecordError> {
            Ok(Vec::new())
        }
        fn mark_recording_deleted(&mut self, _: u64, _: &str, _: i64) -> Result<(), RecordError> {
            Ok(())
        }
        fn close_interrupted(&mut self, _: &[String]) -> Result<usize, RecordError> {
            Ok(0)
        }
    }

    #[tokio::test]
    async fn records_wait_while_the_database_is_down_and_are_written_when_it_is_back() {
        let fake = Fake::default();
        let db = fake.clone();
        let records =
            Records::start(move || Ok(Box::new(db)), Vec::new(), Default::default()).unwrap();
        let mut a = CallRecord::new(1, "sip", Default::default(), 1_000);
        records.write(&a, "call.started");
        records.flush().await;
        assert_eq!(fake.rows.lock().unwrap().len(), 1);

        fake.down.store(true, Ordering::SeqCst);
        let b = CallRecord::new(2, "sip", Default::default(), 2_000);
        // Writes while it is down return at once (the call never waits).
        let t = std::time::Instant::now();
        records.write(&b, "call.started");
        a.ended("customer_hangup", &[], 3_000);
        records.write(&a, "call.ended");
        records.flush().await;
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        assert_eq!(
            fake.rows.lock().unwrap().len(),
            1,
            "nothing written while down"
        );

        fake.down.store(false, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let rows = fake.rows.lock().unwrap().clone();
            if rows.len() == 2 && rows.iter().any(|(id, e)| *id == a.id && e.is_some()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not written after the outage: {rows:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
