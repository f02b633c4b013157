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
    /// Flood defence: messages from banned sources are dropped.
    pub flood: std::sync::Arc<super::flood::FloodShield>,
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
        if let Ok(a) = from.get_socketaddr() {
            if !self.flood.admit(a.ip()) {
                return None;
            }
        }
        match validate::check(&msg.to_bytes(), self.max_len, &self.server) {
            Verdict::Accept { .. } => Some(TransportEvent::Incoming(msg, conn, from)),
            // rsipstack parsed it already; re-reading the normalised form fixes what it misread
            // (and gives an RFC 2543 request its From tag).
            Verdict::Normalised { bytes } => match SipMessage::try_from(bytes.as_slice()) {
                Ok(normalised) => Some(TransportEvent::Incoming(normalised, conn, from)),
                Err(_) => Some(TransportEvent::Incoming(msg, conn, from)),
            },
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

/// What the transaction layer sends, on any transport, once per message (not per
/// retransmission): every response is counted in the metrics
/// (`clicktocall_sip_responses_total{code}`), and a request of a SIPREC session (it carries
/// `Require: siprec`) gets the `+sip.src` feature tag on its Contact (RFC 7866 §6.1.1), which
/// rsipstack has no way to put there.
pub struct Outgoing;

impl rsipstack::transaction::endpoint::MessageInspector for Outgoing {
    fn before_send(
        &self,
        msg: rsipstack::rsip::SipMessage,
        _dest: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::rsip::SipMessage {
        match msg {
            SipMessage::Response(r) => {
                crate::metrics::sip_response(r.status_code.code());
                SipMessage::Response(strip_synthetic_from_tag(r))
            }
            SipMessage::Request(r) => SipMessage::Request(mark_recording_client(r)),
        }
    }

    fn after_received(
        &self,
        msg: rsipstack::rsip::SipMessage,
        _from: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::rsip::SipMessage {
        msg
    }
}

/// An RFC 2543 request reached the stack with a From tag the guard made up
/// ([`validate::SYNTHETIC_TAG_PREFIX`]); its answers carry the From the client sent (RFC 3261
/// §8.2.6.2).
fn strip_synthetic_from_tag(mut resp: rsipstack::rsip::Response) -> rsipstack::rsip::Response {
    use rsipstack::rsip::Header;
    for h in resp.headers.iter_mut() {
        if let Header::From(f) = h {
            let value = f.value().to_string();
            let marker = format!(";tag={}", validate::SYNTHETIC_TAG_PREFIX);
            if let Some(at) = value.find(&marker) {
                let end = value[at + 1..]
                    .find(';')
                    .map_or(value.len(), |e| at + 1 + e);
                *h = Header::From(format!("{}{}", &value[..at], &value[end..]).into());
            }
        }
    }
    resp
}

/// `+sip.src` on the Contact of a request that requires `siprec`.
fn mark_recording_client(mut req: rsipstack::rsip::Request) -> rsipstack::rsip::Request {
    use rsipstack::rsip::Header;
    let siprec = req.headers.iter().any(|h| {
        matches!(h, Header::Require(r) if r.value().split(',').any(|t| t.trim().eq_ignore_ascii_case("siprec")))
    });
    if !siprec {
        return req;
    }
    for h in req.headers.iter_mut() {
        if let Header::Contact(c) = h {
            let v = c.value().trim().to_string();
            if !v.contains("+sip.src") {
                let v = if v.starts_with('<') || v.contains('<') {
                    v
                } else {
                    format!("<{v}>")
                };
                *h = Header::Contact(format!("{v};+sip.src").into());
            }
        }
    }
    req
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
            let out = Outgoing.before_send(msg.clone(), None);
            assert_eq!(out.to_string(), msg.to_string(), "passed on unchanged");
        }
        assert_eq!(count("606"), before + 1);
    }

    #[test]
    fn a_made_up_from_tag_is_removed_from_answers() {
        let resp = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;received=1.2.3.4\r\nFrom: sip:a@h;tag={}0123;x=1\r\nTo: sip:gw;tag=9\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", validate::SYNTHETIC_TAG_PREFIX);
        let out = Outgoing
            .before_send(SipMessage::try_from(resp.as_str()).unwrap(), None)
            .to_string();
        assert!(out.contains("\r\nFrom: sip:a@h;x=1\r\n"), "{out}");
    }

    #[test]
    fn a_siprec_request_gets_the_src_feature_tag_on_its_contact_once() {
        let invite = |require: &str, contact: &str| {
            format!("INVITE sip:srs@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKz\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:srs@x>\r\nCall-ID: e\r\nCSeq: 1 INVITE\r\n{require}Contact: {contact}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        };
        let contact_of = |text: String| {
            let out = Outgoing.before_send(SipMessage::try_from(text.as_str()).unwrap(), None);
            let out = out.to_string();
            out.lines()
                .find_map(|l| l.strip_prefix("Contact: "))
                .unwrap()
                .to_string()
        };
        let c = "<sip:clicktocall@127.0.0.1:5060;transport=udp>";
        assert_eq!(
            contact_of(invite("Require: siprec\r\n", c)),
            format!("{c};+sip.src")
        );
        assert_eq!(
            contact_of(invite("Require: timer, siprec\r\n", "sip:gw@127.0.0.1")),
            "<sip:gw@127.0.0.1>;+sip.src"
        );
        let tagged = format!("{c};+sip.src");
        assert_eq!(contact_of(invite("Require: siprec\r\n", &tagged)), tagged);
        assert_eq!(contact_of(invite("", c)), c, "not a recording session");
    }
}
