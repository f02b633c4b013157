//! The UDP socket rsipstack reads through: every datagram is judged by [`super::validate::check`]
//! before the stack sees it. Malformed requests are answered (400/501/513) from here, the rest dropped,
//! each with a log line; only well-formed messages reach the transaction layer, and legal ones
//! rsipstack could not read as written reach it in a normalised form.

use super::validate::{self, Verdict};
use rsipstack::platform::net::UdpSocket as StackUdpSocket;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use tracing::{debug, warn};

/// Largest datagram we read whole (to tell "too large" from "truncated").
const SCRATCH: usize = 65_536;

/// Counters of what the guard turned away.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Requests answered with an error status.
    pub answered: AtomicU64,
    /// Messages dropped unanswered.
    pub dropped: AtomicU64,
}

/// A UDP socket that validates before handing datagrams to rsipstack.
pub struct GuardedUdpSocket {
    socket: UdpSocket,
    // Only rsipstack's single receive loop reads; the mutex just lets `&self` own the scratch buffer.
    scratch: Mutex<Box<[u8]>>,
    max_len: usize,
    server: String,
    stats: Arc<GuardStats>,
    flood: Arc<super::flood::FloodShield>,
}

impl GuardedUdpSocket {
    /// Wraps a bound socket. `max_len` is the largest message accepted (larger: 513).
    /// Messages from sources `flood` bans are dropped before anything else.
    pub fn new(
        socket: UdpSocket,
        max_len: usize,
        server: &str,
        stats: Arc<GuardStats>,
        flood: Arc<super::flood::FloodShield>,
    ) -> Self {
        GuardedUdpSocket {
            flood,
            socket,
            scratch: Mutex::new(vec![0u8; SCRATCH].into_boxed_slice()),
            max_len,
            server: server.to_string(),
            stats,
        }
    }
}

#[async_trait::async_trait]
impl StackUdpSocket for GuardedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut scratch = self.scratch.lock().await;
        loop {
            let (len, src) = self.socket.recv_from(&mut scratch[..]).await?;
            // A banned (or now flooding) source is dropped unanswered, before any parsing.
            if !self.flood.admit(src.ip()) {
                continue;
            }
            let packet = &scratch[..len];
            // Keepalives (RFC 5626 §4.4.1 CRLF) and blank datagrams pass untouched: the stack answers them.
            if packet.iter().all(|b| b.is_ascii_whitespace()) {
                let n = len.min(buf.len());
                buf[..n].copy_from_slice(&packet[..n]);
                return Ok((n, src));
            }
            let max = self.max_len.min(buf.len());
            match validate::check(packet, max, &self.server) {
                Verdict::Accept { len: keep } => {
                    buf[..keep].copy_from_slice(&packet[..keep]);
                    return Ok((keep, src));
                }
                Verdict::Normalised { bytes } if bytes.len() <= buf.len() => {
                    debug!(%src, len, "legal but unusual SIP message normalised for the stack");
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    return Ok((bytes.len(), src));
                }
                Verdict::Normalised { .. } => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    warn!(%src, len, "normalised SIP message does not fit the stack's buffer");
                }
                Verdict::Reply {
                    status,
                    reason,
                    response,
                } => {
                    self.stats.answered.fetch_add(1, Ordering::Relaxed);
                    warn!(%src, status, %reason, len, "malformed SIP request answered");
                    count_response(&response);
                    if let Err(e) = self.socket.send_to(&response, src).await {
                        debug!(%src, error = %e, "could not send error response");
                    }
                }
                Verdict::Drop { reason } => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    warn!(%src, %reason, len, "malformed SIP message dropped");
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        // The stack's responses are counted by `inspect::CountResponses`; only ours, above.
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

/// Counts a SIP response the guard itself sends (`SIP/2.0 NNN ...`) in the metrics.
fn count_response(buf: &[u8]) {
    if let Some(code) = buf
        .strip_prefix(b"SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<u16>().ok())
    {
        crate::metrics::sip_response(code);
    }
}
