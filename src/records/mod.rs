//! Call detail records: one row per call, failed and abandoned ones included, in SQLite.
//!
//! - [`cdr`]: the record a call task builds as the call goes (sans-IO: times are passed in).
//! - [`store`]: the table, its filters and the CSV export.
//! - [`writer`]: a thread that owns the database connection; call tasks hand it records at each
//!   milestone (created, IVR answered, queued, agent answered, ended) without waiting, so a crash
//!   loses at most the last milestone of the calls in progress; `flush` waits for the queue to drain.

pub mod cdr;
pub mod store;
pub mod writer;
