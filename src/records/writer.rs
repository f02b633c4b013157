//! The records writer: one thread owns the SQLite connection; call tasks send it records and never
//! wait. `flush` returns once everything sent before it is on disk (the drain waits on it).

use super::cdr::CallRecord;
use super::store::{Filter, RecordError, RecordStore};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;
use tracing::warn;

enum Job {
    Write(Box<CallRecord>, &'static str),
    Query(
        Filter,
        oneshot::Sender<Result<Vec<serde_json::Value>, RecordError>>,
    ),
    Flush(oneshot::Sender<()>),
    /// A recording's file was deleted (retention): (call id, file, when).
    Deleted(u64, String, i64),
}

/// Where call tasks send their records.
#[derive(Clone)]
pub struct Records {
    tx: mpsc::Sender<Job>,
}

impl Records {
    /// Opens the store at `path` and starts its thread; each event is also queued for the
    /// webhook `urls` (then `wake` is notified).
    pub fn open(
        path: &Path,
        urls: Vec<String>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<Records, RecordError> {
        let store = RecordStore::open(path)?;
        match store.close_interrupted(&urls) {
            Ok(0) => {}
            Ok(n) => {
                warn!(records = n, "calls left open by a previous run (it did not stop cleanly) ended as interrupted");
                if !urls.is_empty() {
                    wake.notify_one();
                }
            }
            Err(e) => warn!(error = %e, "could not end the records a previous run left open"),
        }
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("records".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Write(r, event) => match store.write_event(&r, event, &urls) {
                            Ok(()) if !urls.is_empty() => wake.notify_one(),
                            Ok(()) => {}
                            Err(e) => {
                                warn!(record = %r.id, error = %e, "call record not written")
                            }
                        },
                        Job::Query(f, reply) => {
                            let _ = reply.send(store.query(&f));
                        }
                        Job::Flush(reply) => {
                            let _ = reply.send(());
                        }
                        Job::Deleted(call, file, at) => {
                            if let Err(e) = store.mark_recording_deleted(call, &file, at) {
                                warn!(call, error = %e, "record not marked: recording deleted");
                            }
                        }
                    }
                }
            })
            .map_err(|e| RecordError(format!("cannot start the records thread: {e}")))?;
        Ok(Records { tx })
    }

    /// Writes `record` at a milestone, `event` (`call.started`, `call.queued`, ...) for webhooks;
    /// never blocks the caller.
    pub fn write(&self, record: &CallRecord, event: &'static str) {
        let _ = self.tx.send(Job::Write(Box::new(record.clone()), event));
    }

    /// Records matching `filter`.
    pub async fn query(&self, filter: Filter) -> Result<Vec<serde_json::Value>, RecordError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Query(filter, tx))
            .map_err(|_| RecordError("the records thread has stopped".into()))?;
        rx.await
            .map_err(|_| RecordError("the records thread has stopped".into()))?
    }

    /// Call `call`'s recording `file` was deleted (retention): its record says so.
    pub fn mark_recording_deleted(&self, call: u64, file: String) {
        let now = crate::call::task::unix_ms();
        let _ = self.tx.send(Job::Deleted(call, file, now));
    }

    /// Waits until every record sent so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
