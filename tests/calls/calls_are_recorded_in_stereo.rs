//! Issue 15 in process (acceptances 1, 2 and 4 without real peers): a browser customer (440 Hz)
//! and an agent's phone (1000 Hz) in a queue with `record = "always"`: the WAV is stereo, the
//! customer left and the agent right, as long as the talk; a span paused over REST is silent on
//! both channels and listed in the record. The REST command's unknown call, wrong state and bad
//! body; a directory that cannot be written: the call goes on and the record says why.

use crate::common;

use clicktocall::media::tone::{dominant_frequency, rms};
use common::call::{call_config, place_call, records_of, Widget};
use common::phones::AgentPhone;
use common::{http, http_get_raw, start};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const KEY: Option<&str> = Some("test-key");

pub(crate) fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("c2c-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub(crate) async fn the_call(addr: std::net::SocketAddr) -> u64 {
    let (_, calls) = http(addr, "GET", "/api/calls", KEY, "").await;
    calls[0]["id"].as_u64().expect("a running call")
}

pub(crate) async fn recording(addr: std::net::SocketAddr, id: u64, body: &str) -> (u16, Value) {
    http(
        addr,
        "POST",
        &format!("/api/calls/{id}/recording"),
        KEY,
        body,
    )
    .await
}

/// A connected call to agent `agent` in a queue with `record = "always"`, the gateway configured
/// with `extra`; both sides lose one packet in `lose` (0: none).
pub(crate) struct Recorded {
    pub gw: clicktocall::gateway::Gateway,
    pub addr: std::net::SocketAddr,
    pub agent: AgentPhone,
    pub invite: String,
    pub widget: Widget,
    pub browser: common::call::MediaBrowser,
    pub id: u64,
}

async fn recorded_call(agent_id: &str, extra: &str, lose: u16) -> Recorded {
    recorded_call_with(agent_id, "", extra, lose, json!({})).await
}

/// [`recorded_call`] with more queue `rules` and the page's `context`.
pub(crate) async fn recorded_call_with(
    agent_id: &str,
    rules: &str,
    extra: &str,
    lose: u16,
    context: Value,
) -> Recorded {
    let rules = format!("record = \"always\"\n{rules}");
    let (gw, sip) = start(call_config(&[agent_id], &rules, extra)).await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, agent_id, &format!("pw{agent_id}")).await;
    agent.lose_every = lose;
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, context, Some("support")).await;
    browser.lose_every(u32::from(lose));
    let invite = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&invite).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let id = the_call(addr).await;
    Recorded {
        gw,
        addr,
        agent,
        invite,
        widget,
        browser,
        id,
    }
}

