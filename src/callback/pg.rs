//! The callback table in PostgreSQL, shared by the gateway nodes: the same columns and SQL as
//! SQLite ([`super::store::SqliteCallbacks`]), with row locks on the claim (`FOR UPDATE SKIP
//! LOCKED`: two nodes claiming at once take different rows). Calls go through a [`PgThread`].

use super::store::{
    cancel_sql, claim_sql, recover_sql, take_over_sql, Callback, CallbackBackend, CallbackState,
    Claim, Claimed, StoreError, COLUMNS, OPEN, SAVE_OWNED,
};
use crate::storage::pg::{PgThread, Schema};
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// The callbacks' migrations (never edit a released step: add one).
pub static SCHEMA: Schema = Schema {
    store: "callbacks",
    steps: &[
        "CREATE TABLE IF NOT EXISTS callbacks (
            id TEXT PRIMARY KEY, number TEXT NOT NULL, context TEXT NOT NULL,
            verified BOOLEAN NOT NULL, queue TEXT NOT NULL, site TEXT, not_before BIGINT NOT NULL,
            state TEXT NOT NULL, attempts INTEGER NOT NULL, reason TEXT, created BIGINT NOT NULL,
            updated BIGINT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS callbacks_state ON callbacks(state, not_before);
        CREATE INDEX IF NOT EXISTS callbacks_number ON callbacks(number);",
        "ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS owner TEXT;
        ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS lease_until BIGINT;",
    ],
};

/// Callbacks in PostgreSQL.
pub struct PgCallbacks {
    thread: PgThread,
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

impl PgCallbacks {
    /// The store at `url` (connected on first use, migrated then).
    pub fn open(url: &str) -> Result<PgCallbacks, StoreError> {
        Ok(PgCallbacks {
            thread: PgThread::start(url, &SCHEMA)?,
        })
    }

    /// Runs `sql` and reads the rows it returns.
    fn rows(&self, sql: String, params: Params) -> Result<Vec<Callback>, StoreError> {
        let rows = self.thread.call(move |conn| {
            conn.run(async |c| {
                let p: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                c.query(&sql, &p).await
            })
        })?;
        Ok(rows.iter().map(row).collect())
    }

    /// Runs `sql`: how many rows it changed.
    fn execute(&self, sql: String, params: Params) -> Result<u64, StoreError> {
        Ok(self.thread.call(move |conn| {
            conn.run(async |c| {
                let p: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                c.execute(&sql, &p).await
            })
        })?)
    }
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl CallbackBackend for PgCallbacks {
    fn insert(&self, cb: &Callback) -> Result<(), StoreError> {
        let values: Vec<String> = (1..=12).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO callbacks ({COLUMNS}) VALUES ({})",
            values.join(", ")
        );
        self.execute(
            sql,
            vec![
                Box::new(cb.id.clone()),
                Box::new(cb.number.clone()),
                Box::new(Value::Object(cb.context.clone()).to_string()),
                Box::new(cb.verified),
                Box::new(cb.queue.clone()),
                Box::new(cb.site.clone()),
                Box::new(secs(cb.not_before)),
                Box::new(cb.state.as_str()),
                Box::new(cb.attempts as i32),
                Box::new(cb.reason.clone()),
                Box::new(secs(cb.created)),
                Box::new(secs(cb.updated)),
            ],
        )?;
        Ok(())
    }

    fn update(&self, cb: &Callback) -> Result<(), StoreError> {
        self.execute(
            "UPDATE callbacks SET state = $2, attempts = $3, reason = $4, not_before = $5, updated = $6 WHERE id = $1".into(),
            vec![
                Box::new(cb.id.clone()),
                Box::new(cb.state.as_str()),
                Box::new(cb.attempts as i32),
                Box::new(cb.reason.clone()),
                Box::new(secs(cb.not_before)),
                Box::new(secs(cb.updated)),
            ],
        )?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Callback>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM callbacks WHERE id = $1");
        Ok(self.rows(sql, vec![Box::new(id.to_string())])?.pop())
    }

    fn open_requests(&self) -> Result<Vec<Callback>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM callbacks WHERE state IN {OPEN} ORDER BY created");
        self.rows(sql, Vec::new())
    }

