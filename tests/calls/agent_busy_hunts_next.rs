//! Acceptance 2 and 3 of call control: hunting and cancelling, against raw SIP agent phones.
//! - A answers 486, B rings past the ring timeout (CANCEL), C answers: C is connected, A and B were
//!   offered once each.
//! - Ring-all: both agents ring, the first to answer wins, the other gets CANCEL.
//! - The customer hangs up while the agent rings: the agent gets CANCEL.

use crate::common;

use common::call::{call_config, place_call, Widget};
use common::phones::{response, AgentPhone};
use common::{header, start};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Answers a CANCEL with 200 and the INVITE with 487, as a phone does.
async fn answer_cancel(phone: &AgentPhone, invite: &str) {
    let cancel = phone
        .recv_request("CANCEL", WAIT)
        .await
        .expect("CANCEL arrives");
    assert_eq!(header(&cancel, "Call-ID"), header(invite, "Call-ID"));
    phone
        .sip
        .send(phone_gw(phone), response(&cancel, 200, "", None).as_bytes())
        .await;
    phone.reply(invite, 487, None).await;
}

fn phone_gw(phone: &AgentPhone) -> std::net::SocketAddr {
    phone.gateway()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_then_no_answer_then_answer_connects_the_third_agent() {
    let rules = "strategy = \"round_robin\"\nring_timeout_secs = 1\nwrap_up_secs = 30\n";
    let (gw, sip) = start(call_config(&["2001", "2002", "2003"], rules, "")).await;
    let a = AgentPhone::register(sip, "2001", "pw2001").await;
    let b = AgentPhone::register(sip, "2002", "pw2002").await;
    let mut c = AgentPhone::register(sip, "2003", "pw2003").await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Bo"}), Some("support")).await;

    let inv_a = a
        .recv_request("INVITE", WAIT)
        .await
        .expect("A is offered first");
    a.reply(&inv_a, 486, None).await;
    let inv_b = b.recv_request("INVITE", WAIT).await.expect("then B");
    b.reply(&inv_b, 180, None).await;
    // B does not answer within the 1 s ring timeout.
    answer_cancel(&b, &inv_b).await;
    let inv_c = c.recv_request("INVITE", WAIT).await.expect("then C");
    c.answer(&inv_c).await;
    widget.wait_for("state", Some("connected"), WAIT).await;

    // Nobody is offered the call again.
    assert!(a
        .recv_request("INVITE", Duration::from_millis(1500))
        .await
        .is_none());
    assert!(b
        .recv_request("INVITE", Duration::from_millis(100))
        .await
        .is_none());
    let calls = reqwest_calls(&gw).await;
    assert_eq!(calls[0]["agent"], "2003", "{calls}");
    assert_eq!(calls[0]["state"], "connected");
    let agents = api(&gw, "/api/agents").await;
    let state = |id: &str| {
        agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state("2003"), "busy");
    assert_eq!(state("2001"), "available");
    browser.stop();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_all_connects_the_first_answer_and_cancels_the_rest() {
    let rules = "strategy = \"ring_all\"\n";
    let (gw, sip) = start(call_config(&["3001", "3002"], rules, "")).await;
    let mut x = AgentPhone::register(sip, "3001", "pw3001").await;
    let y = AgentPhone::register(sip, "3002", "pw3002").await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Cy"}), Some("support")).await;
    let inv_x = x.recv_request("INVITE", WAIT).await.expect("X rings");
    let inv_y = y.recv_request("INVITE", WAIT).await.expect("Y rings too");
    y.reply(&inv_y, 180, None).await;
    x.answer(&inv_x).await;
    answer_cancel(&y, &inv_y).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    browser.stop();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_hangup_while_ringing_cancels_the_agent() {
    let (gw, sip) = start(call_config(&["4001"], "", "")).await;
    let a = AgentPhone::register(sip, "4001", "pw4001").await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Di"}), Some("support")).await;
    let inv = a.recv_request("INVITE", WAIT).await.expect("rings");
    a.reply(&inv, 180, None).await;
    widget.wait_for("state", Some("ringing"), WAIT).await;
    widget.send(json!({"type": "hangup"}));
    answer_cancel(&a, &inv).await;
    let ended = widget.wait_for("state", Some("ended"), WAIT).await;
    assert_eq!(ended["reason"], "customer_hangup");
    browser.stop();
    gw.shutdown().await;
}

async fn api(gw: &clicktocall::gateway::Gateway, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.http_addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn reqwest_calls(gw: &clicktocall::gateway::Gateway) -> serde_json::Value {
    api(gw, "/api/calls").await
}
