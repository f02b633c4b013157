//! REST call control in process (issue 13, acceptances 5 and 7 without real peers):
//! - hold: the customer hears music (not the agent) and the widget shows `on_hold`; unhold: the
//!   agent again; transfer to a queue: the widget shows `transferring`, then `connected` with the
//!   agent who answers there; hangup: everybody gets BYE, the widget `ended` (`api_hangup`), one
//!   complete record;
//! - every route answers an unknown call with 404, a command that does not fit the state with 409
//!   and a reason, a bad body with 400; none of them disturbs the call;
//! - adding the same agent twice, an agent who is offline, an unknown agent; a hangup racing a
//!   transfer; a command for a call that just ended: a clear error each, one complete record.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use common::call::{call_config, place_call, records_of, rms, Widget};
use common::phones::AgentPhone;
use common::{http, start};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const KEY: Option<&str> = Some("test-key");

async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    http(addr, "POST", path, KEY, body).await
}

/// `method path body` answers `code` (and, when given, that `error` code).
async fn expect(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    code: u16,
    error: Option<&str>,
) {
    let (c, b) = http(addr, method, path, KEY, body).await;
    assert_eq!(c, code, "{method} {path} {body}: {b}");
    if let Some(e) = error {
        assert_eq!(b["error"].as_str(), Some(e), "{method} {path} {body}: {b}");
    }
}

