//! The records writer: one thread owns the SQLite connection; call tasks send it records and never
//! wait. `flush` returns once everything sent before it is on disk (the drain waits on it).

use super::cdr::CallRecord;
use super::store::{Filter, RecordError, RecordStore};
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;
use tracing::warn;

enum Job {
    Write(Box<CallRecord>),
    Query(
        Filter,
        oneshot::Sender<Result<Vec<serde_json::Value>, RecordError>>,
    ),
    Flush(oneshot::Sender<()>),
}

/// Where call tasks send their records.
#[derive(Clone)]
pub struct Records {
    tx: mpsc::Sender<Job>,
}

impl Records {
    /// Opens the store at `path` and starts its thread.
    pub fn open(path: &Path) -> Result<Records, RecordError> {
        let store = RecordStore::open(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("records".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Write(r) => {
                            if let Err(e) = store.upsert(&r) {
                                warn!(record = %r.id, error = %e, "call record not written");
                            }
                        }
                        Job::Query(f, reply) => {
                            let _ = reply.send(store.query(&f));
                        }
                        Job::Flush(reply) => {
                            let _ = reply.send(());
                        }
                    }
                }
            })
            .map_err(|e| RecordError(format!("cannot start the records thread: {e}")))?;
        Ok(Records { tx })
    }

    /// Writes `record` (a milestone or the end); never blocks the caller.
    pub fn write(&self, record: &CallRecord) {
        let _ = self.tx.send(Job::Write(Box::new(record.clone())));
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

    /// Waits until every record sent so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
