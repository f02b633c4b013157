//! Acceptance 4 and 5 of call control.
//! - The agent holds (re-INVITE sendonly): the customer hears the music on hold (its level, and not
//!   the agent's tone); unhold: the agent's 1000 Hz again.
//! - The agent REFERs to another agent: 202, the target is INVITEd and answers, the customer hears
//!   the new agent, the first agent gets NOTIFY with `SIP/2.0 200 OK` and a BYE.
//! - A context value with `\r\nEvil: 1` never makes an `Evil` header; a 10 KB context is refused
//!   with a clear widget error.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use common::call::{call_config, place_call, rms, Widget};
use common::phones::AgentPhone;
use common::{header, start, status};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn reinvite_sdp(port: u16, dir: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_plays_music_then_blind_transfer_reaches_the_second_agent() {
    let rules = "strategy = \"round_robin\"\n";
    let (gw, sip) = start(call_config(&["5001", "5002"], rules, "")).await;
    let mut first = AgentPhone::register(sip, "5001", "pw5001").await;
    let mut second = AgentPhone::register(sip, "5002", "pw5002").await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Eve"}), Some("support")).await;
    let invite = first.recv_request("INVITE", WAIT).await.expect("rings");
    first.answer(&invite).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Hold: re-INVITE with a=sendonly (to a discard port: a holding phone sends nothing anyway).
    first
        .in_dialog(&invite, "INVITE", "", &reinvite_sdp(9, "sendonly"))
        .await;
    let ok = first.final_response().await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert!(
        ok.contains("a=recvonly"),
        "the gateway answers recvonly: {ok}"
    );
    first.ack(&invite, &ok).await;
    widget.wait_for("state", Some("on_hold"), WAIT).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let music = browser.heard_since(mark);
    assert!(
        rms(&music[music.len() / 2..]) > 800.0,
        "music level {}",
        rms(&music)
    );
    assert_ne!(
        dominant_frequency(&music[music.len() - 4000..], 8000),
        1000.0,
        "the customer hears music, not the agent"
    );

    // Unhold: back to the agent's tone.
    first
        .in_dialog(&invite, "INVITE", "", &reinvite_sdp(9, "sendrecv"))
        .await;
    let ok = first.final_response().await;
    assert_eq!(status(&ok), 200, "{ok}");
    first.ack(&invite, &ok).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resumed = browser.heard_since(mark);
    assert_eq!(
        dominant_frequency(&resumed[resumed.len() - 4000..], 8000),
        1000.0,
        "unhold: the agent's tone again"
    );

    // Blind transfer to 5002.
    first
        .in_dialog(
            &invite,
            "REFER",
            &format!("Refer-To: <sip:5002@{sip}>\r\n"),
            "",
        )
        .await;
    let accepted = first.final_response().await;
    assert_eq!(status(&accepted), 202, "{accepted}");
    widget.wait_for("state", Some("transferring"), WAIT).await;
    let invite2 = second
        .recv_request("INVITE", WAIT)
        .await
        .expect("target rings");
    second.answer(&invite2).await;
    widget.wait_for("state", Some("connected"), WAIT).await;

    // The first agent hears NOTIFY 200 OK (after 100 Trying) and then a BYE.
    let mut saw_ok = false;
    let mut saw_bye = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(saw_ok && saw_bye) && tokio::time::Instant::now() < deadline {
        let Some(m) = first.sip.recv(Duration::from_millis(500)).await else {
            continue;
        };
        if m.starts_with("NOTIFY ") {
            assert_eq!(header(&m, "Event"), Some("refer"));
            saw_ok |= m.contains("\r\n\r\nSIP/2.0 200 OK");
            first.reply(&m, 200, None).await;
        } else if m.starts_with("BYE ") {
            assert!(saw_ok, "the BYE comes after the final NOTIFY");
            saw_bye = true;
            first.reply(&m, 200, None).await;
        }
    }
    assert!(saw_ok, "NOTIFY with SIP/2.0 200 OK");
    assert!(saw_bye, "the first agent gets BYE");
    first.stop_rtp();

    // The customer now talks to the second agent (1000 Hz), who hears the customer (440 Hz).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let h2 = second.heard.lock().unwrap().clone();
    assert!(h2.len() > 4000, "second agent heard {}", h2.len());
    assert_eq!(dominant_frequency(&h2[h2.len() - 4000..], 8000), 440.0);
    let calls = api_calls(&gw).await;
    assert_eq!(calls[0]["agent"], "5002", "{calls}");
    browser.stop();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_header_never_appears_and_oversized_context_is_refused() {
    let (gw, sip) = start(call_config(&["6001"], "", "")).await;
    let agent = AgentPhone::register(sip, "6001", "pw6001").await;
    let mut widget = Widget::connect(gw.http_addr).await;

    // 10 KB of context: refused with a clear error; the socket stays usable.
    let big = "x".repeat(10 * 1024);
    widget.send(json!({"type": "call", "v": 1, "sdp": "v=0", "context": {"notes": big}}));
    let err = widget.wait_for("error", None, WAIT).await;
    assert_eq!(err["code"], "context_too_large", "{err}");
    widget.send_text("{not json");
    assert_eq!(
        widget.wait_for("error", None, WAIT).await["code"],
        "malformed"
    );

    let evil = json!({"name": "Eve\r\nEvil: 1", "crm_id": "1\nEvil: 2", "page": "/\u{7}x"});
    let browser = place_call(&mut widget, evil, Some("support")).await;
    let invite = agent.recv_request("INVITE", WAIT).await.expect("rings");
    assert!(header(&invite, "Evil").is_none(), "{invite}");
    assert!(
        !invite.to_ascii_lowercase().contains("\r\nevil"),
        "{invite}"
    );
    assert_eq!(header(&invite, "X-Customer-Name"), Some("EveEvil: 1"));
    agent.reply(&invite, 486, None).await;
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
    browser.stop();
    gw.shutdown().await;
}

async fn api_calls(gw: &clicktocall::gateway::Gateway) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.http_addr).await.unwrap();
    s.write_all(
        b"GET /api/calls HTTP/1.1\r\nHost: x\r\nX-Api-Key: test-key\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}
