//! The `cdrs` table in PostgreSQL: the same columns, filters and JSON as the SQLite store
//! ([`super::store::RecordStore`]), for several nodes writing to one database. Driven from the
//! records writer's thread through a [`PgConn`].

use super::cdr::CallRecord;
use super::store::{
    interrupted, recordings_with_deleted, Filter, RecordBackend, RecordError, COLUMNS,
};
use crate::storage::pg::{PgConn, PgError, Schema};
use serde_json::Value;
use tokio_postgres::Row;

/// The records' migrations (never edit a released step: add one).
pub static SCHEMA: Schema = Schema {
    store: "records",
    steps: &["CREATE TABLE IF NOT EXISTS cdrs (
            id TEXT PRIMARY KEY, call BIGINT NOT NULL, kind TEXT NOT NULL, context TEXT NOT NULL,
            queue TEXT, ivr_path TEXT NOT NULL, offers TEXT NOT NULL, agent TEXT,
            created_ms BIGINT NOT NULL, ivr_answered_ms BIGINT, queued_ms BIGINT,
            agent_answered_ms BIGINT, ended_ms BIGINT, wait_secs DOUBLE PRECISION,
            talk_secs DOUBLE PRECISION, end_reason TEXT, hung_up_by TEXT, customer_quality TEXT,
            agent_quality TEXT, parties TEXT, recordings TEXT
        );
        CREATE INDEX IF NOT EXISTS cdrs_created ON cdrs(created_ms);
        CREATE INDEX IF NOT EXISTS cdrs_open ON cdrs(call) WHERE ended_ms IS NULL;"],
};

/// Bits of a call id below the node number (see `call::id`).
const NODE_SHIFT: i32 = 43;

/// Call records in PostgreSQL. Webhooks are not kept here (the config refuses them with a
/// PostgreSQL records database), so `urls` are always empty.
pub struct PgRecords {
    conn: PgConn,
    node: i64,
}

impl From<PgError> for RecordError {
    fn from(e: PgError) -> Self {
        if e.unavailable {
            RecordError::Unavailable(e.message)
        } else {
            RecordError::Failed(e.message)
        }
    }
}

impl PgRecords {
    /// The store at `url`, for node `node` (its own interrupted calls only). Connects lazily.
    pub fn new(url: &str, node: u16) -> Result<PgRecords, RecordError> {
        Ok(PgRecords {
            conn: PgConn::new(url, &SCHEMA)?,
            node: i64::from(node),
        })
    }

