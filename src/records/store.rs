//! The `cdrs` table: one row per call, written at each milestone (`INSERT ... ON CONFLICT DO
//! UPDATE`), queried with filters, exported as CSV.

use super::cdr::CallRecord;
use rusqlite::{params, Connection, Row};
use std::path::Path;

/// A database error, with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The statement failed (a full disk, a record that does not read back, a bug).
    #[error("call records: {0}")]
    Failed(String),
    /// The database server cannot be reached (PostgreSQL down): the writer queues and retries.
    #[error("call records: the database is unreachable: {0}")]
    Unavailable(String),
}

impl RecordError {
    /// The server is unreachable (try again later), not a failed statement.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RecordError::Unavailable(_))
    }
}

impl From<rusqlite::Error> for RecordError {
    fn from(e: rusqlite::Error) -> Self {
        RecordError::Failed(e.to_string())
    }
}

/// What the records writer needs of a database: SQLite ([`RecordStore`]) or PostgreSQL
/// ([`super::pg::PgRecords`]), the same table and the same answers.
pub trait RecordBackend: Send {
    /// Writes a record and queues its webhook event for `urls`, in one transaction.
    fn write_event(
        &mut self,
        r: &CallRecord,
        event: &str,
        urls: &[String],
    ) -> Result<(), RecordError>;
    /// Records matching `f`, oldest first (the JSON shape of [`RecordStore::query`]).
    fn query(&mut self, f: &Filter) -> Result<Vec<serde_json::Value>, RecordError>;
    /// Marks recording `file` of call `call` deleted at `at_ms`.
    fn mark_recording_deleted(
        &mut self,
        call: u64,
        file: &str,
        at_ms: i64,
    ) -> Result<(), RecordError>;
    /// Ends this node's records a previous run left open (see [`RecordStore::close_interrupted`]).
    fn close_interrupted(&mut self, urls: &[String]) -> Result<usize, RecordError>;
    /// Ends the open records of `node`, another node of the cluster that died, as `interrupted`.
    /// A store of this node's own (SQLite) holds no other node's records: nothing to do (that
    /// node closes its own when it starts again).
    fn close_node(&mut self, node: u16, urls: &[String]) -> Result<usize, RecordError> {
        let _ = (node, urls);
        Ok(0)
    }
}

impl RecordBackend for RecordStore {
    fn write_event(
        &mut self,
        r: &CallRecord,
        event: &str,
        urls: &[String],
    ) -> Result<(), RecordError> {
        RecordStore::write_event(self, r, event, urls)
    }
    fn query(&mut self, f: &Filter) -> Result<Vec<serde_json::Value>, RecordError> {
        RecordStore::query(self, f)
    }
    fn mark_recording_deleted(
        &mut self,
        call: u64,
        file: &str,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        RecordStore::mark_recording_deleted(self, call, file, at_ms)
    }
    fn close_interrupted(&mut self, urls: &[String]) -> Result<usize, RecordError> {
        RecordStore::close_interrupted(self, urls)
    }
}

/// A record a dead process left open, ended as `interrupted` at its last milestone.
pub(crate) fn interrupted(row: serde_json::Value) -> Result<CallRecord, RecordError> {
    let mut rec: CallRecord = serde_json::from_value(row)
        .map_err(|e| RecordError::Failed(format!("a stored record does not read back: {e}")))?;
    let last = [rec.agent_answered_ms, rec.queued_ms, rec.ivr_answered_ms]
        .into_iter()
        .flatten()
        .fold(rec.created_ms, i64::max);
    let path = rec.ivr_path.clone();
    rec.ended("interrupted", &path, last);
    Ok(rec)
}

/// Marks `file` deleted at `at_ms` in a record's `recordings` JSON; `None` if it is not there.
pub(crate) fn recordings_with_deleted(json: &str, file: &str, at_ms: i64) -> Option<String> {
    let mut recs = serde_json::from_str::<Vec<serde_json::Value>>(json).ok()?;
    let mut changed = false;
    for r in &mut recs {
        if r["file"] == file {
            r["deleted_ms"] = at_ms.into();
            changed = true;
        }
    }
    changed.then(|| serde_json::to_string(&recs).unwrap_or_else(|_| "[]".into()))
}

/// Which records to list.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Created at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Created before (unix ms).
    pub until_ms: Option<i64>,
    /// Queue name.
    pub queue: Option<String>,
    /// `browser`, `sip`, `callback`.
    pub kind: Option<String>,
    /// End reason.
    pub reason: Option<String>,
    /// Agent who talked.
    pub agent: Option<String>,
    /// Only ended calls (`true`) or only calls in progress (`false`).
    pub ended: Option<bool>,
    /// At most this many (default 1000, at most 100000).
    pub limit: Option<usize>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The table.
