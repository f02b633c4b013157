//! Calls with any number of parties (issue 13, acceptances 2 to 4), in process with real sockets:
//! a customer sending 440 Hz, agent A sending 1000 Hz and agent B sending 700 Hz. Each listener
//! hears exactly the other two (Goertzel power at both of the others' frequencies, none at its
//! own); when A hangs up, the customer and B still hear each other; the record lists the three
//! parties with their join and leave times.
//! - a browser customer, B added by `POST /api/calls/{id}/parties`;
//! - a trunk customer (RTP ↔ RTP ↔ RTP) who passes the IVR with a SIP INFO digit, and hears an
//!   agent's SIP INFO digit as RFC 4733;
//! - a `mode = "conference"` queue whose two agents both answer the ring.

use crate::common;

use clicktocall::media::tone::goertzel;
use common::call::{call_config, place_call, records_of, Widget};
use common::phones::AgentPhone;
use common::trunk::{in_dialog, trunk_call};
use common::{header, http, start};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const CUSTOMER_HZ: f64 = 440.0;
const A_HZ: f64 = 1000.0;
const B_HZ: f64 = 700.0;

/// Asserts the last second of `heard` carries each of `present` and none of `absent`.
fn hears(who: &str, heard: &[i16], present: &[f64], absent: &[f64]) {
    assert!(
        heard.len() >= 8000,
        "{who} heard only {} samples",
        heard.len()
    );
    let tail = &heard[heard.len() - 8000..];
    let p = |f: f64| goertzel(tail, f, 8000);
    let report: Vec<(f64, f64)> = present.iter().chain(absent).map(|f| (*f, p(*f))).collect();
    for f in present {
        assert!(p(*f) > 2e6, "{who} should hear {f} Hz: {report:?}");
    }
    for f in absent {
        assert!(p(*f) < 2e5, "{who} must not hear {f} Hz: {report:?}");
    }
}

/// What someone heard since `mark`.
fn since(heard: &Mutex<Vec<i16>>, mark: usize) -> Vec<i16> {
    heard.lock().unwrap()[mark..].to_vec()
}

/// Three ears to check at once: the customer's, A's and B's.
struct Ears {
    customer: Arc<Mutex<Vec<i16>>>,
    a: Arc<Mutex<Vec<i16>>>,
    b: Arc<Mutex<Vec<i16>>>,
}

impl Ears {
    /// Lets `settle` pass, listens 1.5 s, and hands back what each heard in that window.
    async fn listen(&self, settle: Duration) -> (Vec<i16>, Vec<i16>, Vec<i16>) {
        tokio::time::sleep(settle).await;
        let len = |h: &Mutex<Vec<i16>>| h.lock().unwrap().len();
        let marks = (len(&self.customer), len(&self.a), len(&self.b));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (
            since(&self.customer, marks.0),
            since(&self.a, marks.1),
            since(&self.b, marks.2),
        )
    }

    /// Everybody hears the other two; then A has left and the customer and B hear each other.
    async fn three_then_two(&self, a: &mut AgentPhone, inv_a: &str) {
        let (c, ha, hb) = self.listen(Duration::from_millis(600)).await;
        hears("the customer", &c, &[A_HZ, B_HZ], &[CUSTOMER_HZ]);
        hears("agent A", &ha, &[CUSTOMER_HZ, B_HZ], &[A_HZ]);
        hears("agent B", &hb, &[CUSTOMER_HZ, A_HZ], &[B_HZ]);
        a.in_dialog(inv_a, "BYE", "", "").await;
        a.stop_rtp();
        let (c, _, hb) = self.listen(Duration::from_millis(600)).await;
        hears("the customer", &c, &[B_HZ], &[CUSTOMER_HZ, A_HZ]);
        hears("agent B", &hb, &[CUSTOMER_HZ], &[A_HZ, B_HZ]);
    }
}

/// The one running call's id.
async fn the_call(http_addr: SocketAddr) -> u64 {
    let (code, calls) = http(http_addr, "GET", "/api/calls", Some("test-key"), "").await;
    assert_eq!(code, 200, "{calls}");
    calls[0]["id"].as_u64().expect("a running call")
}

