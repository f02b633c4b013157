//! The same strict checks for stream transports (TCP, TLS), applied after rsipstack framed and parsed
//! the message. Datagrams were already judged by [`super::guard`], so they pass straight through.
//!
//! A stream message rsipstack cannot frame or parse closes the connection (RFC 3261 §18.3: framing is
//! lost); a parsed one that breaks a rule is answered on the same connection like a datagram would be.

use super::validate::{self, Verdict};
use rsipstack::rsip::SipMessage;
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::{SipConnection, TransportEvent};
use tracing::warn;

/// Validates messages from stream connections.
pub struct StreamInspector {
    /// Largest message accepted (rsipstack's stream framing caps it at 65,535 bytes).
    pub max_len: usize,
    /// Server header value for answers.
    pub server: String,
}

#[async_trait::async_trait]
impl TransportEventInspector for StreamInspector {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        let TransportEvent::Incoming(msg, conn, from) = event else {
            return Some(event);
        };
        if matches!(conn, SipConnection::Udp(_)) {
            return Some(TransportEvent::Incoming(msg, conn, from));
        }
        match validate::check(&msg.to_bytes(), self.max_len, &self.server) {
            Verdict::Accept { .. } => Some(TransportEvent::Incoming(msg, conn, from)),
            Verdict::Reply {
                status,
                reason,
                response,
            } => {
                warn!(src = %from, status, %reason, "malformed SIP request answered (stream)");
                if let Err(e) = send_raw(&conn, response).await {
                    warn!(src = %from, error = %e, "could not send error response");
                }
                None
            }
            Verdict::Drop { reason } => {
                warn!(src = %from, %reason, "malformed SIP message dropped (stream)");
                None
            }
        }
    }
}

/// Sends our answer as raw bytes: re-serializing it through rsipstack would replace our specific
/// reason phrase with the standard one.
async fn send_raw(conn: &SipConnection, response: Vec<u8>) -> rsipstack::Result<()> {
    match conn {
        SipConnection::Tcp(c) => c.send_raw(&response).await,
        SipConnection::Tls(c) => c.send_raw(&response).await,
        other => {
            other
                .send(SipMessage::try_from(response.as_slice())?, None)
                .await
        }
    }
}
