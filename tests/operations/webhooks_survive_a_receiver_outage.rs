//! Webhooks, in process: the receiver is down (connection refused) while two calls happen, then
//! comes up; it receives every event exactly once, each call's events in order, each signed, and
//! the events match the call records.

use crate::common;

use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::start;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(5);

/// (event id, signature, body) of every POST, in arrival order.
type Inbox = Arc<Mutex<Vec<(i64, String, Value)>>>;

async fn receiver(listener: tokio::net::TcpListener, inbox: Inbox) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() < len {
                    continue;
                }
                let h = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                        .unwrap_or_default()
                        .to_string()
                };
                let id: i64 = h("X-Clicktocall-Event-Id").parse().unwrap();
                let v: Value = serde_json::from_str(body).unwrap();
                inbox
                    .lock()
                    .unwrap()
                    .push((id, h("X-Clicktocall-Signature"), v));
                let _ = s
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
                return;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_every_event_once_in_order() {
    let dir = std::env::temp_dir().join(format!("c2c-hooks-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    // A port with nobody listening yet: the receiver is "down".
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let extra = format!(
        "[webhooks]\nurls = [\"http://127.0.0.1:{port}/c2c/events\"]\nsecret = \"hook-secret\"\n[records]\ndatabase = \"{}\"\n",
        dir.join("records.db").display()
    );
    let cfg = call_config(&["1001"], "wrap_up_secs = 0\n", &extra);
    let (gw, sip) = start(cfg).await;
    let mut agent = AgentPhone::register(sip, "1001", "pw1001").await;

    // Call 1: answered by the agent, who hangs up. Call 2: the visitor hangs up in the menu.
    let mut w = Widget::connect(gw.http_addr).await;
    let b = place_call(&mut w, json!({"name": "Ann Lee"}), Some("support")).await;
    let inv = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&inv).await;
    w.wait_for("state", Some("connected"), WAIT).await;
    agent.in_dialog(&inv, "BYE", "", "").await;
    w.wait_for("state", Some("ended"), WAIT).await;
    b.stop();
    let mut w2 = Widget::connect(gw.http_addr).await;
    let b2 = place_call(&mut w2, json!({"name": "Bo Park"}), None).await;
    w2.wait_for("state", Some("ivr"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w2.send(json!({"type": "hangup"}));
    w2.wait_for("state", Some("ended"), WAIT).await;
    b2.stop();

    // Down 30 s more, as the issue asks (WEBHOOK_DOWN_SECS=3 for a quick local run), then up.
    let down: u64 = std::env::var("WEBHOOK_DOWN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    tokio::time::sleep(Duration::from_secs(down)).await;
    let inbox: Inbox = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(receiver(listener, inbox.clone()));

    // Every record's milestones arrive: call 1 has 5 (started, answered, queued, connected,
    // ended), call 2 has 3 (started, answered, ended).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20 + 2 * down);
    while inbox.lock().unwrap().len() < 8 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // no stragglers or repeats
    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 8, "{got:#?}");
    let ids: BTreeSet<i64> = got.iter().map(|(id, ..)| *id).collect();
    assert_eq!(ids.len(), 8, "each event once");
    let mut per_call: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, sig, body) in &got {
        assert!(sig.starts_with("sha256=") && sig.len() == 71, "{sig}");
        per_call
            .entry(body["call"]["id"].as_str().unwrap().to_string())
            .or_default()
            .push(body["event"].as_str().unwrap().to_string());
    }
    let mut orders: Vec<Vec<String>> = per_call.into_values().collect();
    orders.sort_by_key(|o| o.len());
    assert_eq!(orders[0], ["call.started", "call.answered", "call.ended"]);
    assert_eq!(
        orders[1],
        [
            "call.started",
            "call.answered",
            "call.queued",
            "call.connected",
            "call.ended"
        ]
    );
    // Arrival order is the outbox order, and the last event of each call carries its final record.
    let arrival: Vec<i64> = got.iter().map(|(id, ..)| *id).collect();
    assert!(arrival.windows(2).all(|w| w[0] < w[1]), "{arrival:?}");
    let ended: Vec<&Value> = got
        .iter()
        .map(|(_, _, b)| b)
        .filter(|b| b["event"] == "call.ended")
        .collect();
    assert!(ended
        .iter()
        .any(|b| b["call"]["end_reason"] == "agent_hangup"));
    assert!(ended
        .iter()
        .any(|b| b["call"]["end_reason"] == "customer_hangup"));
    gw.shutdown().await;
    assert_eq!(
        clicktocall::records::webhooks::undelivered(&dir.join("records.db")).unwrap(),
        0
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_delivers_the_end_of_calls_in_progress_before_exit() {
    // SIGTERM's path (Gateway::shutdown) with two calls in the IVR and the receiver up: the grace
    // period passes, the calls are ended by the gateway, and both `call.ended` events reach the
    // receiver before shutdown returns; the outbox is empty.
    let dir = std::env::temp_dir().join(format!("c2c-drain-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox: Inbox = Arc::default();
    tokio::spawn(receiver(listener, inbox.clone()));
    let extra = format!(
        "[webhooks]\nurls = [\"http://127.0.0.1:{port}/c2c/events\"]\nsecret = \"hook-secret\"\n[records]\ndatabase = \"{}\"\n",
        dir.join("records.db").display()
    );
    let (gw, _sip) = start(call_config(&[], "", &extra)).await;
    let mut calls = Vec::new();
    for name in ["Ann Lee", "Bo Park"] {
        let mut w = Widget::connect(gw.http_addr).await;
        let b = place_call(&mut w, json!({ "name": name }), None).await;
        w.wait_for("state", Some("ivr"), WAIT).await;
        calls.push((w, b));
    }
    gw.shutdown().await;
    let got = inbox.lock().unwrap().clone();
    let ended: Vec<&Value> = got
        .iter()
        .map(|(_, _, b)| b)
        .filter(|b| b["event"] == "call.ended")
        .collect();
    assert_eq!(ended.len(), 2, "{got:#?}");
    assert!(ended
        .iter()
        .all(|b| b["call"]["end_reason"] == "shutdown" && b["call"]["hung_up_by"] == "gateway"));
    assert_eq!(
        clicktocall::records::webhooks::undelivered(&dir.join("records.db")).unwrap(),
        0
    );
    for (_, b) in calls {
        b.stop();
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body() {
    // The receiver's check, as a CRM would write it.
    let body = r#"{"event":"call.ended"}"#;
    let sig = clicktocall::records::webhooks::signature("hook-secret", body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"hook-secret");
    let hex = sig.strip_prefix("sha256=").unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    ring::hmac::verify(&key, body.as_bytes(), &bytes).expect("a valid signature");
}
