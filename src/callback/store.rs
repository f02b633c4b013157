//! Callback requests in SQLite (one file, WAL, synchronous writes) or PostgreSQL (shared by the
//! nodes, [`super::pg`]): every request is stored before it is acknowledged, every state change
//! as it happens, so a restart finds each pending or scheduled callback again. Due callbacks are
//! claimed by one node at a time (`owner`, `lease_until`): see [`CallbackBackend::claim`].

use serde::Serialize;
use serde_json::{Map, Value};
use std::path::Path;

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

    pub(crate) fn parse(s: &str) -> CallbackState {
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
#[error("callback store: {message}")]
pub struct StoreError {
    message: String,
    unavailable: bool,
}

impl StoreError {
    /// A failed statement.
    pub fn failed(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            unavailable: false,
        }
    }

    /// The database server cannot be reached (PostgreSQL down): nothing was stored.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::failed(e.to_string())
    }
}

impl From<crate::storage::pg::PgError> for StoreError {
    fn from(e: crate::storage::pg::PgError) -> Self {
        StoreError {
            message: e.message,
            unavailable: e.unavailable,
        }
    }
}

/// What a node asks of [`Store::claim`]: the due callbacks it may dial now, and the rules for
/// callbacks whose node stopped renewing its lease.
#[derive(Debug, Clone)]
pub struct Claim {
    /// This node (`cluster.node_id`).
    pub owner: String,
    /// Unix seconds now.
    pub now: u64,
    /// The lease of what it claims runs until then (renewed while dialling or in a call).
    pub lease_until: u64,
    /// At most this many (the node's free dialling slots).
    pub limit: usize,
    /// `callback.retries`: an interrupted attempt past them fails.
    pub retries: u32,
    /// `callback.retry_delay_secs`: an interrupted attempt is retried that long after.
    pub retry_delay_secs: u64,
}

/// What a claim did.
#[derive(Debug, Default)]
pub struct Claimed {
    /// Due callbacks now `dialing`, owned by the claiming node (attempts counted), oldest due first.
    pub dial: Vec<Callback>,
    /// Callbacks whose node's lease ran out in `dialing` / `in_call` (it died): `scheduled` again
    /// after the retry delay with reason `interrupted`, or `failed` when out of attempts.
    pub taken_over: Vec<Callback>,
}

/// What the callback service needs of a database: SQLite ([`super::sqlite::SqliteCallbacks`]) or PostgreSQL
/// ([`super::pg::PgCallbacks`]), the same table and the same SQL (up to placeholders and row
/// locks). Every call blocks for one round trip (bounded).
pub trait CallbackBackend: Send + Sync {
    /// Stores a new request.
    fn insert(&self, cb: &Callback) -> Result<(), StoreError>;
    /// Writes a request's progress (whoever owns it).
    fn update(&self, cb: &Callback) -> Result<(), StoreError>;
    /// One request.
    fn get(&self, id: &str) -> Result<Option<Callback>, StoreError>;
    /// Requests still open, oldest first.
    fn open_requests(&self) -> Result<Vec<Callback>, StoreError>;
    /// The latest requests, newest first, optionally in one state.
    fn list(&self, state: Option<&str>, limit: usize) -> Result<Vec<Callback>, StoreError>;
    /// The open request for `number`, if any (duplicates join it).
    fn open_for_number(&self, number: &str) -> Result<Option<Callback>, StoreError>;
    /// How many requests are open (the fraud guard's cap), on every node.
    fn count_open(&self) -> Result<usize, StoreError>;
    /// Cancels `id` if it is still `scheduled` (atomically against a claim).
    fn cancel(&self, id: &str, now: u64) -> Result<Option<Callback>, StoreError>;
    /// Takes over expired leases, then claims due callbacks (see [`Claim`]).
    fn claim(&self, c: &Claim) -> Result<Claimed, StoreError>;
    /// Writes the progress of a callback `owner` holds, with its new lease (`None`: it is done
    /// or scheduled again); `false` if `owner` no longer holds it (taken over).
    fn save_owned(
        &self,
        cb: &Callback,
        owner: &str,
        lease: Option<u64>,
    ) -> Result<bool, StoreError>;
    /// Extends the lease of every callback `owner` is dialling or in a call with.
    fn renew(&self, owner: &str, lease_until: u64) -> Result<usize, StoreError>;
    /// At start: `owner`'s callbacks left `dialing` / `in_call` by its previous run (and those
    /// of a database from before leases) go back to `scheduled`, reason `interrupted`.
    fn recover(&self, owner: &str, now: u64) -> Result<Vec<Callback>, StoreError>;
}

/// The callback table, in SQLite or PostgreSQL (by the `database` setting).
pub struct Store {
    backend: Box<dyn CallbackBackend>,
}

