//! Issue 16, acceptances 1, 2 and 4 (supervisor side) in process: a customer (browser, 440 Hz), an
//! agent (1000 Hz) and a supervisor (700 Hz) joined over REST, mode by mode, each listener checked
//! by the Goertzel power of each tone: monitor — the supervisor hears 440 and 1000, nobody hears
//! 700; whisper — the agent hears 700 (also while the customer sends nothing), the customer never;
//! barge — everybody hears everybody; takeover — the agent gets BYE, customer and supervisor talk.
//! A supervisor's key switches the mode. Recorded: a whisper is on neither channel, a barge on the
//! agents'. A supervisor of another queue gets 403; unknown ids, bad bodies, wrong states.

use super::calls_are_recorded_in_stereo::{the_call, tmp_dir};
use crate::common;

use common::call::{call_config, place_call, records_of, Widget};
use common::ears::{level, next_second, settles, tones};
use common::phones::AgentPhone;
use common::{http, start};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const KEY: Option<&str> = Some("test-key");

fn config(rules: &str, extra: &str) -> clicktocall::config::Config {
    let extra = format!(
        "{extra}\n[[supervisors]]\nid = \"9001\"\npassword = \"pw9001\"\nqueues = [\"support\"]\n\
         [[supervisors]]\nid = \"9002\"\npassword = \"pw9002\"\nqueues = [\"sales\"]\n"
    );
    call_config(&["8301"], rules, &extra)
}

