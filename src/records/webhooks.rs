//! Webhooks: call events POSTed as JSON to configured URLs, from a durable outbox.
//!
//! The records thread writes each event into the `outbox` table in the same transaction as the
//! call record, so an event exists exactly when its record does. The delivery task sends each URL's
//! events strictly in order (oldest first; a failing receiver holds the line, so events of a call
//! never overtake each other), signs each body (`X-Clicktocall-Signature: sha256=<hex HMAC>`), names
//! it (`X-Clicktocall-Event-Id`, for receivers to drop a repeat after a crash), and retries with
//! exponential backoff (1 s doubling to 60 s). A restart resumes from the table.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

/// Creates the outbox table.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, event TEXT NOT NULL,
            body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at_ms INTEGER NOT NULL,
            delivered_ms INTEGER
        );
        CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(url, delivered_ms, id);",
    )
}

/// Queues `body` for every URL (inside the caller's transaction).
pub fn enqueue(
    conn: &Connection,
    urls: &[String],
    event: &str,
    body: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO outbox (url, event, body, next_at_ms) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for url in urls {
        st.execute(params![url, event, body, now_ms])?;
    }
    Ok(())
}

/// The backoff after `attempts` failures.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(6)).min(Duration::from_secs(60))
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// An `http://host:port/path` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port`.
    pub authority: String,
    /// `/path?query`.
    pub path: String,
}

/// Parses a webhook URL (plain `http://`: put a TLS-terminating relay in front for `https`).
pub fn parse_url(url: &str) -> Result<HttpUrl, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
        return Err(format!("{url:?} is not a valid http URL"));
    }
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(HttpUrl {
        authority,
        path: path.to_string(),
    })
}

/// One POST; `Ok` on a 2xx.
async fn post(url: &HttpUrl, headers: &[(&str, String)], body: &str) -> Result<(), String> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(&url.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", url.authority))?;
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: clicktocall/{}\r\n",
            url.path,
            url.authority,
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = vec![0u8; 64];
        let n = s.read(&mut head).await.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        let code: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.get(..3))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {line:?}"))?;
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP {code}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

struct Pending {
    id: i64,
    url: String,
    event: String,
    body: String,
    attempts: u32,
    next_at_ms: i64,
}

/// Delivers the outbox of the database at `path` until `stop`; `wake` is notified when new
/// events are queued.
pub async fn deliver(
    path: std::path::PathBuf,
    secret: String,
    wake: std::sync::Arc<tokio::sync::Notify>,
    stop: tokio_util::sync::CancellationToken,
) {
    let conn = match Connection::open(&path) {
        Ok(c) => c,
        Err(e) => return warn!(error = %e, "webhook outbox unavailable"),
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    loop {
        let now = super::now_ms();
        // The head of each URL's line.
        let heads: Vec<Pending> = match heads(&conn) {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "webhook outbox read failed");
                Vec::new()
            }
        };
        let mut next: Option<i64> = None;
        for p in heads {
            if p.next_at_ms > now {
                next = Some(next.map_or(p.next_at_ms, |n| n.min(p.next_at_ms)));
                continue;
            }
            let result = match parse_url(&p.url) {
                Ok(u) => {
                    let sig = signature(&secret, &p.body);
                    post(
                        &u,
                        &[
                            ("X-Clicktocall-Event", p.event.clone()),
                            ("X-Clicktocall-Event-Id", p.id.to_string()),
                            ("X-Clicktocall-Signature", sig),
                        ],
                        &p.body,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            let done = super::now_ms();
            match result {
                Ok(()) => {
                    debug!(id = p.id, url = %p.url, event = %p.event, "webhook delivered");
                    let _ = conn.execute(
                        "UPDATE outbox SET delivered_ms = ?2, attempts = attempts + 1 WHERE id = ?1",
                        params![p.id, done],
                    );
                    next = Some(done);
                }
                Err(e) => {
                    let wait = backoff(p.attempts);
                    if p.attempts == 0 || p.attempts % 5 == 4 {
                        info!(id = p.id, url = %p.url, error = %e, retry_in_ms = wait.as_millis() as u64, "webhook not delivered; will retry");
                    }
                    let at = done + wait.as_millis() as i64;
                    let _ = conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_at_ms = ?2 WHERE id = ?1",
                        params![p.id, at],
                    );
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        let sleep = match next {
            Some(at) => Duration::from_millis((at - super::now_ms()).clamp(0, 60_000) as u64),
            None => Duration::from_secs(60),
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            _ = stop.cancelled() => break,
        }
    }
}

fn heads(conn: &Connection) -> rusqlite::Result<Vec<Pending>> {
    let mut st = conn.prepare_cached(
        "SELECT id, url, event, body, attempts, next_at_ms FROM outbox
         WHERE id IN (SELECT MIN(id) FROM outbox WHERE delivered_ms IS NULL GROUP BY url)",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Pending {
            id: r.get(0)?,
            url: r.get(1)?,
            event: r.get(2)?,
            body: r.get(3)?,
            attempts: r.get(4)?,
            next_at_ms: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Events still undelivered (for tests and the drain).
pub fn undelivered(path: &Path) -> rusqlite::Result<u64> {
    let conn = Connection::open(path)?;
    conn.query_row(
        "SELECT COUNT(*) FROM outbox WHERE delivered_ms IS NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|n| n.unwrap_or(0).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_backoff_and_signature() {
        assert_eq!(
            parse_url("http://crm.example.com/hooks/c2c?x=1").unwrap(),
            HttpUrl {
                authority: "crm.example.com:80".into(),
                path: "/hooks/c2c?x=1".into()
            }
        );
        assert_eq!(parse_url("http://127.0.0.1:9000").unwrap().path, "/");
        assert!(parse_url("https://crm.example.com/").is_err());
        assert!(parse_url("http://a b/").is_err());
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(60));
        // Python: hmac.new(b"hook-secret", b'{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("hook-secret", "{\"a\":1}"),
            "sha256=eb8ded9d103e519ca7e2ab1be0df069c649c61531b59a9dcbf2fa2e799fb1fa6"
        );
    }
}
