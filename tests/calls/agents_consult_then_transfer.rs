//! Issue 16, acceptance 3 in process: consult calls and attended transfer. From a desk phone:
//! agent A holds the customer, dials agent B (A's second dialog rings until B answers), talks to
//! B (the customer hears music, neither agent hears the customer), then REFERs the customer's
//! dialog with `Replaces` naming the consult dialog, the way Yealink phones do: the customer hears
//! B, A gets NOTIFY 200 and BYE on both dialogs, the customer never sees a REFER. From a console:
//! `POST /consult`, `swap`, `complete` (and `cancel`, `threeway`), with their wrong-state answers.

use super::calls_are_recorded_in_stereo::the_call;
use crate::common;

use common::call::{call_config, place_call, records_of, Widget};
use common::ears::{next_second, settles};
use common::phones::AgentPhone;
use common::{header, http, start, status};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const KEY: Option<&str> = Some("test-key");

fn sdp(dir: &str) -> String {
    format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n")
}

fn tag(h: &str) -> String {
    h.split("tag=")
        .nth(1)
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_phone_consults_then_transfers_with_replaces() {
    let rules = "strategy = \"round_robin\"\n";
    let (gw, sip) = start(call_config(&["8401", "8402"], rules, "")).await;
    let addr = gw.http_addr;
    let mut a = AgentPhone::register(sip, "8401", "pw8401").await;
    let mut b = AgentPhone::register(sip, "8402", "pw8402")
        .await
        .with_tone(700.0);
    let mut widget = Widget::connect(addr).await;
    let customer = place_call(&mut widget, json!({"name": "Ida"}), Some("support")).await;
    let inv = a.recv_request("INVITE", WAIT).await.expect("rings");
    a.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let id = the_call(addr).await;

    // Hold, as a desk phone does before a consult call.
    a.in_dialog(&inv, "INVITE", "", &sdp("sendonly")).await;
    let ok = a.final_response().await;
    assert_eq!(status(&ok), 200, "{ok}");
    a.ack(&inv, &ok).await;
    widget.wait_for("state", Some("on_hold"), WAIT).await;

    // The consult call: A dials B; A's phone rings back until B answers.
    let (consult, ()) = tokio::join!(a.dial("8402", "pw8401"), async {
        let inv_b = b.recv_request("INVITE", WAIT).await.expect("B rings");
        b.answer(&inv_b).await;
    });
    assert_eq!(consult.status(), 200, "{}", consult.response);
    let (t, f) = (true, false);
    // [customer, A, B] x [440, 1000, 700]: A and B talk; the held customer hears neither.
    assert_eq!(
        settles(&customer, &a, &b, [[f, f, f], [f, f, t], [f, t, f]]).await,
        [[f, f, f], [f, f, t], [f, t, f]],
        "consult"
    );

    // A Replaces naming no dialog of ours: 481, and the call goes on.
    let bogus = format!("Refer-To: <sip:8402@{sip}?Replaces=nope%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n");
    a.in_dialog(&inv, "REFER", &bogus, "").await;
    let refused = a.final_response().await;
    assert_eq!(status(&refused), 481, "{refused}");

    // REFER with Replaces on the customer's dialog, naming the consult dialog.
    let replaces = format!(
        "{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
        header(&consult.invite, "Call-ID")
            .unwrap()
            .replace('@', "%40"),
        tag(header(&consult.response, "To").unwrap()),
        tag(header(&consult.invite, "From").unwrap()),
    );
    let refer_to = format!(
        "Refer-To: <sip:8402@{sip}?Replaces={replaces}>\r\nReferred-By: <sip:8401@{sip}>\r\n"
    );
    a.in_dialog(&inv, "REFER", &refer_to, "").await;
    let accepted = a.final_response().await;
    assert_eq!(status(&accepted), 202, "{accepted}");
    widget.wait_for("state", Some("transferring"), WAIT).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let (mut notified, mut byes) = (false, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while byes < 2 && tokio::time::Instant::now() < deadline {
        let Some(m) = a.sip.recv(Duration::from_millis(300)).await else {
            continue;
        };
        if m.starts_with("NOTIFY ") {
            notified |= m.contains("SIP/2.0 200 OK");
            a.reply(&m, 200, None).await;
        } else if m.starts_with("BYE ") {
            assert!(notified, "the final NOTIFY comes before the BYE");
            byes += 1;
            a.reply(&m, 200, None).await;
        }
    }
    assert_eq!(byes, 2, "both of A's dialogs end");
    let heard = next_second(&customer, &a, &b).await;
    assert_eq!(
        [heard[0], heard[2]],
        [[f, f, t], [t, f, f]],
        "customer and B talk"
    );

    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
    let records = records_of(addr, id).await;
    let parties: Vec<&str> = records[0]["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["party"].as_str().unwrap())
        .collect();
    assert_eq!(
        parties,
        ["customer", "8401", "8402"],
        "one record lists everybody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_consults_swaps_and_completes_and_wrong_states_are_refused() {
    let rules = "strategy = \"round_robin\"\n";
    let (gw, sip) = start(call_config(&["8501", "8502"], rules, "")).await;
    let addr = gw.http_addr;
    let mut a = AgentPhone::register(sip, "8501", "pw8501").await;
    let mut b = AgentPhone::register(sip, "8502", "pw8502")
        .await
        .with_tone(700.0);
    let mut widget = Widget::connect(addr).await;
    let customer = place_call(&mut widget, json!({}), Some("support")).await;
    let inv = a.recv_request("INVITE", WAIT).await.expect("rings");
    a.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let id = the_call(addr).await;
    let post = |path: String, body: &'static str| async move {
        http(addr, "POST", &path, KEY, body).await
    };
    let action = |a: &str| format!("/api/calls/{id}/consult/{a}");

    let (code, body) = post(action("complete"), "").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("no_consult")),
        "{body}"
    );
    let (code, body) = post(action("dance"), "").await;
    assert_eq!(code, 404, "{body}");
    for bad in ["", "{}", r#"{"team":"sales"}"#, r#"{"agent":8502}"#] {
        let (code, body) = post(format!("/api/calls/{id}/consult"), bad).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }
    let (code, body) = post(format!("/api/calls/{id}/consult"), r#"{"agent":"nobody"}"#).await;
    assert_eq!((code, body["error"].as_str()), (400, Some("unknown_agent")));
    let (code, body) = post(format!("/api/calls/{id}/consult"), r#"{"queue":"nowhere"}"#).await;
    assert_eq!((code, body["error"].as_str()), (400, Some("unknown_queue")));
    let (code, body) = post(format!("/api/calls/{id}/consult"), r#"{"agent":"8501"}"#).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("already_in_call")),
        "{body}"
    );
    let (code, _) = post("/api/calls/999/consult".into(), r#"{"agent":"8502"}"#).await;
    assert_eq!(code, 404);

    // A consult to the queue: its longest-idle agent not in the call (8502) rings.
    let (code, body) = post(format!("/api/calls/{id}/consult"), r#"{"queue":"support"}"#).await;
    assert_eq!(code, 202, "{body}");
    let (code, body) = post(action("swap"), "").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("consult_not_answered"))
    );
    let inv_b = b.recv_request("INVITE", WAIT).await.expect("B rings");
    b.answer(&inv_b).await;
    let (t, f) = (true, false);
    assert_eq!(
        settles(&customer, &a, &b, [[f, f, f], [f, f, t], [f, t, f]]).await,
        [[f, f, f], [f, f, t], [f, t, f]],
        "consult"
    );
    let (code, _) = post(action("swap"), "").await;
    assert_eq!(code, 200);
    assert_eq!(
        settles(&customer, &a, &b, [[f, t, f], [t, f, f], [f, f, f]]).await,
        [[f, t, f], [t, f, f], [f, f, f]],
        "swapped"
    );
    let (code, _) = post(action("swap"), "").await;
    assert_eq!(code, 200);
    let (code, body) = post(action("complete"), "").await;
    assert_eq!(code, 200, "{body}");
    assert!(a.recv_request("BYE", WAIT).await.is_some(), "A leaves");
    let heard = next_second(&customer, &a, &b).await;
    assert_eq!(
        [heard[0], heard[2]],
        [[f, f, t], [t, f, f]],
        "customer and B talk"
    );
    let (_, call) = http(addr, "GET", &format!("/api/calls/{id}"), KEY, "").await;
    assert_eq!(call["agent"], "8502", "{call}");

    // B consults A again and cancels: B and the customer are back together.
    let (code, _) = post(format!("/api/calls/{id}/consult"), r#"{"agent":"8501"}"#).await;
    assert_eq!(code, 202);
    let inv_a = a.recv_request("INVITE", WAIT).await.expect("A rings");
    a.answer(&inv_a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _) = post(action("cancel"), "").await;
    assert_eq!(code, 200);
    assert!(a.recv_request("BYE", WAIT).await.is_some());
    let heard = next_second(&customer, &a, &b).await;
    assert_eq!(
        [heard[0], heard[2]],
        [[f, f, t], [t, f, f]],
        "back together"
    );
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
}
