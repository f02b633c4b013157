//! Sending our own out-of-dialog requests (keepalive OPTIONS now; more with call control) through an
//! rsipstack client transaction, which retransmits over UDP on Timer E and gives up on Timer F
//! (RFC 3261 §17.1.2.2).

use rsipstack::rsip::prelude::HeadersExt;
use rsipstack::rsip::{self, typed, Method, SipMessage, StatusCode, StatusCodeKind};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;

/// Sends `method` to `uri` at `target` and waits for the final response; `None` when the transaction
/// timed out (Timer F) or could not be sent. Our From URI and Call-ID use the host of our Via, i.e.
/// the address the request really leaves from (or the advertised one).
pub async fn send_request(
    endpoint: &EndpointInnerRef,
    method: Method,
    uri: &str,
    target: SocketAddr,
    transport: &str,
) -> Option<rsip::Response> {
    let req_uri = rsip::Uri::try_from(uri).ok()?;
    let transport = match transport {
        "tcp" => rsip::Transport::Tcp,
        "tls" => rsip::Transport::Tls,
        _ => rsip::Transport::Udp,
    };
    let dest = SipAddr {
        r#type: Some(transport),
        addr: target.into(),
    };
    let (conn, _) = endpoint.transport_layer.lookup(&dest, None).await.ok()?;
    let via = endpoint.get_via(Some(conn.get_addr().clone()), None).ok()?;
    let local_host = via.uri.host_with_port.host.to_string();
    let local_host = local_host.as_str();
    let from_uri = rsip::Uri::try_from(format!("sip:clicktocall@{local_host}").as_str()).ok()?;
    let from = typed::From {
        display_name: None,
        uri: from_uri,
        params: vec![rsip::Param::Tag(super::ids::tag().into())],
    };
    let to = typed::To {
        display_name: None,
        uri: req_uri.clone(),
        params: vec![],
    };
    let call_id = rsip::headers::CallId::from(super::ids::call_id(local_host));
    let req = endpoint.make_request(method, req_uri, via, from, to, 1, Some(call_id));
    let key = TransactionKey::from_request(&req, TransactionRole::Client).ok()?;
    let mut tx = Transaction::new_client(key, req, endpoint.clone(), Some(conn));
    tx.destination = Some(dest);
    tx.send().await.ok()?;
    while let Some(msg) = tx.receive().await {
        if let SipMessage::Response(resp) = msg {
            if resp.status_code.kind() == StatusCodeKind::Provisional {
                continue;
            }
            // rsipstack reports Timer F as a locally made 408 (a copy of our own request's headers,
            // so without a To tag); a UAS's real final response always tags To (RFC 3261 §8.2.6.2).
            let local_timeout = resp.status_code == StatusCode::RequestTimeout
                && resp
                    .to_header()
                    .ok()
                    .and_then(|t| t.tag().ok().flatten())
                    .is_none();
            return (!local_timeout).then_some(resp);
        }
    }
    None
}
