//! Call detail records: one row per call, failed and abandoned ones included, in SQLite or
//! PostgreSQL.
//!
//! - [`cdr`]: the record a call task builds as the call goes (sans-IO: times are passed in).
//! - [`store`]: the table, its filters and the CSV export; the [`store::RecordBackend`] interface
//!   both databases implement (SQLite here, PostgreSQL in [`pg`]).
//! - [`backlog`]: records held in memory (bounded) while PostgreSQL is unreachable (sans-IO).
//! - [`writer`]: a thread that owns the database connection; call tasks hand it records at each
//!   milestone (created, IVR answered, queued, agent answered, ended) without waiting, so a crash
//!   loses at most the last milestone of the calls in progress; `flush` waits for the queue to drain.
//! - [`webhooks`]: each milestone is also an event in a durable outbox, POSTed to the configured
//!   URLs in order, signed, retried with backoff.

pub mod backlog;
pub mod cdr;
pub mod mos;
pub mod pg;
pub mod store;
pub mod webhooks;
pub mod writer;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