/// The WAV's left and right channels.
fn channels(path: &str) -> (Vec<i16>, Vec<i16>) {
    let r = hound::WavReader::open(path).expect("a readable WAV");
    assert_eq!(r.spec().channels, 2, "stereo");
    assert_eq!(r.spec().sample_rate, 8000);
    let all: Vec<i16> = r.into_samples().map(Result::unwrap).collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_left_agent_right_and_a_pause_is_silence() {
    let dir = tmp_dir("stereo");
    let extra = format!("[recording]\ndirectory = \"{}\"\n", dir.display());
    // (The agent's phone talks while it lives: keep it.)
    let Recorded {
        gw,
        addr,
        agent: _agent,
        mut widget,
        browser,
        id,
        ..
    } = recorded_call("8001", &extra, 0).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(recording(addr, id, r#"{"action":"pause"}"#).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(recording(addr, id, r#"{"action":"resume"}"#).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;

    let records = records_of(addr, id).await;
    assert_eq!(records.len(), 1);
    let rec = &records[0]["recordings"][0];
    assert!(rec["error"].is_null(), "{rec}");
    let secs = rec["duration_secs"].as_f64().expect("a duration");
    let talk = records[0]["talk_secs"].as_f64().expect("talk time");
    assert!(
        (secs - talk).abs() <= 0.3,
        "recording {secs} s, talk {talk} s"
    );
    let spans = rec["paused_ms"].as_array().expect("paused spans");
    assert_eq!(spans.len(), 1, "{rec}");
    let (p0, p1) = (spans[0][0].as_u64().unwrap(), spans[0][1].as_u64().unwrap());
    assert!((1300..=1700).contains(&(p1 - p0)), "paused {p0}..{p1} ms");

    let (left, right) = channels(rec["file"].as_str().unwrap());
    assert_eq!(left.len(), right.len());
    assert!((left.len() as f64 / 8000.0 - secs).abs() < 0.05);
    // Before the pause: the customer's 440 Hz left, the agent's 1000 Hz right.
    let (a, b) = (8000 * 6 / 10, 8000 * 16 / 10);
    assert_eq!(dominant_frequency(&left[a..b], 8000), 440.0);
    assert_eq!(dominant_frequency(&right[a..b], 8000), 1000.0);
    // The paused span (its edges aside) is silent on both channels: under -60 dBFS.
    let (s, e) = ((p0 as usize + 60) * 8, (p1 as usize - 60) * 8);
    assert!(
        rms(&left[s..e]) < 33.0 && rms(&right[s..e]) < 33.0,
        "paused span not silent"
    );
    // After it, both are back.
    let after = (p1 as usize + 300) * 8;
    assert_eq!(dominant_frequency(&left[after..after + 8000], 8000), 440.0);
    assert_eq!(
        dominant_frequency(&right[after..after + 8000], 8000),
        1000.0
    );

    // The API streams it, whole or by range; a range past its end, or another call: refused.
    let file = std::fs::read(rec["file"].as_str().unwrap()).unwrap();
    let path = format!("/api/calls/{id}/recording");
    let (code, _, body) = http_get_raw(addr, &path, "test-key", "").await;
    assert_eq!((code, body.len()), (200, file.len()));
    assert!(body == file, "the whole file");
    let (code, head, body) = http_get_raw(addr, &path, "test-key", "Range: bytes=0-43\r\n").await;
    assert_eq!(code, 206, "{head}");
    let range = format!("content-range: bytes 0-43/{}", file.len());
    assert!(head.to_ascii_lowercase().contains(&range), "{head}");
    assert_eq!(&body[..], &file[..44], "the WAV header");
    let (code, head, _) = http_get_raw(addr, &path, "test-key", "Range: bytes=99999999-\r\n").await;
    assert_eq!(code, 416, "{head}");
    let (code, _, _) = http_get_raw(addr, "/api/calls/77/recording", "test-key", "").await;
    assert_eq!(code, 404);
    let (code, _, _) =
        http_get_raw(addr, "/api/calls/..%2F..%2Fetc/recording", "test-key", "").await;
    assert_eq!(code, 404);
    let (code, _, _) = http_get_raw(addr, &path, "wrong-key", "").await;
    assert_eq!(code, 401);
    let (_, _, metrics) = http_get_raw(addr, "/metrics", "test-key", "").await;
    let metrics = String::from_utf8_lossy(&metrics).to_string();
    // (The gauge is the process's: other tests' calls may be recording right now.)
    assert!(
        metrics.contains("\nclicktocall_recordings_active "),
        "{metrics}"
    );
    assert!(
        metrics.contains("clicktocall_recording_bytes_total{kind=\"wav\"}"),
        "{metrics}"
    );
    browser.stop();
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The agent presses `keys` on its phone (SIP INFO, one press each).
async fn agent_keys(agent: &mut AgentPhone, invite: &str, keys: &str) {
    for k in keys.chars() {
        let body = format!("Signal={k}\r\nDuration=120\r\n");
        let ct = "Content-Type: application/dtmf-relay\r\n";
        agent.in_dialog(invite, "INFO", ct, &body).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_code_pauses_and_resumes_and_the_customer_never_hears_it() {
    let dir = tmp_dir("code");
    let extra = format!(
        "[recording]\ndirectory = \"{}\"\npause_code = \"*1\"\n",
        dir.display()
    );
    let Recorded {
        gw,
        addr,
        mut agent,
        invite,
        mut widget,
        browser,
        id,
    } = recorded_call("8003", &extra, 0).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    agent_keys(&mut agent, &invite, "*1").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent_keys(&mut agent, &invite, "*1").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The API sees the same state: resuming what the code resumed is a conflict.
    let (code, body) = recording(addr, id, r#"{"action":"resume"}"#).await;
    assert_eq!((code, body["error"].as_str()), (409, Some("not_paused")));
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
    let digits = browser.ears.lock().unwrap().digits.clone();
    assert_eq!(digits, "", "the customer never receives the agent's code");
    let records = records_of(addr, id).await;
    let rec = &records[0]["recordings"][0];
    let spans = rec["paused_ms"].as_array().expect("paused spans");
    assert_eq!(spans.len(), 1, "{rec}");
    let (p0, p1) = (spans[0][0].as_u64().unwrap(), spans[0][1].as_u64().unwrap());
    assert!((1500..=2200).contains(&(p1 - p0)), "paused {p0}..{p1} ms");
    let (left, right) = channels(rec["file"].as_str().unwrap());
    let (s, e) = ((p0 as usize + 60) * 8, (p1 as usize - 60) * 8);
    assert!(
        rms(&left[s..e]) < 33.0 && rms(&right[s..e]) < 33.0,
        "paused span not silent"
    );
    browser.stop();
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_command_refuses_what_does_not_fit_and_a_bad_directory_fails_softly() {
    let extra = "[recording]\ndirectory = \"/proc/c2c-not-writable\"\n";
    let (gw, sip) = start(call_config(&["8002"], "record = \"on_demand\"\n", extra)).await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, "8002", "pw8002").await;
    let mut widget = Widget::connect(addr).await;
    let browser = place_call(&mut widget, json!({}), Some("support")).await;
    // Unknown call, bad bodies, wrong state (no agent yet, not recording).
    let (code, body) = recording(addr, 4242, r#"{"action":"start"}"#).await;
    assert_eq!((code, body["error"].as_str()), (404, Some("unknown_call")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = the_call(addr).await;
    for bad in [
        "",
        "{}",
        r#"{"action":"rewind"}"#,
        r#"{"action":1}"#,
        r#"{"act":"start"}"#,
    ] {
        let (code, body) = recording(addr, id, bad).await;
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let (code, body) = recording(addr, id, r#"{"action":"pause"}"#).await;
    assert_eq!((code, body["error"].as_str()), (409, Some("not_recording")));
    let invite = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&invite).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    // On demand: nothing until asked; then a directory that cannot be written.
    let (code, body) = recording(addr, id, r#"{"action":"start"}"#).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = recording(addr, id, r#"{"action":"start"}"#).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("already_recording"))
    );
    // The call goes on with its audio.
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let heard = browser.heard_since(mark);
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        1000.0
    );
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;
    let records = records_of(addr, id).await;
    let err = records[0]["recordings"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !err.is_empty(),
        "the record says why: {}",
        records[0]["recordings"]
    );
    browser.stop();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_recordings_and_keeps_new_ones() {
    let dir = tmp_dir("retention");
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("4711.wav");
    let new = dir.join("4712.wav");
    for f in [&old, &new] {
        std::fs::write(f, b"RIFF").unwrap();
    }
    let two_days = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_days)
        .unwrap();
    let extra = format!(
        "[recording]\ndirectory = \"{}\"\nretention_days = 1\n",
        dir.display()
    );
    let (gw, _sip) = start(call_config(&[], "", &extra)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while old.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!old.exists(), "a recording past its days is deleted");
    assert!(new.exists(), "a recent one is kept");
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_five_percent_loss_each_way_a_burst_at_ten_seconds_is_at_ten_seconds() {
    let dir = tmp_dir("aligned");
    let extra = format!("[recording]\ndirectory = \"{}\"\n", dir.display());
    let Recorded {
        gw,
        addr,
        agent: _agent,
        mut widget,
        browser,
        id,
        ..
    } = recorded_call("8004", &extra, 20).await;
    tokio::time::sleep(Duration::from_millis(9900)).await;
    let burst = browser.burst(2000.0, 200).await;
    let burst_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - burst.elapsed().as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    widget.send(json!({"type": "hangup"}));
    widget.wait_for("state", Some("ended"), WAIT).await;

    let records = records_of(addr, id).await;
    let rec = &records[0]["recordings"][0];
    let started = rec["started_ms"].as_i64().unwrap();
    let expected = burst_ms - started;
    let (left, right) = channels(rec["file"].as_str().unwrap());
    assert_eq!(left.len(), right.len());
    // Where the burst is in the file: the first 20 ms frame that is the 2000 Hz.
    let at = left
        .chunks(160)
        .position(|f| rms(f) > 1000.0 && dominant_frequency(f, 8000) == 2000.0)
        .map(|i| i as i64 * 20)
        .expect("the burst is in the file");
    println!("burst sent {expected} ms into the recording, found at {at} ms");
    assert!((9_500..=10_500).contains(&expected), "{expected}");
    assert!(
        (at - expected).abs() <= 40,
        "sent at {expected} ms, recorded at {at} ms"
    );
    // Both channels are as long as the call, and lost packets are silences of a frame.
    let gaps = left
        .chunks(160)
        .filter(|f| f.iter().all(|&s| s == 0))
        .count();
    assert!(
        gaps >= 20,
        "the customer's lost packets are silent frames: {gaps}"
    );
    browser.stop();
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