async fn the_call(addr: SocketAddr) -> u64 {
    let (_, calls) = http(addr, "GET", "/api/calls", KEY, "").await;
    calls[0]["id"].as_u64().expect("a running call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_transfer_to_a_queue_and_hangup_over_rest() {
    let rules = "strategy = \"round_robin\"\n";
    let (gw, sip) = start(call_config(&["6001", "6002"], rules, "")).await;
    let addr = gw.http_addr;
    let mut first = AgentPhone::register(sip, "6001", "pw6001").await;
    let mut second = AgentPhone::register(sip, "6002", "pw6002").await;
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, json!({"name": "Rex"}), Some("support")).await;
    let inv = first.recv_request("INVITE", WAIT).await.expect("rings");
    first.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let id = the_call(addr).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Hold: music, not the agent's 1000 Hz; the widget says on_hold.
    let (code, body) = post(addr, &format!("/api/calls/{id}/hold"), "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["call"]["state"], "on_hold");
    widget.wait_for("state", Some("on_hold"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mark = browser.heard_len();
    let agent_mark = first.heard_len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held = browser.heard_since(mark);
    assert!(rms(&held) > 300.0, "music plays: rms {}", rms(&held));
    assert_ne!(dominant_frequency(&held, 8000), 1000.0, "not the agent");
    let agent_heard = first.heard.lock().unwrap()[agent_mark..].to_vec();
    assert!(
        rms(&agent_heard) < 50.0,
        "a held customer is not heard: {}",
        rms(&agent_heard)
    );
    let (code, _) = post(addr, &format!("/api/calls/{id}/hold"), "").await;
    assert_eq!(code, 200, "holding a held call is no error");

    let (code, body) = post(addr, &format!("/api/calls/{id}/unhold"), "").await;
    assert_eq!(code, 200, "{body}");
    widget.wait_for("state", Some("connected"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let h = browser.heard_since(mark);
    assert_eq!(dominant_frequency(&h[h.len() - 4000..], 8000), 1000.0);

    // A prompt played into the call: the customer hears it in place of the agent, then the agent.
    let (code, body) = post(
        addr,
        &format!("/api/calls/{id}/play"),
        r#"{"prompt": "goodbye"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let prompt = browser.heard_since(mark);
    assert!(
        rms(&prompt) > 300.0,
        "the prompt plays: rms {}",
        rms(&prompt)
    );
    assert_ne!(
        dominant_frequency(&prompt, 8000),
        1000.0,
        "not the agent while it plays"
    );
    let back = tokio::time::Instant::now() + WAIT;
    loop {
        let mark = browser.heard_len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let h = browser.heard_since(mark);
        if h.len() > 2000 && dominant_frequency(&h[h.len() - 2000..], 8000) == 1000.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < back,
            "the agent again after the prompt"
        );
    }

    // Transfer to the sales queue: the first agent gets BYE, the second rings and answers.
    let (code, body) = post(
        addr,
        &format!("/api/calls/{id}/transfer"),
        r#"{"queue": "sales"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    first
        .recv_request("BYE", WAIT)
        .await
        .expect("the first agent leaves");
    widget.wait_for("state", Some("transferring"), WAIT).await;
    let inv2 = second
        .recv_request("INVITE", WAIT)
        .await
        .expect("sales rings");
    assert_eq!(common::header(&inv2, "X-Queue"), Some("sales"));
    second.answer(&inv2).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let (_, call) = http(addr, "GET", &format!("/api/calls/{id}"), KEY, "").await;
    assert_eq!(call["agent"], "6002", "{call:#}");
    assert_eq!(call["queue"], "sales");

    // Hang up: the agent gets BYE, the widget ends with api_hangup, one complete record.
    let (code, body) = post(addr, &format!("/api/calls/{id}/hangup"), "").await;
    assert_eq!(code, 200, "{body}");
    second.recv_request("BYE", WAIT).await.expect("BYE");
    let ended = widget.wait_for("state", Some("ended"), WAIT).await;
    assert_eq!(ended["reason"], "api_hangup");
    browser.stop();
    let records = records_of(addr, id).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!(r["end_reason"], "api_hangup");
    assert_eq!(r["hung_up_by"], "api");
    let agents: Vec<&str> = r["parties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "agent")
        .map(|p| p["party"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["6001", "6002"]);
    let (code, body) = post(addr, &format!("/api/calls/{id}/hangup"), "").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("unknown_call")),
        "{body}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_calls_wrong_states_and_bad_bodies_get_clear_errors() {
    // 7003 is configured but never registers: offline.
    let (gw, sip) = start(call_config(&["7001", "7002", "7003"], "", "")).await;
    let addr = gw.http_addr;
    let mut widget = Widget::connect(addr).await;

    // Unknown call: every route says 404.
    for (method, path, body) in [
        ("GET", "/api/calls/999", ""),
        ("GET", "/api/calls/not-a-number", ""),
        ("POST", "/api/calls/999/hangup", ""),
        ("POST", "/api/calls/999/hold", ""),
        ("POST", "/api/calls/999/unhold", ""),
        ("POST", "/api/calls/999/transfer", r#"{"queue":"sales"}"#),
        ("POST", "/api/calls/999/parties", r#"{"agent":"7002"}"#),
        ("POST", "/api/calls/999/play", r#"{"prompt":"queued"}"#),
        ("DELETE", "/api/calls/999/parties/7002", ""),
    ] {
        let (code, b) = http(addr, method, path, KEY, body).await;
        assert_eq!(code, 404, "{method} {path}: {b}");
        assert_eq!(b["error"], "unknown_call", "{method} {path}: {b}");
        let (code, _) = http(addr, method, path, None, body).await;
        assert_eq!(code, 401, "{method} {path} without the key");
    }

    // A waiting call (nobody has registered yet): connected-only commands are 409 with a reason.
    let browser = place_call(&mut widget, json!({"name": "Wait"}), Some("support")).await;
    widget.wait_for("state", Some("queued"), WAIT).await;
    let id = the_call(addr).await;
    for (path, body) in [
        ("hold", ""),
        ("unhold", ""),
        ("transfer", r#"{"queue":"sales"}"#),
        ("parties", r#"{"agent":"7002"}"#),
        ("play", r#"{"prompt":"queued"}"#),
    ] {
        let (code, b) = post(addr, &format!("/api/calls/{id}/{path}"), body).await;
        assert_eq!(code, 409, "{path} while queued: {b}");
        assert_eq!(b["error"], "not_connected", "{path}: {b}");
        assert!(b["message"].as_str().unwrap().contains("queued"), "{b}");
    }
    let (code, b) = http(
        addr,
        "DELETE",
        &format!("/api/calls/{id}/parties/7001"),
        KEY,
        "",
    )
    .await;
    assert_eq!((code, b["error"].as_str()), (404, Some("not_found")), "{b}");

    // Bad bodies: 400, whatever the state.
    for (path, body) in [
        ("transfer", ""),
        ("transfer", "not json"),
        ("transfer", "{}"),
        ("transfer", r#"{"agent": 7002}"#),
        ("transfer", r#"{"agent": "7002", "queue": "sales"}"#),
        ("transfer", r#"{"number": "+15550100"}"#),
        ("transfer", r#"["7002"]"#),
        ("parties", r#"{"queue": "sales"}"#),
        ("parties", r#"{"agent": ""}"#),
        ("play", r#"{"file": "/etc/passwd"}"#),
        ("play", ""),
    ] {
        let (code, b) = post(addr, &format!("/api/calls/{id}/{path}"), body).await;
        assert_eq!(code, 400, "{path} {body}: {b}");
        assert!(!b["message"].as_str().unwrap_or_default().is_empty(), "{b}");
    }
    let states_before = widget.states().len();

    // Now an agent answers; the call is connected and none of the refused commands disturbed it.
    let mut a = AgentPhone::register(sip, "7001", "pw7001").await;
    let inv = a.recv_request("INVITE", WAIT).await.expect("7001 rings");
    a.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    assert!(widget.states().len() > states_before);

    for (method, route, body, code, error) in [
        (
            "POST",
            "parties",
            r#"{"agent":"7001"}"#,
            409,
            Some("already_in_call"),
        ),
        (
            "POST",
            "parties",
            r#"{"agent":"7003"}"#,
            409,
            Some("agent_unavailable"),
        ),
        (
            "POST",
            "parties",
            r#"{"agent":"nobody"}"#,
            400,
            Some("unknown_agent"),
        ),
        (
            "POST",
            "play",
            r#"{"prompt":"../../x"}"#,
            400,
            Some("unknown_prompt"),
        ),
        (
            "POST",
            "transfer",
            r#"{"queue":"nowhere"}"#,
            400,
            Some("unknown_queue"),
        ),
        (
            "POST",
            "transfer",
            r#"{"agent":"7003"}"#,
            409,
            Some("agent_unavailable"),
        ),
        // 7002 is not in the call.
        ("DELETE", "parties/7002", "", 404, None),
    ] {
        expect(
            addr,
            method,
            &format!("/api/calls/{id}/{route}"),
            body,
            code,
            error,
        )
        .await;
    }

    // Adding the same agent twice: the second is refused while the first rings.
    let _b = AgentPhone::register(sip, "7002", "pw7002").await;
    let parties = format!("/api/calls/{id}/parties");
    let add = r#"{"agent":"7002"}"#;
    expect(addr, "POST", &parties, add, 202, None).await;
    expect(addr, "POST", &parties, add, 409, Some("already_ringing")).await;
    // Removing a ringing party cancels it.
    expect(addr, "DELETE", &format!("{parties}/7002"), "", 200, None).await;

    // A hangup racing a transfer: one wins, the other gets a clear error; the call ends once.
    let path_h = format!("/api/calls/{id}/hangup");
    let path_t = format!("/api/calls/{id}/transfer");
    let (h, t) = tokio::join!(
        post(addr, &path_h, ""),
        post(addr, &path_t, r#"{"queue":"sales"}"#)
    );
    let codes = [h.0, t.0];
    assert!(
        codes.contains(&200),
        "one of them is carried out: {h:?} {t:?}"
    );
    for (code, b) in [&h, &t] {
        assert!(
            [200, 404, 409].contains(code),
            "a clear answer, not a failure: {code} {b}"
        );
        if *code != 200 {
            assert!(b["message"].as_str().is_some(), "{b}");
        }
    }
    // A transfer that came first leaves a waiting call; the hangup after it ended it already.
    if h.0 != 200 {
        let (c, b) = post(addr, &path_h, "").await;
        assert_eq!(c, 200, "{b}");
    }
    widget.wait_for("state", Some("ended"), WAIT).await;
    a.recv_request("BYE", WAIT)
        .await
        .expect("the agent gets BYE");
    // A command for the call that just ended.
    let (c, b) = post(addr, &format!("/api/calls/{id}/hold"), "").await;
    assert_eq!((c, b["error"].as_str()), (404, Some("unknown_call")), "{b}");
    browser.stop();
    let records = records_of(addr, id).await;
    assert_eq!(records.len(), 1, "one complete record: {records:#?}");
    assert!(records[0]["ended_ms"].as_i64().is_some());
    let (_, calls) = http(addr, "GET", "/api/calls", KEY, "").await;
    assert_eq!(calls, json!([]), "no stuck call");
    gw.shutdown().await;
}
