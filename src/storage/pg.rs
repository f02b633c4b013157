//! PostgreSQL for the stores: one connection per store, opened on first use and again after it
//! breaks, driven from a plain thread (the records writer's own, or [`PgThread`] for the callback
//! store) through a small current-thread runtime, so the stores keep their blocking interface and
//! a tokio task never waits on the network without a bound.
//!
//! Migrations ([`Schema`]) run on every (re)connect: one transaction that first takes
//! `pg_advisory_xact_lock`, so nodes starting together apply each step once, then the steps past
//! the store's row in `schema_version` (each `CREATE TABLE IF NOT EXISTS` / `ALTER ... IF NOT
//! EXISTS`, so a half-known database is still safe).

use std::sync::mpsc;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};

/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one operation (its statements together) may take before the connection is dropped.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// The advisory lock every migration takes (any constant; "c2c" in ASCII).
const MIGRATION_LOCK: i64 = 0x00_63_32_63;

/// A failed operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PgError {
    /// The server could not be reached, or the connection broke or timed out: try again later.
    pub unavailable: bool,
    /// What happened.
    pub message: String,
}

impl PgError {
    fn unavailable(message: impl Into<String>) -> PgError {
        PgError {
            unavailable: true,
            message: message.into(),
        }
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A server-side error (a constraint, bad SQL) is a query error; everything else (I/O, a
        // closed connection) means the server is not there.
        let unavailable = e.as_db_error().is_none();
        PgError {
            unavailable,
            message: format!("postgresql: {e}"),
        }
    }
}

/// A store's migrations: its name in `schema_version` and its steps, in order, never edited once
/// released (add a step instead).
pub struct Schema {
    /// The store (`records`, `callbacks`): one row each in `schema_version`.
    pub store: &'static str,
    /// SQL batches; step `i` brings the store to version `i + 1`.
    pub steps: &'static [&'static str],
}

/// One connection to the server, reconnected on demand. Create, use and drop it on one plain
/// thread (it owns a runtime, which must not be dropped inside another).
pub struct PgConn {
    rt: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    schema: &'static Schema,
    client: Option<Client>,
}

impl PgConn {
    /// A connection to `url` for `schema` (not connected yet: see [`PgConn::run`]).
    pub fn new(url: &str, schema: &'static Schema) -> Result<PgConn, PgError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| PgError {
            unavailable: false,
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("clicktocall");
        // "already exists, skipping" notices of the idempotent migrations are not news (unless
        // the URL sets its own options).
        if config.get_options().is_none() {
            config.options("-c client_min_messages=warning");
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PgError::unavailable(format!("no runtime for postgresql: {e}")))?;
        Ok(PgConn {
            rt,
            config,
            schema,
            client: None,
        })
    }

    /// Runs `f` on the connection (connecting and migrating first if needed), bounded by the
    /// operation timeout; a connection that failed is dropped, so the next call reconnects.
    pub fn run<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, PgError> {
        self.connect()?;
        let Some(client) = self.client.as_mut() else {
            return Err(PgError::unavailable("postgresql: not connected"));
        };
        let result = self
            .rt
            .block_on(async { tokio::time::timeout(OPERATION_TIMEOUT, f(client)).await });
        let result = match result {
            Ok(r) => r.map_err(PgError::from),
            Err(_) => Err(PgError::unavailable("postgresql: operation timed out")),
        };
        if let Err(e) = &result {
            if e.unavailable || self.client.as_ref().is_some_and(Client::is_closed) {
                self.client = None;
            }
        }
        result
    }

    /// Connects and migrates, unless connected.
    pub fn connect(&mut self) -> Result<(), PgError> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        let config = self.config.clone();
        let schema = self.schema;
        let rt = &self.rt;
        let mut client = rt.block_on(async {
            let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
                .await
                .map_err(|_| PgError::unavailable("postgresql: connect timed out"))??;
            rt.spawn(async move {
                if let Err(e) = connection.await {
                    warn!(error = %e, "postgresql connection closed");
                }
            });
            Ok::<_, PgError>(client)
        })?;
        rt.block_on(async {
            tokio::time::timeout(OPERATION_TIMEOUT, migrate(&mut client, schema))
                .await
                .map_err(|_| PgError::unavailable("postgresql: migration timed out"))?
                .map_err(PgError::from)
        })?;
        self.client = Some(client);
        Ok(())
    }
}

/// Applies `schema`'s steps past its recorded version, in one transaction under the advisory lock.
async fn migrate(client: &mut Client, schema: &Schema) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (store TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    )
    .await?;
    let version: i32 = tx
        .query_opt(
            "SELECT version FROM schema_version WHERE store = $1",
            &[&schema.store],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or(0);
    let target = schema.steps.len() as i32;
    for step in schema.steps.iter().skip(version.max(0) as usize) {
        tx.batch_execute(step).await?;
    }
    if target > version {
        tx.execute(
            "INSERT INTO schema_version (store, version) VALUES ($1, $2)
             ON CONFLICT (store) DO UPDATE SET version = excluded.version",
            &[&schema.store, &target],
        )
        .await?;
        info!(
            store = schema.store,
            from = version,
            to = target,
            "postgresql schema migrated"
        );
    }
    tx.commit().await
}

type Job = Box<dyn FnOnce(&mut PgConn) + Send>;

/// A [`PgConn`] on a thread of its own, for callers that live on the async runtime and need a
/// blocking call with a bound (the callback store).
pub struct PgThread {
    tx: mpsc::Sender<Job>,
}

impl PgThread {
    /// Starts the thread (the connection is made on first use). A bad URL is an error now.
    pub fn start(url: &str, schema: &'static Schema) -> Result<PgThread, PgError> {
        // Checked here so a typo fails at start; the thread builds its own.
        url.parse::<tokio_postgres::Config>().map_err(|e| PgError {
            unavailable: false,
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        let url = url.to_string();
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("pg-{}", schema.store))
            .spawn(move || {
                let mut conn = match PgConn::new(&url, schema) {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(error = %e, "postgresql thread not started");
                        return;
                    }
                };
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|e| PgError::unavailable(format!("cannot start a thread: {e}")))?;
        Ok(PgThread { tx })
    }

    /// Runs `f` on the thread's connection and waits for it (at most the connect and operation
    /// timeouts and a little more).
    pub fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgConn) -> Result<T, PgError> + Send + 'static,
    ) -> Result<T, PgError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.tx
            .send(job)
            .map_err(|_| PgError::unavailable("the postgresql thread has stopped"))?;
        answer
            .recv_timeout(CONNECT_TIMEOUT * 2 + OPERATION_TIMEOUT * 2)
            .map_err(|_| PgError::unavailable("postgresql: no answer in time"))?
    }
}