pub struct RecordStore {
    conn: Connection,
}

pub(crate) const COLUMNS: &str =
    "id, call, kind, context, queue, ivr_path, offers, agent, created_ms, \
    ivr_answered_ms, queued_ms, agent_answered_ms, ended_ms, wait_secs, talk_secs, end_reason, \
    hung_up_by, customer_quality, agent_quality, parties, recordings";

impl RecordStore {
    /// Opens (creating) the database at `path` (`:memory:` for a throwaway one).
    pub fn open(path: &Path) -> Result<RecordStore, RecordError> {
        let conn = Connection::open(path)
            .map_err(|e| RecordError::Failed(format!("cannot open {}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS cdrs (
                id TEXT PRIMARY KEY, call INTEGER NOT NULL, kind TEXT NOT NULL, context TEXT NOT NULL,
                queue TEXT, ivr_path TEXT NOT NULL, offers TEXT NOT NULL, agent TEXT,
                created_ms INTEGER NOT NULL, ivr_answered_ms INTEGER, queued_ms INTEGER,
                agent_answered_ms INTEGER, ended_ms INTEGER, wait_secs REAL, talk_secs REAL,
                end_reason TEXT, hung_up_by TEXT, customer_quality TEXT, agent_quality TEXT,
                parties TEXT, recordings TEXT
            );
            CREATE INDEX IF NOT EXISTS cdrs_created ON cdrs(created_ms);",
        )?;
        // Databases from before parties (and recordings) were recorded get the columns (NULL for
        // old rows).
        for column in ["parties", "recordings"] {
            let has = conn
                .prepare("SELECT 1 FROM pragma_table_info('cdrs') WHERE name = ?1")?
                .exists([column])?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE cdrs ADD COLUMN {column} TEXT"))?;
            }
        }
        super::webhooks::create(&conn)?;
        Ok(RecordStore { conn })
    }