impl std::ops::Deref for Store {
    type Target = dyn CallbackBackend;
    fn deref(&self) -> &Self::Target {
        self.backend.as_ref()
    }
}

impl Store {
    /// Opens the database `setting`: a SQLite path (`:memory:` for a throwaway one), or a
    /// `postgres://` URL (connected on first use; a bad URL is an error now).
    pub fn open(setting: &Path) -> Result<Store, StoreError> {
        let backend: Box<dyn CallbackBackend> = match crate::storage::Database::parse(setting) {
            crate::storage::Database::Sqlite(path) => {
                Box::new(super::sqlite::SqliteCallbacks::open(&path)?)
            }
            crate::storage::Database::Postgres(url) => {
                Box::new(super::pg::PgCallbacks::open(&url)?)
            }
        };
        Ok(Store { backend })
    }

    /// A store over any backend (tests use fakes).
    pub fn with(backend: Box<dyn CallbackBackend>) -> Store {
        Store { backend }
    }
}

/// The columns, in the order [`row`] reads them.
pub(crate) const COLUMNS: &str =
    "id, number, context, verified, queue, site, not_before, state, attempts, reason, created, updated";

/// Open states, as SQL.
pub(crate) const OPEN: &str = "('scheduled', 'dialing', 'in_call')";

/// The claim of due callbacks (`lock`: PostgreSQL's row locks, empty for SQLite, whose writer
/// lock serialises the statement): $1 owner, $2 lease until, $3 now, $4 limit.
pub(crate) fn claim_sql(lock: &str) -> String {
    format!(
        "UPDATE callbacks SET state = 'dialing', attempts = attempts + 1, owner = $1,
         lease_until = CAST($2 AS BIGINT), updated = CAST($3 AS BIGINT)
         WHERE id IN (SELECT id FROM callbacks WHERE state = 'scheduled' AND not_before <= CAST($3 AS BIGINT)
                      ORDER BY not_before, created LIMIT CAST($4 AS BIGINT) {lock})
         RETURNING {COLUMNS}"
    )
}

/// The take-over of expired leases: $1 now, $2 retries, $3 retry delay.
pub(crate) fn take_over_sql() -> String {
    format!(
        "UPDATE callbacks SET
           state = CASE WHEN attempts <= CAST($2 AS INTEGER) THEN 'scheduled' ELSE 'failed' END,
           not_before = CASE WHEN attempts <= CAST($2 AS INTEGER)
                        THEN CAST($1 AS BIGINT) + CAST($3 AS BIGINT) ELSE not_before END,
           reason = 'interrupted', owner = NULL, lease_until = NULL, updated = CAST($1 AS BIGINT)
         WHERE state IN ('dialing', 'in_call') AND lease_until < CAST($1 AS BIGINT)
         RETURNING {COLUMNS}"
    )
}

/// A saved step of an owned callback: $1 id, $2 state, $3 attempts, $4 reason, $5 not before,
/// $6 updated, $7 lease, $8 owner.
pub(crate) const SAVE_OWNED: &str = "UPDATE callbacks SET state = $2, attempts = $3, reason = $4,
    not_before = $5, updated = $6, lease_until = $7
    WHERE id = $1 AND owner = $8 AND state IN ('dialing', 'in_call')";

/// $1 owner, $2 now.
pub(crate) fn recover_sql() -> String {
    format!(
        "UPDATE callbacks SET state = 'scheduled', reason = 'interrupted', owner = NULL,
           lease_until = NULL, updated = $2
         WHERE state IN ('dialing', 'in_call') AND (owner = $1 OR owner IS NULL)
         RETURNING {COLUMNS}"
    )
}

