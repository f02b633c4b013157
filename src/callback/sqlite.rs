//! The callback table in a SQLite file (WAL, synchronous writes): the embedded default, the same
//! SQL as PostgreSQL ([`super::pg`]); one connection behind a mutex, whose writer lock serialises
//! each claim.

use super::store::{
    cancel_sql, claim_sql, recover_sql, take_over_sql, Callback, CallbackBackend, CallbackState,
    Claim, Claimed, StoreError, COLUMNS, OPEN, SAVE_OWNED,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Mutex;

/// SQLite's numbered placeholders (`?1`) for the shared SQL's (`$1`).
fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// The callback table in a SQLite file (WAL, synchronous writes).
pub struct SqliteCallbacks {
    conn: Mutex<Connection>,
}

impl SqliteCallbacks {
    /// Opens (creating if needed) the database at `path`; `:memory:` for a throwaway one.
    pub fn open(path: &Path) -> Result<SqliteCallbacks, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::failed(format!("cannot open {}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS callbacks (
                id TEXT PRIMARY KEY,
                number TEXT NOT NULL,
                context TEXT NOT NULL,
                verified INTEGER NOT NULL,
                queue TEXT NOT NULL,
                site TEXT,
                not_before INTEGER NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                reason TEXT,
                created INTEGER NOT NULL,
                updated INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS callbacks_state ON callbacks(state);
            CREATE INDEX IF NOT EXISTS callbacks_number ON callbacks(number);",
        )?;
        // Files from before leases get the columns (NULL: nobody holds those rows).
        for (column, kind) in [("owner", "TEXT"), ("lease_until", "INTEGER")] {
            let has = conn
                .prepare("SELECT 1 FROM pragma_table_info('callbacks') WHERE name = ?1")?
                .exists([column])?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE callbacks ADD COLUMN {column} {kind}"))?;
            }
        }
        Ok(SqliteCallbacks {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent; keep serving.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn returning(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Callback>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&sqlite(sql))?;
        let rows = st.query_map(p, row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl CallbackBackend for SqliteCallbacks {
    fn insert(&self, cb: &Callback) -> Result<(), StoreError> {
        self.conn().execute(
            &format!("INSERT INTO callbacks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
            params![
                cb.id,
                cb.number,
                Value::Object(cb.context.clone()).to_string(),
                cb.verified,
                cb.queue,
                cb.site,
                cb.not_before as i64,
                cb.state.as_str(),
                cb.attempts,
                cb.reason,
                cb.created as i64,
                cb.updated as i64
            ],
        )?;
        Ok(())
    }

    fn update(&self, cb: &Callback) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE callbacks SET state = ?2, attempts = ?3, reason = ?4, not_before = ?5, updated = ?6 WHERE id = ?1",
            params![
                cb.id,
                cb.state.as_str(),
                cb.attempts,
                cb.reason,
                cb.not_before as i64,
                cb.updated as i64
            ],
        )?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Callback>, StoreError> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM callbacks WHERE id = ?1"))?;
        Ok(st.query_row([id], row).optional()?)
    }

    fn open_requests(&self) -> Result<Vec<Callback>, StoreError> {
        self.returning(
            &format!("SELECT {COLUMNS} FROM callbacks WHERE state IN {OPEN} ORDER BY created"),
            [],
        )
    }

    fn list(&self, state: Option<&str>, limit: usize) -> Result<Vec<Callback>, StoreError> {
        self.returning(
            &format!("SELECT {COLUMNS} FROM callbacks WHERE (?1 IS NULL OR state = ?1) ORDER BY created DESC, id LIMIT ?2"),
            params![state, limit as i64],
        )
    }

    fn open_for_number(&self, number: &str) -> Result<Option<Callback>, StoreError> {
        Ok(self
            .returning(
                &format!("SELECT {COLUMNS} FROM callbacks WHERE number = $1 AND state IN {OPEN} ORDER BY created LIMIT 1"),
                [number],
            )?
            .pop())
    }

    fn count_open(&self) -> Result<usize, StoreError> {
        let n: i64 = self.conn().query_row(
            &format!("SELECT COUNT(*) FROM callbacks WHERE state IN {OPEN}"),
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as usize)
    }

    fn cancel(&self, id: &str, now: u64) -> Result<Option<Callback>, StoreError> {
        Ok(self
            .returning(&cancel_sql(), params![id, now as i64])?
            .pop())
    }

    fn claim(&self, c: &Claim) -> Result<Claimed, StoreError> {
        let taken_over = self.returning(
            &take_over_sql(),
            params![c.now as i64, c.retries, c.retry_delay_secs as i64],
        )?;
        let mut dial = if c.limit == 0 {
            Vec::new()
        } else {
            self.returning(
                &claim_sql(""),
                params![c.owner, c.lease_until as i64, c.now as i64, c.limit as i64],
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
        let n = self.conn().execute(
            &sqlite(SAVE_OWNED),
            params![
                cb.id,
                cb.state.as_str(),
                cb.attempts,
                cb.reason,
                cb.not_before as i64,
                cb.updated as i64,
                lease.map(|l| l as i64),
                owner
            ],
        )?;
        Ok(n == 1)
    }

    fn renew(&self, owner: &str, lease_until: u64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE callbacks SET lease_until = ?2 WHERE owner = ?1 AND state IN ('dialing', 'in_call')",
            params![owner, lease_until as i64],
        )?)
    }

    fn recover(&self, owner: &str, now: u64) -> Result<Vec<Callback>, StoreError> {
        self.returning(&recover_sql(), params![owner, now as i64])
    }
}

pub(crate) fn row(r: &Row<'_>) -> rusqlite::Result<Callback> {
    let context: String = r.get(2)?;
    let context = match serde_json::from_str(&context) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let state: String = r.get(7)?;
    Ok(Callback {
        id: r.get(0)?,
        number: r.get(1)?,
        context,
        verified: r.get(3)?,
        queue: r.get(4)?,
        site: r.get(5)?,
        not_before: r.get::<_, i64>(6)?.max(0) as u64,
        state: CallbackState::parse(&state),
        attempts: r.get(8)?,
        reason: r.get(9)?,
        created: r.get::<_, i64>(10)?.max(0) as u64,
        updated: r.get::<_, i64>(11)?.max(0) as u64,
    })
}
