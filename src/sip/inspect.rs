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

/// Counts every response the transaction layer sends, on any transport, in the metrics
/// (`clicktocall_sip_responses_total{code}`): once per response, not per retransmission.
pub struct CountResponses;

impl rsipstack::transaction::endpoint::MessageInspector for CountResponses {
    fn before_send(
        &self,
        msg: rsipstack::rsip::SipMessage,
        _dest: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::rsip::SipMessage {
        if let rsipstack::rsip::SipMessage::Response(r) = &msg {
            crate::metrics::sip_response(r.status_code.code());
        }
        msg
    }

    fn after_received(
        &self,
        msg: rsipstack::rsip::SipMessage,
        _from: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::rsip::SipMessage {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::transaction::endpoint::MessageInspector;

    #[test]
    fn responses_are_counted_by_code_and_requests_are_not() {
        let count = |code: &str| {
            let text = crate::metrics::render(&crate::metrics::Snapshot::default());
            let series = format!("clicktocall_sip_responses_total{{code=\"{code}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map_or(0, |n| n.parse::<u64>().unwrap())
        };
        let response = "SIP/2.0 606 Not Acceptable\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let request = "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKy\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let before = count("606");
        for text in [response, request] {
            let msg = SipMessage::try_from(text).unwrap();
            let out = CountResponses.before_send(msg.clone(), None);
            assert_eq!(out.to_string(), msg.to_string(), "passed on unchanged");
        }
        assert_eq!(count("606"), before + 1);
    }
}