    fn upsert_sql() -> String {
        let values: Vec<String> = (1..=21).map(|i| format!("${i}")).collect();
        format!(
            "INSERT INTO cdrs ({COLUMNS}) VALUES ({})
             ON CONFLICT (id) DO UPDATE SET queue = excluded.queue, ivr_path = excluded.ivr_path,
             offers = excluded.offers, agent = excluded.agent, ivr_answered_ms = excluded.ivr_answered_ms,
             queued_ms = excluded.queued_ms, agent_answered_ms = excluded.agent_answered_ms,
             ended_ms = excluded.ended_ms, wait_secs = excluded.wait_secs, talk_secs = excluded.talk_secs,
             end_reason = excluded.end_reason, hung_up_by = excluded.hung_up_by,
             customer_quality = excluded.customer_quality, agent_quality = excluded.agent_quality,
             parties = excluded.parties, recordings = excluded.recordings",
            values.join(", ")
        )
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl RecordBackend for PgRecords {
    fn write_event(
        &mut self,
        r: &CallRecord,
        _event: &str,
        _urls: &[String],
    ) -> Result<(), RecordError> {
        let sql = Self::upsert_sql();
        let call = r.call as i64;
        let (context, ivr_path, offers) = (json(&r.context), json(&r.ivr_path), json(&r.offers));
        let customer = r.customer_quality.map(|q| json(&q));
        let agent = r.agent_quality.map(|q| json(&q));
        let (parties, recordings) = (json(&r.parties), json(&r.recordings));
        self.conn.run(async |c| {
            c.execute(
                &sql,
                &[
                    &r.id,
                    &call,
                    &r.kind,
                    &context,
                    &r.queue,
                    &ivr_path,
                    &offers,
                    &r.agent,
                    &r.created_ms,
                    &r.ivr_answered_ms,
                    &r.queued_ms,
                    &r.agent_answered_ms,
                    &r.ended_ms,
                    &r.wait_secs,
                    &r.talk_secs,
                    &r.end_reason,
                    &r.hung_up_by,
                    &customer,
                    &agent,
                    &parties,
                    &recordings,
                ],
            )
            .await
            .map(drop)
        })?;
        Ok(())
    }

    fn query(&mut self, f: &Filter) -> Result<Vec<Value>, RecordError> {
        let limit = f.limit.unwrap_or(1000).min(100_000) as i64;
        let sql = format!(
            "SELECT {COLUMNS} FROM cdrs WHERE ($1::BIGINT IS NULL OR created_ms >= $1)
             AND ($2::BIGINT IS NULL OR created_ms < $2) AND ($3::TEXT IS NULL OR queue = $3)
             AND ($4::TEXT IS NULL OR kind = $4) AND ($5::TEXT IS NULL OR end_reason = $5)
             AND ($6::TEXT IS NULL OR agent = $6)
             AND ($7::BOOLEAN IS NULL OR (ended_ms IS NOT NULL) = $7)
             ORDER BY created_ms, id COLLATE \"C\" LIMIT $8"
        );
        let rows = self.conn.run(async |c| {
            c.query(
                &sql,
                &[
                    &f.since_ms,
                    &f.until_ms,
                    &f.queue,
                    &f.kind,
                    &f.reason,
                    &f.agent,
                    &f.ended,
                    &limit,
                ],
            )
            .await
        })?;
        Ok(rows.iter().map(row).collect())
    }

    fn mark_recording_deleted(
        &mut self,
        call: u64,
        file: &str,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        let call = call as i64;
        self.conn.run(async |c| {
            let rows = c
                .query(
                    "SELECT id, recordings FROM cdrs WHERE call = $1 AND recordings IS NOT NULL",
                    &[&call],
                )
                .await?;
            for r in rows {
                let (id, recs): (String, String) = (r.get(0), r.get(1));
                if let Some(text) = recordings_with_deleted(&recs, file, at_ms) {
                    c.execute(
                        "UPDATE cdrs SET recordings = $1 WHERE id = $2",
                        &[&text, &id],
                    )
                    .await?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Only this node's open records (the node number is in the call id): the other nodes' calls
    /// are alive.
    fn close_interrupted(&mut self, urls: &[String]) -> Result<usize, RecordError> {
        let node = self.node as u16;
        self.close_node(node, urls)
    }

    /// A dead node's open records (the cluster's ACD leader found its heartbeat gone).
    fn close_node(&mut self, node: u16, urls: &[String]) -> Result<usize, RecordError> {
        let node = i64::from(node);
        let sql = format!(
            "SELECT {COLUMNS} FROM cdrs WHERE ended_ms IS NULL AND (call >> {NODE_SHIFT}) = $1"
        );
        let open = self.conn.run(async |c| c.query(&sql, &[&node]).await)?;
        let count = open.len();
        for r in open.iter().map(row) {
            let rec = interrupted(r)?;
            self.write_event(&rec, "call.ended", urls)?;
        }
        Ok(count)
    }
}

fn row(r: &Row) -> Value {
    let parse = |i: usize| -> Value {
        r.get::<_, Option<String>>(i)
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    };
    serde_json::json!({
        "id": r.get::<_, String>(0),
        "call": r.get::<_, i64>(1),
        "kind": r.get::<_, String>(2),
        "context": parse(3),
        "queue": r.get::<_, Option<String>>(4),
        "ivr_path": parse(5),
        "offers": parse(6),
        "agent": r.get::<_, Option<String>>(7),
        "created_ms": r.get::<_, i64>(8),
        "ivr_answered_ms": r.get::<_, Option<i64>>(9),
        "queued_ms": r.get::<_, Option<i64>>(10),
        "agent_answered_ms": r.get::<_, Option<i64>>(11),
        "ended_ms": r.get::<_, Option<i64>>(12),
        "wait_secs": r.get::<_, Option<f64>>(13),
        "talk_secs": r.get::<_, Option<f64>>(14),
        "end_reason": r.get::<_, Option<String>>(15),
        "hung_up_by": r.get::<_, Option<String>>(16),
        "customer_quality": parse(17),
        "agent_quality": parse(18),
        "parties": parse(19),
        "recordings": parse(20),
    })
}
