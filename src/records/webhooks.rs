//! Webhooks: call events POSTed as JSON to configured URLs, from a durable outbox.
//!
//! The records thread writes each event into the `outbox` table in the same transaction as the
//! call record, so an event exists exactly when its record does. The delivery task sends each URL's
//! events strictly in order (oldest first; a failing receiver holds the line, so events of a call
//! never overtake each other), signs each body (`X-Clicktocall-Signature: sha256=<hex HMAC>`), names
//! it (`X-Clicktocall-Event-Id`, for receivers to drop a repeat after a crash), and retries with
//! exponential backoff (1 s doubling to 60 s). A restart resumes from the table.
//!
//! `https://` URLs are verified against the system's CA bundle or `webhooks.ca_file` (rustls, ring;
//! no client certificate).

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;
use tracing::{debug, info, warn};

/// Where Debian (and most Linux distributions) keep the trusted CA certificates.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

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

/// An `http://` or `https://` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port`.
    pub authority: String,
    /// The host alone (TLS server name).
    pub host: String,
    /// `/path?query`.
    pub path: String,
    /// `https`.
    pub tls: bool,
}

/// Parses a webhook URL: `http://` or `https://`, host (name, IPv4 or `[IPv6]`), optional port.
pub fn parse_url(url: &str) -> Result<HttpUrl, String> {
    let (rest, tls, port) = if let Some(r) = url.strip_prefix("http://") {
        (r, false, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        (r, true, 443)
    } else {
        return Err(format!("{url:?}: webhook URLs are http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let bad = || format!("{url:?} is not a valid http(s) URL");
    if authority.is_empty() || authority.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
        return Err(bad());
    }
    // Host and port; an IPv6 literal is bracketed.
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), p.parse::<u16>().map_err(|_| bad())?),
            None if after.is_empty() => (h.to_string(), port),
            None => return Err(bad()),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| bad())?),
            None => (authority.to_string(), port),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(HttpUrl {
        authority,
        host,
        path: path.to_string(),
        tls,
    })
}

/// A TLS client for `https://` webhooks trusting the CA certificates in `ca_file` (PEM; the
/// system bundle when empty).
pub fn connector(ca_file: &Path) -> Result<TlsConnector, String> {
    let path = if ca_file.as_os_str().is_empty() {
        Path::new(SYSTEM_CA_BUNDLE)
    } else {
        ca_file
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::http::tls::read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no CA certificate found", path.display()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(std::sync::Arc::new(config)))
}

/// One POST; `Ok` on a 2xx. `tls` is needed for an `https://` URL.
async fn post(
    url: &HttpUrl,
    tls: Option<&TlsConnector>,
    headers: &[(&str, String)],
    body: &str,
) -> Result<(), String> {
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
    let attempt = async {
        let s = tokio::net::TcpStream::connect(&url.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", url.authority))?;
        if !url.tls {
            return exchange(s, &req).await;
        }
        let tls = tls.ok_or("https needs a TLS client (webhooks.ca_file)")?;
        let name = rustls_pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("{}: {e}", url.host))?;
        let s = tls
            .connect(name, s)
            .await
            .map_err(|e| format!("TLS with {}: {e}", url.authority))?;
        exchange(s, &req).await
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Writes the request, reads the status line.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, req: &str) -> Result<(), String> {
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
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
/// events are queued; `tls` serves `https://` URLs.
pub async fn deliver(
    path: std::path::PathBuf,
    secret: String,
    tls: Option<TlsConnector>,
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
                        tls.as_ref(),
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
                host: "crm.example.com".into(),
                path: "/hooks/c2c?x=1".into(),
                tls: false,
            }
        );
        assert_eq!(parse_url("http://127.0.0.1:9000").unwrap().path, "/");
        let https = parse_url("https://crm.example.com/c2c").unwrap();
        assert_eq!(
            (https.authority.as_str(), https.tls),
            ("crm.example.com:443", true)
        );
        let v6 = parse_url("https://[::1]:8443/x").unwrap();
        assert_eq!(
            (v6.authority.as_str(), v6.host.as_str()),
            ("[::1]:8443", "::1")
        );
        assert!(parse_url("ftp://crm.example.com/").is_err());
        assert!(parse_url("http://a b/").is_err());
        assert!(parse_url("http://crm:99999/").is_err());
        assert!(parse_url("https://[::1/").is_err());
        assert!(parse_url("http://:80/").is_err());
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(60));
        // Python: hmac.new(b"hook-secret", b'{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("hook-secret", "{\"a\":1}"),
            "sha256=eb8ded9d103e519ca7e2ab1be0df069c649c61531b59a9dcbf2fa2e799fb1fa6"
        );
    }

    /// A TLS receiver with the test certificate (localhost / 127.0.0.1): answers one request with
    /// 204, or fails the handshake; returns what it read.
    async fn tls_receiver() -> (u16, tokio::task::JoinHandle<Option<String>>) {
        use rustls_pki_types::pem::PemObject;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let certs: Vec<_> =
            rustls_pki_types::CertificateDer::pem_file_iter(dir.join("localhost-cert.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key =
            rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join("localhost-key.pem")).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (s, _) = listener.accept().await.ok()?;
            let mut s = acceptor.accept(s).await.ok()?;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&got).contains("\"a\":1}") {
                let n = s.read(&mut buf).await.ok()?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                .await
                .ok()?;
            s.shutdown().await.ok()?;
            Some(String::from_utf8_lossy(&got).into_owned())
        });
        (port, task)
    }

    #[tokio::test]
    async fn https_posts_to_a_verified_receiver_and_refuses_an_untrusted_one() {
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-ca.pem");
        let trusted = connector(&ca).unwrap();
        let headers = [("X-Clicktocall-Event", "call.ended".to_string())];

        // Trusted: delivered, by name and by IP address (both are in the certificate).
        for host in ["localhost", "127.0.0.1"] {
            let (port, rx) = tls_receiver().await;
            let url = parse_url(&format!("https://{host}:{port}/hook")).unwrap();
            post(&url, Some(&trusted), &headers, "{\"a\":1}")
                .await
                .unwrap_or_else(|e| panic!("{host}: {e}"));
            let got = rx.await.unwrap().expect("the receiver read the request");
            assert!(got.starts_with("POST /hook HTTP/1.1\r\n"), "{got}");
            assert!(got.contains("X-Clicktocall-Event: call.ended\r\n"), "{got}");
        }

        // A receiver whose certificate the configured CAs do not vouch for: not delivered (the
        // outbox keeps the event and retries). Trusting only the leaf itself, not its issuer,
        // is such a store.
        let leaf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/localhost-cert.pem");
        let untrusted = connector(&leaf).unwrap();
        let (port, rx) = tls_receiver().await;
        let url = parse_url(&format!("https://localhost:{port}/hook")).unwrap();
        let err = post(&url, Some(&untrusted), &headers, "{\"a\":1}")
            .await
            .unwrap_err();
        assert!(
            err.contains("certificate") || err.contains("issuer"),
            "{err}"
        );
        assert!(rx.await.unwrap().is_none(), "nothing reached the receiver");

        // Bad CA files are start-up errors, not silent failures.
        assert!(connector(Path::new("/nonexistent/ca.pem")).is_err());
        let empty = std::env::temp_dir().join(format!("c2c-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(connector(&empty)
            .err()
            .is_some_and(|e| e.contains("no CA certificate")));
        let _ = std::fs::remove_file(&empty);
    }
}