/// $1 id, $2 now.
pub(crate) fn cancel_sql() -> String {
    format!(
        "UPDATE callbacks SET state = 'cancelled', updated = $2 WHERE id = $1 AND state = 'scheduled'
         RETURNING {COLUMNS}"
    )
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

    fn claim(owner: &str, now: u64, limit: usize) -> Claim {
        Claim {
            owner: owner.into(),
            now,
            lease_until: now + 30,
            limit,
            retries: 1,
            retry_delay_secs: 60,
        }
    }

    /// Two nodes on one database (two connections to one file, as two PostgreSQL sessions).
    fn two_nodes() -> (Store, Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("c2c-claim-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cb.db");
        (
            Store::open(&path).unwrap(),
            Store::open(&path).unwrap(),
            dir,
        )
    }

    #[test]
    fn a_due_callback_is_claimed_by_one_node_only_and_never_before_its_time() {
        let (a, b, dir) = two_nodes();
        let mut early = sample("cb-early", 10);
        early.not_before = 100;
        let mut later = sample("cb-later", 20);
        later.not_before = 200;
        a.insert(&early).unwrap();
        a.insert(&later).unwrap();
        assert!(
            a.claim(&claim("1", 99, 10)).unwrap().dial.is_empty(),
            "not due"
        );
        let got = a.claim(&claim("1", 100, 10)).unwrap();
        assert_eq!(got.dial.len(), 1);
        let c = &got.dial[0];
        assert_eq!(
            (c.id.as_str(), c.state, c.attempts),
            ("cb-early", CallbackState::Dialing, 1)
        );
        assert!(
            b.claim(&claim("2", 150, 10)).unwrap().dial.is_empty(),
            "taken"
        );
        // A node with no free slot claims nothing; the other takes it.
        assert!(a.claim(&claim("1", 250, 0)).unwrap().dial.is_empty());
        let got = b.claim(&claim("2", 250, 10)).unwrap();
        assert_eq!(got.dial[0].id, "cb-later");
        assert!(a.claim(&claim("1", 260, 10)).unwrap().dial.is_empty());
        assert_eq!(a.count_open().unwrap(), 2, "both dialling");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dead_nodes_lease_runs_out_and_another_node_retries_it_once() {
        let (a, b, dir) = two_nodes();
        a.insert(&sample("cb-1", 10)).unwrap(); // due at 1000
        let mut mine = a.claim(&claim("1", 1_000, 10)).unwrap().dial.remove(0);
        // Node 1 renews while it dials: nothing expires.
        assert_eq!(a.renew("1", 1_050).unwrap(), 1);
        let none = b.claim(&claim("2", 1_040, 10)).unwrap();
        assert!(none.taken_over.is_empty() && none.dial.is_empty());
        // Node 1 dies; its lease runs out at 1050. Node 2 takes the attempt over: scheduled
        // again after the retry delay (the dead node's call may still ring), never at once.
        let got = b.claim(&claim("2", 1_051, 10)).unwrap();
        assert!(got.dial.is_empty(), "not dialled twice at once");
        let t = &got.taken_over[0];
        assert_eq!(
            (t.state, t.reason.as_deref(), t.not_before, t.attempts),
            (CallbackState::Scheduled, Some("interrupted"), 1_111, 1)
        );
        assert!(b.claim(&claim("2", 1_110, 10)).unwrap().dial.is_empty());
        let again = b.claim(&claim("2", 1_111, 10)).unwrap().dial;
        assert_eq!((again.len(), again[0].attempts), (1, 2));
        // Node 1 coming back to life cannot write over node 2's attempt.
        mine.state = CallbackState::InCall;
        assert!(!a.save_owned(&mine, "1", Some(1_200)).unwrap());
        assert!(b.save_owned(&again[0], "2", Some(1_200)).unwrap());
        // Out of attempts (retries = 1): a second interruption fails it.
        let got = a.claim(&claim("1", 1_201, 10)).unwrap();
        assert_eq!(
            (got.taken_over[0].state, got.taken_over[0].reason.as_deref()),
            (CallbackState::Failed, Some("interrupted"))
        );
        assert_eq!(a.count_open().unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_restarted_node_gets_its_own_interrupted_callbacks_back_at_once() {
        let (a, b, dir) = two_nodes();
        a.insert(&sample("cb-1", 10)).unwrap();
        a.insert(&sample("cb-2", 20)).unwrap();
        a.claim(&claim("1", 1_000, 1)).unwrap();
        b.claim(&claim("2", 1_000, 1)).unwrap();
        let back = a.recover("1", 1_005).unwrap();
        assert_eq!(back.len(), 1, "only node 1's");
        assert_eq!(
            (back[0].state, back[0].reason.as_deref()),
            (CallbackState::Scheduled, Some("interrupted"))
        );
        assert_eq!(a.claim(&claim("1", 1_005, 1)).unwrap().dial.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cancel_duplicates_and_counts_see_every_nodes_requests() {
        let (a, b, dir) = two_nodes();
        a.insert(&sample("cb-1", 10)).unwrap();
        assert_eq!(
            b.open_for_number("+15550102000").unwrap().map(|c| c.id),
            Some("cb-1".into())
        );
        assert!(b.open_for_number("+15550109999").unwrap().is_none());
        assert_eq!(b.count_open().unwrap(), 1);
        let c = b.cancel("cb-1", 500).unwrap().unwrap();
        assert_eq!((c.state, c.updated), (CallbackState::Cancelled, 500));
        assert!(a.cancel("cb-1", 501).unwrap().is_none(), "only once");
        a.insert(&sample("cb-2", 20)).unwrap();
        a.claim(&claim("1", 1_000, 1)).unwrap();
        assert!(
            b.cancel("cb-2", 1_001).unwrap().is_none(),
            "not while dialling"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
