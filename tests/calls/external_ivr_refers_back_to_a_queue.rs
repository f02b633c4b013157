//! Acceptance 7 of call control: the "support" queue sends customers to an external IVR first. A
//! SIP IVR answers (it hears the customer's tone), then REFERs the call back to the gateway naming
//! queue "sales"; the gateway answers 202, NOTIFYs 200, releases the IVR and connects a sales agent.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::{header, start, Peer};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_ivr_refer_puts_the_customer_into_sales() {
    // The IVR is a static SIP endpoint; bind it first to know its address.
    let ivr_sip = Peer::bind("127.0.0.1").await;
    let rules = format!("external_ivr = \"sip:ivr@{}\"\n", ivr_sip.addr);
    let (gw, sip) = start(call_config(&["7001"], &rules, "")).await;
    let mut ivr = AgentPhone::with_peer(ivr_sip, sip, "ivr");
    let mut agent = AgentPhone::register(sip, "7001", "pw7001").await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Flo"}), Some("support")).await;

    let invite = ivr
        .recv_request("INVITE", WAIT)
        .await
        .expect("the IVR is called");
    ivr.answer(&invite).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let heard = ivr.heard.lock().unwrap().clone();
    assert!(heard.len() > 4000, "IVR heard {}", heard.len());
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        440.0
    );

    ivr.in_dialog(
        &invite,
        "REFER",
        &format!("Refer-To: <sip:sales@{sip}>\r\n"),
        "",
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut accepted, mut notified, mut bye) = (false, false, false);
    while !(accepted && notified && bye) && tokio::time::Instant::now() < deadline {
        let Some(m) = ivr.sip.recv(Duration::from_millis(300)).await else {
            continue;
        };
        if m.starts_with("SIP/2.0 202") {
            accepted = true;
        } else if m.starts_with("NOTIFY ") {
            notified |= m.contains("SIP/2.0 200 OK");
            ivr.reply(&m, 200, None).await;
        } else if m.starts_with("BYE ") {
            bye = true;
            ivr.reply(&m, 200, None).await;
        } else if m.starts_with("SIP/2.0 ") {
            panic!("REFER refused: {m}");
        }
    }
    assert!(
        accepted && notified && bye,
        "202 {accepted}, NOTIFY 200 {notified}, BYE {bye}"
    );
    ivr.stop_rtp();

    let inv = agent
        .recv_request("INVITE", WAIT)
        .await
        .expect("a sales agent rings");
    assert_eq!(header(&inv, "X-Queue"), Some("sales"));
    agent.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let h = browser.heard_since(mark);
    assert_eq!(dominant_frequency(&h[h.len() - 4000..], 8000), 1000.0);
    browser.stop();
    gw.shutdown().await;
}
