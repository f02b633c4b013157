//! A customer calling through the test trunk (a raw SIP peer on 127.0.0.2, the trunk's network):
//! INVITE with SDP for an RTP phone of its own, the gateway's 200, ACK, then the phone plays its
//! tone to the gateway; requests in that dialog with [`in_dialog`].

use super::call::sdp_addr;
use super::phones::{rtp_phone, RtpPhone};
use super::{header, status, Peer};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Calls the support number through the trunk at `sip`; the phone sends `hz` once answered.
/// Returns the trunk peer, the phone, and the INVITE and the 200 (for in-dialog requests).
pub async fn trunk_call(sip: SocketAddr, hz: f64) -> (Peer, RtpPhone, String, String) {
    let trunk = Peer::bind("127.0.0.2").await;
    let rtp = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let port = rtp.local_addr().unwrap().port();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    );
    let invite = format!(
        "INVITE sip:+15550100@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtri1;rport\r\nFrom: <sip:+15557654321@127.0.0.2>;tag=tri1\r\nTo: <sip:+15550100@{sip}>\r\nCall-ID: tri-call-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:cust@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        trunk.addr, trunk.addr, sdp.len()
    );
    trunk.send(sip, invite.as_bytes()).await;
    let ok = trunk
        .recv_final(Duration::from_secs(5))
        .await
        .expect("the gateway answers");
    assert_eq!(status(&ok), 200, "{ok}");
    let ack = in_dialog(&trunk, &ok, sip, "ACK", 1, "", "");
    trunk.send(sip, ack.as_bytes()).await;
    let phone = rtp_phone(rtp, hz);
    phone.go.send(sdp_addr(&ok).expect("answer SDP")).unwrap();
    (trunk, phone, invite, ok)
}

/// A request in the trunk caller's dialog (`ct`: its Content-Type, or empty).
pub fn in_dialog(
    trunk: &Peer,
    ok: &str,
    sip: SocketAddr,
    method: &str,
    cseq: u32,
    ct: &str,
    body: &str,
) -> String {
    let to = header(ok, "To").unwrap();
    let ct = if ct.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {ct}\r\n")
    };
    format!(
        "{method} sip:clicktocall@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtri{method}{cseq};rport\r\nFrom: <sip:+15557654321@127.0.0.2>;tag=tri1\r\nTo: {to}\r\nCall-ID: tri-call-1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        trunk.addr,
        body.len()
    )
}
