//! RFC 4028 session timers on the agent leg: the agent's phone answers with
//! `Session-Expires: 4;refresher=uac`, so the gateway (the UAC) must refresh: it sends UPDATE with
//! `Session-Expires` about every 2 s, and the call stays up. A refresh re-INVITE from the phone gets a
//! 200 that echoes its `Session-Expires`.

use crate::common;

use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::{header, start, status};
use serde_json::json;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_refreshes_when_the_phone_makes_it_the_refresher() {
    let (gw, sip) = start(call_config(&["9001"], "", "")).await;
    let mut agent = AgentPhone::register(sip, "9001", "pw9001").await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Hal"}), Some("support")).await;
    let invite = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent
        .answer_with(
            &invite,
            "Session-Expires: 4;refresher=uac\r\nRequire: timer\r\n",
        )
        .await;
    widget.wait_for("state", Some("connected"), WAIT).await;

    let start_t = Instant::now();
    for round in 0..2 {
        let upd = agent
            .recv_request("UPDATE", WAIT)
            .await
            .unwrap_or_else(|| panic!("refresh {round} arrives"));
        assert!(
            header(&upd, "Session-Expires").is_some_and(|v| v.starts_with('4')),
            "{upd}"
        );
        agent.reply(&upd, 200, None).await;
    }
    let took = start_t.elapsed();
    assert!(
        took >= Duration::from_millis(3000) && took < Duration::from_secs(6),
        "two refreshes took {took:?}"
    );

    // The phone refreshes too (re-INVITE with the same SDP): the 200 echoes Session-Expires.
    let sdp = "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=sendrecv\r\n";
    agent
        .in_dialog(
            &invite,
            "INVITE",
            "Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\n",
            sdp,
        )
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let ok = loop {
        let m = agent
            .sip
            .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
            .expect("answer to the refresh");
        if m.starts_with("SIP/2.0 200") && m.contains("CSeq: 11 INVITE") {
            break m;
        }
        if m.starts_with("UPDATE ") {
            agent.reply(&m, 200, None).await;
        }
    };
    assert_eq!(status(&ok), 200);
    assert_eq!(
        header(&ok, "Session-Expires"),
        Some("1800;refresher=uac"),
        "{ok}"
    );
    agent.ack(&invite, &ok).await;
    assert!(
        widget
            .recv(Duration::from_millis(300))
            .await
            .is_none_or(|v| v["state"] != "ended"),
        "the call is still up"
    );
    browser.stop();
    gw.shutdown().await;
}
