//! Issue 14 in process: the widget's socket is not the call.
//! - A socket that closes mid-call does not end the call: the agent gets no BYE, the media goes
//!   on, and a new socket resumes the call with the token from `answer` (it gets `resumed`, then the
//!   call's state); `ping` gets `pong` with a fresh token. The browser then moves to another
//!   address with an ICE restart (`reoffer`): audio flows both ways again and the agent's stream
//!   keeps one SSRC with timestamps that only go forward.
//! - A socket that stays away longer than `widget.resume_grace_secs`: the call ends as
//!   `connection_lost`, the agent gets BYE, one record; resuming then gets `call_ended`.
//! - Forged, expired and unknown-call tokens each get their error and touch nothing; the IVR's
//!   `state` carries the menu's buttons.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use clicktocall::widget::resume::ResumeKey;
use common::call::{call_config, place_call, records_of, Widget};
use common::phones::AgentPhone;
use common::{http, start};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

fn answer_of(w: &Widget) -> (u64, String) {
    let a = w.last("answer").expect("an answer");
    let id = a["call_id"].as_u64().expect("call_id");
    (id, a["resume"].as_str().expect("resume token").to_string())
}

/// A new socket sends `resume` with `token`: the reply (`resumed` or an `error`).
async fn resume(addr: std::net::SocketAddr, token: &str) -> (Widget, Value) {
    let mut w = Widget::connect(addr).await;
    w.send(json!({"type": "resume", "v": 1, "token": token}));
    let reply = w.recv(WAIT).await.expect("a reply to resume");
    (w, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_is_resumed_and_an_ice_restart_moves_the_media() {
    let (gw, sip) = start(call_config(
        &["7001"],
        "",
        "[widget]\nresume_grace_secs = 5\n",
    ))
    .await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, "7001", "pw7001").await;
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, json!({"name": "Mo"}), Some("support")).await;
    let (id, token) = answer_of(&widget);
    assert_eq!(widget.last("answer").unwrap()["resume_grace_secs"], 5);
    let invite = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&invite).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The socket drops: no BYE, the media goes on, the call is still one call.
    widget.close();
    let mark = browser.heard_len();
    assert!(
        agent
            .recv_request("BYE", Duration::from_millis(1500))
            .await
            .is_none(),
        "a socket blip must not hang up the agent"
    );
    let heard = browser.heard_since(mark);
    assert!(heard.len() > 8000, "media went on: {} samples", heard.len());
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        1000.0
    );
    let (_, calls) = http(addr, "GET", "/api/calls", Some("test-key"), "").await;
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");

    // A new socket resumes it and is told where the call is.
    let (mut w2, reply) = resume(addr, &token).await;
    assert_eq!(reply["type"], "resumed", "{reply}");
    assert_eq!(reply["call_id"], id);
    w2.wait_for("state", Some("connected"), WAIT).await;
    w2.send(json!({"type": "ping"}));
    let pong = w2.wait_for("pong", None, WAIT).await;
    assert!(
        pong["resume"]
            .as_str()
            .is_some_and(|t| t.starts_with("r1.")),
        "{pong}"
    );

    // The browser moves to 127.0.0.2 with an ICE restart on the same call.
    let moved = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let offer = browser.move_to(moved).await;
    w2.send(json!({"type": "reoffer", "sdp": offer}));
    let answer = w2.wait_for("answer", None, WAIT).await;
    assert_eq!(answer["call_id"], id);
    browser.accept(answer["sdp"].as_str().unwrap());
    let agent_mark = agent.received.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let heard = browser.heard_since(mark);
    assert!(
        heard.len() > 4000,
        "the browser hears again: {}",
        heard.len()
    );
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        1000.0
    );
    let agent_heard = agent.heard.lock().unwrap().clone();
    assert_eq!(
        dominant_frequency(&agent_heard[agent_heard.len() - 4000..], 8000),
        440.0,
        "the agent hears the browser again"
    );
    let stream = agent.received.lock().unwrap().clone();
    assert!(stream.len() > agent_mark + 100, "{}", stream.len());
    assert!(
        stream.iter().all(|(ssrc, _)| *ssrc == stream[0].0),
        "one SSRC toward the agent"
    );
    assert!(
        stream
            .windows(2)
            .all(|w| w[1].1.wrapping_sub(w[0].1) < 1 << 31),
        "timestamps only go forward"
    );

    // Stats: bounded; nonsense is refused, the call untouched.
    w2.send(json!({"type": "stats", "received": 900, "lost": 2, "jitter_ms": 4.5, "rtt_ms": 3.0}));
    w2.send(json!({"type": "stats", "received": 900, "lost": 2, "jitter_ms": -1.0}));
    let err = w2.wait_for("error", None, WAIT).await;
    assert_eq!(err["code"], "malformed", "{err}");

    w2.send(json!({"type": "hangup"}));
    let ended = w2.wait_for("state", Some("ended"), WAIT).await;
    assert_eq!(ended["reason"], "customer_hangup");
    assert!(agent.recv_request("BYE", WAIT).await.is_some());
    let records = records_of(addr, id).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let customer = &records[0]["parties"][0];
    assert_eq!(customer["party"], "customer");
    assert_eq!(customer["reported"]["received"], 900, "{customer}");
    let mos = customer["mos"].as_f64().expect("the customer's MOS");
    assert!((4.0..=4.5).contains(&mos), "a clean call: {mos}");
    browser.stop();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_stays_away_ends_the_call_as_lost() {
    let (gw, sip) = start(call_config(
        &["7002"],
        "",
        "[widget]\nresume_grace_secs = 1\n",
    ))
    .await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, "7002", "pw7002").await;
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, json!({}), Some("support")).await;
    let (id, token) = answer_of(&widget);
    let invite = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&invite).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    widget.close();
    assert!(
        agent.recv_request("BYE", WAIT).await.is_some(),
        "the grace ran out: the agent is released"
    );
    let records = records_of(addr, id).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["end_reason"], "connection_lost");
    let (_, reply) = resume(addr, &token).await;
    assert_eq!(reply["code"], "call_ended", "{reply}");
    browser.stop();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resume_tokens_are_refused_and_the_menu_has_buttons() {
    let extra = "[widget]\nresume_secret = \"s3cret\"\n";
    let (gw, _sip) = start(call_config(&[], "", extra)).await;
    let addr = gw.http_addr;
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, json!({}), None).await;
    let ivr = widget.wait_for("state", Some("ivr"), WAIT).await;
    assert_eq!(
        ivr["options"],
        json!([{"digit": "1", "label": "sales"}, {"digit": "2", "label": "support"}]),
        "the default menu's buttons name the queues: {ivr}"
    );
    let (id, token) = answer_of(&widget);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = ResumeKey::new(b"s3cret", 60);
    let forged = format!("{}AAAA", &token[..token.len() - 4]);
    let cases = [
        (forged, "resume_invalid"),
        ("not-a-token".to_string(), "resume_invalid"),
        (
            ResumeKey::new(b"guess", 60).issue(id, None, now),
            "resume_invalid",
        ),
        (key.issue(id, None, now - 3600), "resume_expired"),
        (key.issue(id ^ 1, None, now), "call_ended"),
    ];
    for (token, code) in cases {
        let (_, reply) = resume(addr, &token).await;
        assert_eq!(reply["type"], "error", "{token}: {reply}");
        assert_eq!(reply["code"], code, "{token}: {reply}");
    }
    // A socket that holds a call cannot resume another.
    widget.send(json!({"type": "resume", "v": 1, "token": token}));
    let err = widget.wait_for("error", None, WAIT).await;
    assert_eq!(err["code"], "call_in_progress");
    // The real call is untouched: still in the menu, still on its socket.
    let (code, call) = http(
        addr,
        "GET",
        &format!("/api/calls/{id}"),
        Some("test-key"),
        "",
    )
    .await;
    assert_eq!(code, 200, "{call}");
    assert_eq!(call["state"], "ivr");
    widget.send(json!({"type": "ping"}));
    widget.wait_for("pong", None, WAIT).await;
    // Pressing a button is pressing the digit: support.
    tokio::time::sleep(Duration::from_millis(500)).await;
    widget.send(json!({"type": "dtmf", "digits": "2"}));
    widget.wait_for("state", Some("queued"), WAIT).await;
    browser.stop();
    gw.shutdown().await;
}