    /// Writes (inserts or replaces) a record.
    pub fn upsert(&self, r: &CallRecord) -> Result<(), RecordError> {
        let json = |v: &dyn erased::Json| v.json();
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO cdrs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
                 ON CONFLICT(id) DO UPDATE SET queue = excluded.queue, ivr_path = excluded.ivr_path,
                 offers = excluded.offers, agent = excluded.agent, ivr_answered_ms = excluded.ivr_answered_ms,
                 queued_ms = excluded.queued_ms, agent_answered_ms = excluded.agent_answered_ms,
                 ended_ms = excluded.ended_ms, wait_secs = excluded.wait_secs, talk_secs = excluded.talk_secs,
                 end_reason = excluded.end_reason, hung_up_by = excluded.hung_up_by,
                 customer_quality = excluded.customer_quality, agent_quality = excluded.agent_quality,
                 parties = excluded.parties, recordings = excluded.recordings"
            ))?
            .execute(params![
                r.id,
                r.call as i64,
                r.kind,
                json(&r.context),
                r.queue,
                json(&r.ivr_path),
                json(&r.offers),
                r.agent,
                r.created_ms,
                r.ivr_answered_ms,
                r.queued_ms,
                r.agent_answered_ms,
                r.ended_ms,
                r.wait_secs,
                r.talk_secs,
                r.end_reason,
                r.hung_up_by,
                r.customer_quality.map(|q| json(&q)),
                r.agent_quality.map(|q| json(&q)),
                json(&r.parties),
                json(&r.recordings),
            ])?;
        Ok(())
    }

    /// Marks recording `file` of call `call` deleted at `at_ms` (`deleted_ms` in `recordings`).
    pub fn mark_recording_deleted(
        &self,
        call: u64,
        file: &str,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        let rows: Vec<(String, String)> = {
            let mut st = self.conn.prepare(
                "SELECT id, recordings FROM cdrs WHERE call = ?1 AND recordings IS NOT NULL",
            )?;
            let rows = st.query_map(params![call as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, json) in rows {
            if let Some(text) = recordings_with_deleted(&json, file, at_ms) {
                self.conn.execute(
                    "UPDATE cdrs SET recordings = ?1 WHERE id = ?2",
                    params![text, id],
                )?;
            }
        }
        Ok(())
    }

    /// Ends the records a previous run left open (the process died with calls in progress: a
    /// crash, a kill, a power cut): end reason `interrupted`, hung up by the gateway, `ended_ms`
    /// the last milestone the record reached (when the process died is unknown; offers still
    /// ringing become `cancelled`, as for any end), and a `call.ended` webhook each (record and
    /// event in one transaction, as every write). Returns how many.
    pub fn close_interrupted(&self, urls: &[String]) -> Result<usize, RecordError> {
        let open: Vec<serde_json::Value> = {
            let mut st = self.conn.prepare(&format!(
                "SELECT {COLUMNS} FROM cdrs WHERE ended_ms IS NULL"
            ))?;
            let rows = st.query_map([], row)?;
            rows.collect::<Result<_, _>>()?
        };
        let count = open.len();
        for r in open {
            let rec = interrupted(r)?;
            self.write_event(&rec, "call.ended", urls)?;
        }
        Ok(count)
    }

    /// Writes a record and queues its webhook event, in one transaction.
    pub fn write_event(
        &self,
        r: &CallRecord,
        event: &str,
        urls: &[String],
    ) -> Result<(), RecordError> {
        let tx = self.conn.unchecked_transaction()?;
        self.upsert(r)?;
        if !urls.is_empty() {
            let body = serde_json::json!({"event": event, "at_ms": super::now_ms(), "call": r})
                .to_string();
            super::webhooks::enqueue(&self.conn, urls, event, &body, super::now_ms())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records matching `f`, oldest first.
    pub fn query(&self, f: &Filter) -> Result<Vec<serde_json::Value>, RecordError> {
        let limit = f.limit.unwrap_or(1000).min(100_000) as i64;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM cdrs WHERE (?1 IS NULL OR created_ms >= ?1) AND (?2 IS NULL OR created_ms < ?2)
             AND (?3 IS NULL OR queue = ?3) AND (?4 IS NULL OR kind = ?4) AND (?5 IS NULL OR end_reason = ?5)
             AND (?6 IS NULL OR agent = ?6) AND (?7 IS NULL OR (ended_ms IS NOT NULL) = ?7)
             ORDER BY created_ms, id LIMIT ?8"
        ))?;
        let rows = st.query_map(
            params![f.since_ms, f.until_ms, f.queue, f.kind, f.reason, f.agent, f.ended, limit],
            row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The CSV columns, in order (nested values as JSON text).
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "call",
    "kind",
    "context",
    "queue",
    "ivr_path",
    "offers",
    "agent",
    "created_ms",
    "ivr_answered_ms",
    "queued_ms",
    "agent_answered_ms",
    "ended_ms",
    "wait_secs",
    "talk_secs",
    "end_reason",
    "hung_up_by",
    "customer_quality",
    "agent_quality",
    "parties",
    "recordings",
];

/// RFC 4180 CSV of `rows` (as `query` returns them), with a header line.
pub fn to_csv(rows: &[serde_json::Value]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        let cells: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|c| {
                let text = match &r[*c] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                // Formula-looking cells are prefixed so spreadsheets do not run them.
                let text = if text.starts_with(['=', '+', '-', '@'])
                    && !c.ends_with("_ms")
                    && !c.ends_with("_secs")
                {
                    format!("'{text}")
                } else {
                    text
                };
                if text.contains([',', '"', '\r', '\n']) {
                    format!("\"{}\"", text.replace('"', "\"\""))
                } else {
                    text
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn row(r: &Row<'_>) -> rusqlite::Result<serde_json::Value> {
    let parse = |s: Option<String>| -> serde_json::Value {
        s.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    Ok(serde_json::json!({
        "id": r.get::<_, String>(0)?,
        "call": r.get::<_, i64>(1)?,
        "kind": r.get::<_, String>(2)?,
        "context": parse(r.get(3)?),
        "queue": r.get::<_, Option<String>>(4)?,
        "ivr_path": parse(r.get(5)?),
        "offers": parse(r.get(6)?),
        "agent": r.get::<_, Option<String>>(7)?,
        "created_ms": r.get::<_, i64>(8)?,
        "ivr_answered_ms": r.get::<_, Option<i64>>(9)?,
        "queued_ms": r.get::<_, Option<i64>>(10)?,
        "agent_answered_ms": r.get::<_, Option<i64>>(11)?,
        "ended_ms": r.get::<_, Option<i64>>(12)?,
        "wait_secs": r.get::<_, Option<f64>>(13)?,
        "talk_secs": r.get::<_, Option<f64>>(14)?,
        "end_reason": r.get::<_, Option<String>>(15)?,
        "hung_up_by": r.get::<_, Option<String>>(16)?,
        "customer_quality": parse(r.get(17)?),
        "agent_quality": parse(r.get(18)?),
        "parties": parse(r.get(19)?),
        "recordings": parse(r.get(20)?),
    }))
}

mod erased {
    /// Anything serialisable, as JSON text (for the TEXT columns).
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    #[test]
    fn a_deleted_recording_is_marked_in_its_record() {
        let s = RecordStore::open(Path::new(":memory:")).unwrap();
        let mut r = CallRecord::new(77, "browser", Map::new(), 1_000);
        for file in ["/r/77.wav", "/r/77-2.wav"] {
            r.recordings.push(crate::records::cdr::RecordingRecord {
                file: file.into(),
                started_ms: 1_000,
                duration_secs: Some(1.0),
                paused_ms: Vec::new(),
                error: None,
                deleted_ms: None,
                recorder: None,
                recorder_error: None,
            });
        }
        s.upsert(&r).unwrap();
        s.mark_recording_deleted(77, "/r/77-2.wav", 9_000).unwrap();
        s.mark_recording_deleted(78, "/r/78.wav", 9_000).unwrap();
        let rows = s.query(&Filter::default()).unwrap();
        assert!(rows[0]["recordings"][0]["deleted_ms"].is_null());
        assert_eq!(rows[0]["recordings"][1]["deleted_ms"], 9_000);
    }

    #[test]
    fn milestones_update_one_row_filters_and_csv() {
        let s = RecordStore::open(Path::new(":memory:")).unwrap();
        let mut ctx = Map::new();
        ctx.insert("name".into(), json!("Lee, \"Ann\""));
        let mut a = CallRecord::new(1, "browser", ctx, 1_000);
        s.upsert(&a).unwrap();
        a.queued("support", 2_000);
        a.offered("2001", 2_100);
        a.agent_answered("2001", 3_000);
        a.ended("agent_hangup", &["main".into()], 10_000);
        s.upsert(&a).unwrap();
        let mut b = CallRecord::new(2, "sip", Map::new(), 5_000);
        b.ended("=cmd|' /C calc'!A0", &[], 6_000);
        s.upsert(&b).unwrap();

        let all = s.query(&Filter::default()).unwrap();
        assert_eq!(all.len(), 2, "one row per call");
        assert_eq!(all[0]["talk_secs"], 7.0);
        assert_eq!(all[0]["offers"][0]["outcome"], "answered");
        assert_eq!(
            s.query(&Filter {
                queue: Some("support".into()),
                ..Default::default()
            })
            .unwrap()
            .len(),
            1
        );
        assert_eq!(
            s.query(&Filter {
                since_ms: Some(4_000),
                ..Default::default()
            })
            .unwrap()[0]["call"],
            2
        );
        assert_eq!(
            s.query(&Filter {
                kind: Some("sip".into()),
                ..Default::default()
            })
            .unwrap()
            .len(),
            1
        );
        assert_eq!(
            s.query(&Filter {
                reason: Some("agent_hangup".into()),
                ..Default::default()
            })
            .unwrap()
            .len(),
            1
        );

        let csv = to_csv(&all);
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("id,call,kind,context,"));
        assert!(csv.contains(r#""{""name"":""Lee, \""Ann\""""}""#), "{csv}");
        assert!(csv.contains(",'=cmd|"), "a formula is defused: {csv}");
    }

    #[test]
    fn records_left_open_by_a_dead_process_are_ended_as_interrupted_on_open() {
        let dir = std::env::temp_dir().join(format!("c2c-int-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("records.db");
        {
            let s = RecordStore::open(&db).unwrap();
            // One finished call, one that was talking and one waiting when the process died.
            let mut done = CallRecord::new(1, "sip", Map::new(), 1_000);
            done.ended("customer_hangup", &[], 2_000);
            s.upsert(&done).unwrap();
            let mut talking = CallRecord::new(2, "browser", Map::new(), 1_000);
            talking.queued("support", 3_000);
            talking.agent_answered("2001", 5_000);
            s.upsert(&talking).unwrap();
            let mut waiting = CallRecord::new(3, "sip", Map::new(), 1_000);
            waiting.media_flowing(1_500);
            waiting.queued("support", 4_000);
            s.upsert(&waiting).unwrap();
        } // the "crash": nothing else was written
        let s = RecordStore::open(&db).unwrap();
        let hooks = vec!["http://crm.invalid/hook".to_string()];
        assert_eq!(s.close_interrupted(&hooks).unwrap(), 2);
        assert_eq!(s.close_interrupted(&hooks).unwrap(), 0, "only once");
        let rows = s.query(&Filter::default()).unwrap();
        let by_call = |c: i64| rows.iter().find(|r| r["call"] == c).unwrap();
        assert_eq!(by_call(1)["end_reason"], "customer_hangup", "untouched");
        let t = by_call(2);
        assert_eq!(
            (t["end_reason"].as_str(), t["ended_ms"].as_i64()),
            (Some("interrupted"), Some(5_000))
        );
        assert_eq!(
            (t["wait_secs"].as_f64(), t["talk_secs"].as_f64()),
            (Some(2.0), Some(0.0))
        );
        let w = by_call(3);
        assert_eq!(
            (w["hung_up_by"].as_str(), w["ended_ms"].as_i64()),
            (Some("gateway"), Some(4_000))
        );
        assert_eq!(w["ivr_answered_ms"], 1_500, "milestones kept");
        // The CRM hears the end of both calls.
        let events: i64 = s
            .conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE event = 'call.ended'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(events, 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
