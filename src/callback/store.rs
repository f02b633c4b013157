//! Callback requests in SQLite (one file, WAL, synchronous writes): every request is stored before
//! it is acknowledged, every state change as it happens, so a restart finds each pending or
//! scheduled callback again.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Mutex;

/// Where a callback is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// Waiting for its time (or a free line).
    Scheduled,
    /// The customer's phone is being called.
    Dialing,
    /// The customer answered; the call runs (greeting, queue, agent).
    InCall,
    /// The customer confirmed and was put through to the queue.
    Completed,
    /// Answered, but nobody pressed the digit (voicemail?): hung up.
    Unconfirmed,
    /// Gave up: see the reason (busy, no_answer, rejected, invalid_number, trunk_error).
    Failed,
    /// Cancelled by the requester.
    Cancelled,
}

impl CallbackState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Scheduled => "scheduled",
            CallbackState::Dialing => "dialing",
            CallbackState::InCall => "in_call",
            CallbackState::Completed => "completed",
            CallbackState::Unconfirmed => "unconfirmed",
            CallbackState::Failed => "failed",
            CallbackState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> CallbackState {
        match s {
            "scheduled" => CallbackState::Scheduled,
            "dialing" => CallbackState::Dialing,
            "in_call" => CallbackState::InCall,
            "completed" => CallbackState::Completed,
            "unconfirmed" => CallbackState::Unconfirmed,
            "cancelled" => CallbackState::Cancelled,
            _ => CallbackState::Failed,
        }
    }

    /// Still to be dialled or being dialled.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            CallbackState::Scheduled | CallbackState::Dialing | CallbackState::InCall
        )
    }
}

/// One callback request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Callback {
    /// `cb-<hex>`.
    pub id: String,
    /// E.164.
    pub number: String,
    /// The page's context (flat).
    pub context: Map<String, Value>,
    /// Whether the context's signature checked out.
    pub verified: bool,
    /// The queue the customer goes to.
    pub queue: String,
    /// The site key it came through, if any.
    pub site: Option<String>,
    /// Not before this time (unix seconds).
    pub not_before: u64,
    /// Where it is.
    pub state: CallbackState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the last attempt did not complete (`busy`, `no_answer`, ...).
    pub reason: Option<String>,
    /// Created (unix seconds).
    pub created: u64,
    /// Last change (unix seconds).
    pub updated: u64,
}

/// A database error, with what we were doing.
#[derive(Debug, thiserror::Error)]
#[error("callback store: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// The callback table.
pub struct Store {
    conn: Mutex<Connection>,
}

const COLUMNS: &str =
    "id, number, context, verified, queue, site, not_before, state, attempts, reason, created, updated";

impl Store {
    /// Opens (creating if needed) the database at `path`; `:memory:` for a throwaway one.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
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
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent; keep serving.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a new request.
    pub fn insert(&self, cb: &Callback) -> Result<(), StoreError> {
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

    /// Writes a request's progress.
    pub fn update(&self, cb: &Callback) -> Result<(), StoreError> {
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

    /// One request.
    pub fn get(&self, id: &str) -> Result<Option<Callback>, StoreError> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM callbacks WHERE id = ?1"))?;
        Ok(st.query_row([id], row).optional()?)
    }

    /// Requests still open (scheduled, dialling, in a call), oldest first.
    pub fn open_requests(&self) -> Result<Vec<Callback>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM callbacks WHERE state IN ('scheduled', 'dialing', 'in_call') ORDER BY created"
        ))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest requests, newest first, optionally in one state.
    pub fn list(&self, state: Option<&str>, limit: usize) -> Result<Vec<Callback>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM callbacks WHERE (?1 IS NULL OR state = ?1) ORDER BY created DESC, id LIMIT ?2"
        ))?;
        let rows = st.query_map(params![state, limit as i64], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn row(r: &Row<'_>) -> rusqlite::Result<Callback> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str, created: u64) -> Callback {
        let mut context = Map::new();
        context.insert("name".into(), Value::String("Ann Lee".into()));
        Callback {
            id: id.into(),
            number: "+15550102000".into(),
            context,
            verified: true,
            queue: "support".into(),
            site: Some("acme".into()),
            not_before: 1_000,
            state: CallbackState::Scheduled,
            attempts: 0,
            reason: None,
            created,
            updated: created,
        }
    }

    #[test]
    fn requests_survive_reopening_the_file() {
        let dir = std::env::temp_dir().join(format!("c2c-store-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cb.db");
        {
            let s = Store::open(&path).unwrap();
            s.insert(&sample("cb-1", 10)).unwrap();
            s.insert(&sample("cb-2", 20)).unwrap();
            let mut done = sample("cb-2", 20);
            done.state = CallbackState::Failed;
            done.reason = Some("busy".into());
            done.attempts = 3;
            s.update(&done).unwrap();
            assert!(s.insert(&sample("cb-1", 30)).is_err(), "ids are unique");
        }
        let s = Store::open(&path).unwrap();
        let open = s.open_requests().unwrap();
        assert_eq!(open, vec![sample("cb-1", 10)]);
        let failed = s.get("cb-2").unwrap().unwrap();
        assert_eq!(
            (failed.state, failed.reason.as_deref(), failed.attempts),
            (CallbackState::Failed, Some("busy"), 3)
        );
        assert_eq!(s.list(None, 10).unwrap().len(), 2);
        assert_eq!(s.list(Some("failed"), 10).unwrap()[0].id, "cb-2");
        assert!(s.get("cb-9").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unopenable_path_is_a_clear_error() {
        let err = Store::open(Path::new("/nonexistent-dir/x/cb.db"))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("cannot open /nonexistent-dir/x/cb.db"),
            "{err}"
        );
    }
}
