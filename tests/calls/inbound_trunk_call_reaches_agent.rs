//! Acceptance 6 of call control, in process: a customer calls the support number through the trunk
//! (a raw SIP peer on the trunk's network, 127.0.0.2), hears the IVR, presses 2 (RFC 4733), and the
//! agent's INVITE carries the trunk's pass-through header (`X-Account-Id`) and the caller's number;
//! after the answer each side hears the other's tone; the customer's BYE reaches the agent.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use common::call::{call_config, rms, sdp_addr};
use common::phones::{rtp_phone, AgentPhone};
use common::{header, start, status, Peer};
use std::time::Duration;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_caller_goes_through_ivr_to_agent_with_pass_through_headers() {
    let (gw, sip) = start(call_config(&["8001"], "", "")).await;
    let mut agent = AgentPhone::register(sip, "8001", "pw8001").await;
    let trunk = Peer::bind("127.0.0.2").await;
    let rtp = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    );
    let invite = format!(
        "INVITE sip:+15550100@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtrunk1;rport\r\nFrom: \"Gus Grey\" <sip:+15557654321@127.0.0.2>;tag=cust1\r\nTo: <sip:+15550100@{sip}>\r\nCall-ID: trunk-call-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:cust@{}>\r\nX-Account-Id: ACME-991\r\nX-Secret: not-passed\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        trunk.addr, trunk.addr, sdp.len()
    );
    trunk.send(sip, invite.as_bytes()).await;
    let ok = trunk.recv_final(WAIT).await.expect("the gateway answers");
    assert_eq!(status(&ok), 200, "{ok}");
    let gw_media = sdp_addr(&ok).expect("answer SDP");
    let to_tag = header(&ok, "To").unwrap().to_string();
    let ack = format!(
        "ACK sip:clicktocall@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtrunkack;rport\r\nFrom: \"Gus Grey\" <sip:+15557654321@127.0.0.2>;tag=cust1\r\nTo: {to_tag}\r\nCall-ID: trunk-call-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        trunk.addr
    );
    trunk.send(sip, ack.as_bytes()).await;

    // The customer's phone: 440 Hz out, records what it hears, presses a key on request.
    let phone = rtp_phone(rtp, 440.0);
    phone.go.send(gw_media).unwrap();
    let (heard, keys) = (phone.heard.clone(), phone.keys.clone());

    // The IVR prompt plays once media flows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let prompt = heard.lock().unwrap().clone();
    assert!(
        rms(&prompt) > 300.0,
        "IVR prompt heard: rms {}",
        rms(&prompt)
    );
    keys.send(2).unwrap();

    let inv = agent
        .recv_request("INVITE", WAIT)
        .await
        .expect("the agent rings");
    assert_eq!(header(&inv, "X-Account-Id"), Some("ACME-991"));
    assert!(
        header(&inv, "X-Secret").is_none(),
        "only configured headers pass"
    );
    assert_eq!(header(&inv, "X-Queue"), Some("support"));
    let from = header(&inv, "From").unwrap();
    assert!(
        from.contains("sip:clicktocall@"),
        "the gateway is the caller: {from}"
    );
    assert!(
        !inv.contains("127.0.0.2"),
        "the customer's address never reaches the agent"
    );
    let uui = header(&inv, "User-to-User").unwrap();
    let ctx = clicktocall::widget::context::decode_user_to_user(uui).unwrap();
    assert_eq!(ctx["caller"], "+15557654321");
    agent.answer(&inv).await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cust = heard.lock().unwrap().clone();
    assert_eq!(dominant_frequency(&cust[cust.len() - 4000..], 8000), 1000.0);
    let ag = agent.heard.lock().unwrap().clone();
    assert!(ag.len() > 8000, "agent heard {}", ag.len());
    assert_eq!(dominant_frequency(&ag[ag.len() - 4000..], 8000), 440.0);

    // The customer hangs up: the agent gets BYE.
    let bye = format!(
        "BYE sip:clicktocall@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtrunkbye;rport\r\nFrom: \"Gus Grey\" <sip:+15557654321@127.0.0.2>;tag=cust1\r\nTo: {to_tag}\r\nCall-ID: trunk-call-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        trunk.addr
    );
    trunk.send(sip, bye.as_bytes()).await;
    let resp = trunk.recv_final(WAIT).await.expect("200 to BYE");
    assert_eq!(status(&resp), 200, "{resp}");
    let agent_bye = agent
        .recv_request("BYE", WAIT)
        .await
        .expect("the agent gets BYE");
    agent.reply(&agent_bye, 200, None).await;
    gw.shutdown().await;
}