/// Waits until `party` shows in the call with `state`.
async fn wait_party(http_addr: SocketAddr, id: u64, party: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, call) = http(
            http_addr,
            "GET",
            &format!("/api/calls/{id}"),
            Some("test-key"),
            "",
        )
        .await;
        assert_eq!(code, 200, "{call}");
        let found = call["parties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["party"] == party && p["state"] == state);
        if found {
            return call;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{party} never {state}: {call:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ended record of the call: three parties, A left before the end.
async fn check_record(http_addr: SocketAddr, id: u64, kind: &str) {
    let records = records_of(http_addr, id).await;
    assert_eq!(records.len(), 1, "one record: {records:#?}");
    let record = &records[0];
    assert_eq!(record["kind"], kind);
    let parties = record["parties"].as_array().expect("parties");
    let names: Vec<&str> = parties
        .iter()
        .map(|p| p["party"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["customer", "8001", "8002"], "{record:#}");
    let roles: Vec<&str> = parties
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["customer", "agent", "agent"]);
    let ended = record["ended_ms"].as_i64().unwrap();
    for p in parties {
        let (joined, left) = (
            p["joined_ms"].as_i64().unwrap(),
            p["left_ms"].as_i64().unwrap(),
        );
        assert!(joined <= left && left <= ended, "{p}");
    }
    assert!(
        parties[1]["left_ms"].as_i64().unwrap() < ended - 1000,
        "A left well before the end: {record:#}"
    );
    assert!(parties[1]["quality"]["expected"].as_u64().unwrap() > 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_customer_and_two_agents_one_added_over_rest() {
    let (gw, sip) = start(call_config(&["8001", "8002"], "", "")).await;
    let mut a = AgentPhone::register(sip, "8001", "pw8001").await;
    let mut b = AgentPhone::register(sip, "8002", "pw8002")
        .await
        .with_tone(B_HZ);
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Tri"}), Some("support")).await;
    let inv_a = a.recv_request("INVITE", WAIT).await.expect("A rings");
    a.answer(&inv_a).await;
    widget.wait_for("state", Some("connected"), WAIT).await;

    let id = the_call(gw.http_addr).await;
    let path = format!("/api/calls/{id}/parties");
    let body = r#"{"agent": "8002"}"#;
    let (code, resp) = http(gw.http_addr, "POST", &path, Some("test-key"), body).await;
    assert_eq!(code, 202, "{resp}");
    let inv_b = b.recv_request("INVITE", WAIT).await.expect("B rings");
    assert_eq!(header(&inv_b, "X-Call-Id"), Some(id.to_string().as_str()));
    assert_eq!(
        header(&inv_b, "X-Customer-Name"),
        Some("Tri"),
        "B gets the context"
    );
    b.answer(&inv_b).await;
    let call = wait_party(gw.http_addr, id, "8002", "connected").await;
    assert_eq!(call["state"], "connected");
    assert_eq!(call["parties"].as_array().unwrap().len(), 3, "{call:#}");

    let ears = Ears {
        customer: browser.tap(),
        a: a.heard.clone(),
        b: b.heard.clone(),
    };
    ears.three_then_two(&mut a, &inv_a).await;
    assert_eq!(
        widget.states().last().map(String::as_str),
        Some("connected"),
        "the call goes on when one agent leaves"
    );

    widget.send(json!({"type": "hangup"}));
    b.recv_request("BYE", WAIT).await.expect("B gets BYE");
    browser.stop();
    check_record(gw.http_addr, id, "browser").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_customer_rtp_to_rtp_to_rtp_and_info_digits_both_ways() {
    let (gw, sip) = start(call_config(&["8001", "8002"], "", "")).await;
    let mut a = AgentPhone::register(sip, "8001", "pw8001").await;
    let mut b = AgentPhone::register(sip, "8002", "pw8002")
        .await
        .with_tone(B_HZ);
    let (trunk, phone, _, ok) = trunk_call(sip, CUSTOMER_HZ).await;
    // The IVR plays; the caller's phone presses 2 with SIP INFO (not RFC 4733): into support.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let info = in_dialog(
        &trunk,
        &ok,
        sip,
        "INFO",
        2,
        "application/dtmf-relay",
        "Signal=2\r\nDuration=160\r\n",
    );
    trunk.send(sip, info.as_bytes()).await;
    let inv_a = a
        .recv_request("INVITE", WAIT)
        .await
        .expect("the INFO digit took the caller to the queue: A rings");
    assert_eq!(header(&inv_a, "X-Queue"), Some("support"));
    a.answer(&inv_a).await;
    let id = the_call(gw.http_addr).await;
    wait_party(gw.http_addr, id, "8001", "connected").await;

    // A presses 5 on its phone as SIP INFO: the caller's phone gets it as RFC 4733.
    a.in_dialog(
        &inv_a,
        "INFO",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !phone.digits.lock().unwrap().contains('5') && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        phone.digits.lock().unwrap().as_str(),
        "5",
        "one press, once"
    );

    let path = format!("/api/calls/{id}/parties");
    let (code, resp) = http(
        gw.http_addr,
        "POST",
        &path,
        Some("test-key"),
        r#"{"agent":"8002"}"#,
    )
    .await;
    assert_eq!(code, 202, "{resp}");
    let inv_b = b.recv_request("INVITE", WAIT).await.expect("B rings");
    b.answer(&inv_b).await;
    wait_party(gw.http_addr, id, "8002", "connected").await;
    let ears = Ears {
        customer: phone.heard.clone(),
        a: a.heard.clone(),
        b: b.heard.clone(),
    };
    ears.three_then_two(&mut a, &inv_a).await;

    let bye = in_dialog(&trunk, &ok, sip, "BYE", 3, "", "");
    trunk.send(sip, bye.as_bytes()).await;
    b.recv_request("BYE", WAIT).await.expect("B gets BYE");
    check_record(gw.http_addr, id, "sip").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_queue_rings_two_agents_and_both_join() {
    let rules = "mode = \"conference\"\nconference_agents = 2\n";
    let (gw, sip) = start(call_config(&["8001", "8002"], rules, "")).await;
    let mut a = AgentPhone::register(sip, "8001", "pw8001").await;
    let mut b = AgentPhone::register(sip, "8002", "pw8002")
        .await
        .with_tone(B_HZ);
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Conf"}), Some("support")).await;
    let inv_a = a.recv_request("INVITE", WAIT).await.expect("A rings");
    let inv_b = b.recv_request("INVITE", WAIT).await.expect("B rings too");
    a.answer(&inv_a).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.answer(&inv_b).await;
    let id = the_call(gw.http_addr).await;
    wait_party(gw.http_addr, id, "8002", "connected").await;

    let ears = Ears {
        customer: browser.tap(),
        a: a.heard.clone(),
        b: b.heard.clone(),
    };
    ears.three_then_two(&mut a, &inv_a).await;
    widget.send(json!({"type": "hangup"}));
    b.recv_request("BYE", WAIT).await.expect("B gets BYE");
    browser.stop();
    check_record(gw.http_addr, id, "browser").await;
    gw.shutdown().await;
}