    fn list(&self, state: Option<&str>, limit: usize) -> Result<Vec<Callback>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM callbacks WHERE ($1::TEXT IS NULL OR state = $1)
             ORDER BY created DESC, id COLLATE \"C\" LIMIT $2"
        );
        self.rows(
            sql,
            vec![Box::new(state.map(str::to_string)), Box::new(limit as i64)],
        )
    }

    fn open_for_number(&self, number: &str) -> Result<Option<Callback>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM callbacks WHERE number = $1 AND state IN {OPEN} ORDER BY created LIMIT 1"
        );
        Ok(self.rows(sql, vec![Box::new(number.to_string())])?.pop())
    }

    fn count_open(&self) -> Result<usize, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM callbacks WHERE state IN {OPEN}");
        let n = self.thread.call(move |conn| {
            conn.run(async |c| c.query_one(&sql, &[]).await.map(|r| r.get::<_, i64>(0)))
        })?;
        Ok(n.max(0) as usize)
    }

    fn cancel(&self, id: &str, now: u64) -> Result<Option<Callback>, StoreError> {
        Ok(self
            .rows(
                cancel_sql(),
                vec![Box::new(id.to_string()), Box::new(secs(now))],
            )?
            .pop())
    }

    fn claim(&self, c: &Claim) -> Result<Claimed, StoreError> {
        let taken_over = self.rows(
            take_over_sql(),
            vec![
                Box::new(secs(c.now)),
                Box::new(c.retries.min(i32::MAX as u32) as i32),
                Box::new(secs(c.retry_delay_secs)),
            ],
        )?;
        let mut dial = if c.limit == 0 {
            Vec::new()
        } else {
            self.rows(
                claim_sql("FOR UPDATE SKIP LOCKED"),
                vec![
                    Box::new(c.owner.clone()),
                    Box::new(secs(c.lease_until)),
                    Box::new(secs(c.now)),
                    Box::new(c.limit as i64),
                ],
            )?
        };
        dial.sort_by_key(|cb| (cb.not_before, cb.created));
        Ok(Claimed { dial, taken_over })
    }

    fn save_owned(
        &self,
        cb: &Callback,
        owner: &str,
        lease: Option<u64>,
    ) -> Result<bool, StoreError> {
        let n = self.execute(
            SAVE_OWNED.into(),
            vec![
                Box::new(cb.id.clone()),
                Box::new(cb.state.as_str()),
                Box::new(cb.attempts as i32),
                Box::new(cb.reason.clone()),
                Box::new(secs(cb.not_before)),
                Box::new(secs(cb.updated)),
                Box::new(lease.map(secs)),
                Box::new(owner.to_string()),
            ],
        )?;
        Ok(n == 1)
    }

    fn renew(&self, owner: &str, lease_until: u64) -> Result<usize, StoreError> {
        let n = self.execute(
            "UPDATE callbacks SET lease_until = $2 WHERE owner = $1 AND state IN ('dialing', 'in_call')".into(),
            vec![Box::new(owner.to_string()), Box::new(secs(lease_until))],
        )?;
        Ok(n as usize)
    }

    fn recover(&self, owner: &str, now: u64) -> Result<Vec<Callback>, StoreError> {
        self.rows(
            recover_sql(),
            vec![Box::new(owner.to_string()), Box::new(secs(now))],
        )
    }
}

/// A row as [`COLUMNS`] lists them (the migrations fix the types, so `get` cannot mismatch).
fn row(r: &Row) -> Callback {
    let context = match serde_json::from_str(&r.get::<_, String>(2)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Callback {
        id: r.get(0),
        number: r.get(1),
        context,
        verified: r.get(3),
        queue: r.get(4),
        site: r.get(5),
        not_before: r.get::<_, i64>(6).max(0) as u64,
        state: CallbackState::parse(&r.get::<_, String>(7)),
        attempts: r.get::<_, i32>(8).max(0) as u32,
        reason: r.get(9),
        created: r.get::<_, i64>(10).max(0) as u64,
        updated: r.get::<_, i64>(11).max(0) as u64,
    }
}
