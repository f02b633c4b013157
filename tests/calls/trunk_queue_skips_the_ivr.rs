//! A trunk with `queue = "sales"` sends its callers straight into that queue: no menu, no digit.
//! The caller's media starts flowing and the agent rings at once, offered from the sales queue
//! (the IVR would have waited for a key, and its timeout leads elsewhere).

use crate::common;

use common::call::{call_config, sdp_addr};
use common::phones::{rtp_phone, AgentPhone};
use common::{header, start, status, Peer};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_caller_goes_straight_to_the_trunks_queue() {
    let mut cfg = call_config(&["8001"], "", "");
    cfg.trunks[0].queue = Some("sales".into());
    cfg.validate().expect("a trunk queue is valid");
    let (gw, sip) = start(cfg).await;
    let agent = AgentPhone::register(sip, "8001", "pw8001").await;
    let trunk = Peer::bind("127.0.0.2").await;
    let rtp = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    );
    let invite = format!(
        "INVITE sip:+15550100@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtq1;rport\r\nFrom: <sip:+15557654321@127.0.0.2>;tag=tq1\r\nTo: <sip:+15550100@{sip}>\r\nCall-ID: trunk-queue-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:cust@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        trunk.addr, trunk.addr, sdp.len()
    );
    trunk.send(sip, invite.as_bytes()).await;
    let ok = trunk.recv_final(WAIT).await.expect("the gateway answers");
    assert_eq!(status(&ok), 200, "{ok}");
    let gw_media = sdp_addr(&ok).expect("answer SDP");
    let to_tag = header(&ok, "To").unwrap().to_string();
    let ack = format!(
        "ACK sip:clicktocall@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtq1ack;rport\r\nFrom: <sip:+15557654321@127.0.0.2>;tag=tq1\r\nTo: {to_tag}\r\nCall-ID: trunk-queue-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        trunk.addr
    );
    trunk.send(sip, ack.as_bytes()).await;
    let phone = rtp_phone(rtp, 440.0);
    let flowing = Instant::now();
    phone.go.send(gw_media).unwrap();

    // No key is pressed: the agent rings from the trunk's queue, well inside a menu's prompt.
    let inv = agent
        .recv_request("INVITE", WAIT)
        .await
        .expect("the agent rings without the IVR");
    assert_eq!(header(&inv, "X-Queue"), Some("sales"));
    assert!(
        flowing.elapsed() < Duration::from_secs(1),
        "offered {:?} after the media started",
        flowing.elapsed()
    );
    agent.reply(&inv, 486, None).await;
    gw.shutdown().await;
}