async fn supervise(addr: SocketAddr, id: u64, method: &str, body: &str) -> (u16, Value) {
    http(
        addr,
        method,
        &format!("/api/calls/{id}/supervise"),
        KEY,
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_whisper_barge_and_takeover_are_heard_by_exactly_whom_they_should() {
    let dir = tmp_dir("supervise");
    let extra = format!("[recording]\ndirectory = \"{}\"\n", dir.display());
    let (gw, sip) = start(config("record = \"always\"\n", &extra)).await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, "8301", "pw8301").await;
    let mut sup = AgentPhone::register(sip, "9001", "pw9001")
        .await
        .with_tone(700.0);
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, json!({}), Some("support")).await;
    let inv = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let id = the_call(addr).await;

    let (code, body) = supervise(
        addr,
        id,
        "POST",
        r#"{"supervisor":"9001","mode":"monitor"}"#,
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let sinv = sup
        .recv_request("INVITE", WAIT)
        .await
        .expect("the supervisor's phone rings");
    sup.answer(&sinv).await;
    // [customer, agent, supervisor] x [440, 1000, 700]
    let (t, f) = (true, false);
    assert_eq!(
        settles(&browser, &agent, &sup, [[f, t, f], [t, f, f], [t, t, f]]).await,
        [[f, t, f], [t, f, f], [t, t, f]],
        "monitor"
    );

    let (code, body) =
        supervise(addr, id, "PUT", r#"{"supervisor":"9001","mode":"whisper"}"#).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        settles(&browser, &agent, &sup, [[f, t, f], [t, f, t], [t, t, f]]).await,
        [[f, t, f], [t, f, t], [t, t, f]],
        "whisper"
    );
    // The whisper reaches the agent when the customer sends nothing at all.
    browser.mute(true);
    assert_eq!(
        settles(&browser, &agent, &sup, [[f, t, f], [f, f, t], [f, t, f]]).await,
        [[f, t, f], [f, f, t], [f, t, f]],
        "whisper, customer silent"
    );
    browser.mute(false);

    // A key on the supervisor's phone: 6 is barge.
    sup.in_dialog(
        &sinv,
        "INFO",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=6\r\nDuration=160\r\n",
    )
    .await;
    assert_eq!(
        settles(&browser, &agent, &sup, [[f, t, t], [t, f, t], [t, t, f]]).await,
        [[f, t, t], [t, f, t], [t, t, f]],
        "barge"
    );

    let (code, body) = supervise(
        addr,
        id,
        "PUT",
        r#"{"supervisor":"9001","mode":"takeover"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        agent.recv_request("BYE", WAIT).await.is_some(),
        "the agent is released"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (b, s) = (browser.heard_len(), sup.heard_len());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        tones(&browser.heard_since(b)),
        [f, f, t],
        "the customer hears the supervisor"
    );
    assert_eq!(
        tones(&sup.heard.lock().unwrap()[s..]),
        [t, f, f],
        "and the other way round"
    );
    let (code, _) = supervise(addr, id, "PUT", r#"{"supervisor":"9001","mode":"monitor"}"#).await;
    assert_eq!(code, 409, "a takeover is final");

    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
    assert!(sup.recv_request("BYE", WAIT).await.is_some());
    let records = records_of(addr, id).await;
    let parties = records[0]["parties"].as_array().unwrap();
    let s = parties
        .iter()
        .find(|p| p["party"] == "9001")
        .expect("the supervisor's entry");
    assert_eq!(s["role"], "supervisor");
    let modes: Vec<&str> = s["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["monitor", "whisper", "barge", "takeover"]);

    // The recording: a whisper on neither channel, a barge on the agents' (right) channel only.
    let since = |i: usize| s["modes"][i][1].as_i64().unwrap();
    let rec = &records[0]["recordings"][0];
    let start = rec["started_ms"].as_i64().unwrap();
    let wav = hound::WavReader::open(rec["file"].as_str().unwrap()).expect("a WAV");
    let all: Vec<i16> = wav.into_samples().map(Result::unwrap).collect();
    let channel = |c: usize, from: i64, to: i64| -> Vec<i16> {
        let (a, b) = (
            ((from - start + 500) * 8) as usize,
            ((to - start - 200) * 8) as usize,
        );
        all.iter()
            .skip(c)
            .step_by(2)
            .skip(a)
            .take(b - a)
            .copied()
            .collect()
    };
    let (whisper, barge, takeover) = (since(1), since(2), since(3));
    for c in 0..2 {
        let w = channel(c, whisper, barge);
        assert!(
            level(&w, 700.0) < 60.0,
            "a whisper on channel {c}: {:.0}",
            level(&w, 700.0)
        );
    }
    let (left, right) = (channel(0, barge, takeover), channel(1, barge, takeover));
    assert!(
        level(&right, 700.0) > 300.0,
        "the barge is on the agents' channel"
    );
    assert!(level(&left, 700.0) < 60.0, "and not on the customer's");
    drop(gw);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervise_refuses_other_queues_unknown_ids_bad_bodies_and_wrong_states() {
    let (gw, sip) = start(config("", "")).await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, "8301", "pw8301").await;
    let mut widget = Widget::connect(addr).await;
    let _browser = place_call(&mut widget, json!({}), Some("support")).await;
    let inv = agent.recv_request("INVITE", WAIT).await.expect("rings");
    // While the agent's phone rings: nobody to supervise yet.
    let id = the_call(addr).await;
    let (code, body) = supervise(
        addr,
        id,
        "POST",
        r#"{"supervisor":"9001","mode":"monitor"}"#,
    )
    .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("not_connected")),
        "{body}"
    );
    agent.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;

    let post = |body: &'static str| supervise(addr, id, "POST", body);
    let (code, body) = post(r#"{"supervisor":"9002","mode":"monitor"}"#).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (403, Some("not_your_queue")),
        "{body}"
    );
    let (code, body) = post(r#"{"supervisor":"nobody","mode":"monitor"}"#).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("unknown_supervisor"))
    );
    for bad in [
        "",
        "{}",
        r#"{"supervisor":"9001"}"#,
        r#"{"supervisor":"9001","mode":"spy"}"#,
        r#"{"supervisor":9001,"mode":"monitor"}"#,
        r#"{"supervisor":"9001","mode":"monitor","x":1}"#,
    ] {
        let (code, body) = supervise(addr, id, "POST", bad).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }
    let (code, body) = supervise(
        addr,
        999,
        "POST",
        r#"{"supervisor":"9001","mode":"monitor"}"#,
    )
    .await;
    assert_eq!((code, body["error"].as_str()), (404, Some("unknown_call")));
    let (code, body) = supervise(addr, id, "PUT", r#"{"supervisor":"9001","mode":"barge"}"#).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("not_found")),
        "not in the call: {body}"
    );
    // Nobody answers (not registered): the ring ends, the call goes on.
    let (code, _) = post(r#"{"supervisor":"9001","mode":"monitor"}"#).await;
    assert_eq!(code, 202);
    let (code, body) = post(r#"{"supervisor":"9001","mode":"monitor"}"#).await;
    assert!(
        code == 409 || code == 202,
        "ringing or already failed: {code} {body}"
    );
    let (code, body) = http(addr, "POST", &format!("/api/calls/{id}/hold"), KEY, "").await;
    assert_eq!(code, 200, "{body}");
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_dials_the_feature_code_listens_and_switches_by_key_and_agents_cannot_dial_out(
) {
    let (gw, sip) = start(config("", "")).await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, "8301", "pw8301").await;
    let mut sup = AgentPhone::register(sip, "9001", "pw9001")
        .await
        .with_tone(700.0);
    let mut other = AgentPhone::register(sip, "9002", "pw9002")
        .await
        .with_tone(700.0);
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, json!({}), Some("support")).await;
    let inv = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let id = the_call(addr).await;

    // The agent may not reach the trunk (or anything not internal); nothing is sent there.
    let fraud = agent.dial("+15550100", "pw8301").await;
    assert_eq!(fraud.status(), 403, "{}", fraud.response);
    // Another queue's supervisor is refused; an unknown target is not found.
    assert_eq!(other.dial("*558301", "pw9002").await.status(), 403);
    assert_eq!(sup.dial("*557777", "pw9001").await.status(), 404);

    let d = sup.dial("*558301", "pw9001").await;
    assert_eq!(d.status(), 200, "{}", d.response);
    let (t, f) = (true, false);
    assert_eq!(
        settles(&browser, &agent, &sup, [[f, t, f], [t, f, f], [t, t, f]]).await,
        [[f, t, f], [t, f, f], [t, t, f]],
        "monitor"
    );
    // 5 on the supervisor's phone: whisper; never heard by the customer.
    let info = "Content-Type: application/dtmf-relay\r\n";
    sup.request_in(&d, "INFO", 3, info, "Signal=5\r\nDuration=160\r\n")
        .await;
    assert_eq!(
        settles(&browser, &agent, &sup, [[f, t, f], [t, f, t], [t, t, f]]).await,
        [[f, t, f], [t, f, t], [t, t, f]],
        "whisper"
    );
    let (_, call) = http(addr, "GET", &format!("/api/calls/{id}"), KEY, "").await;
    let s = call["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["party"] == "9001")
        .cloned();
    assert_eq!(
        s.map(|p| p["state"].clone()),
        Some(json!("whisper")),
        "{call}"
    );
    // The supervisor hangs up: the call goes on.
    sup.request_in(&d, "BYE", 4, "", "").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        next_second(&browser, &agent, &sup).await[0],
        [f, t, f],
        "customer and agent talk on"
    );
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
    let records = records_of(addr, id).await;
    let s = records[0]["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["party"] == "9001")
        .cloned()
        .unwrap();
    assert!(s["left_ms"].is_i64(), "{s}");
}
