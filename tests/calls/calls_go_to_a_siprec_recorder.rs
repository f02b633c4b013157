//! Issue 15, acceptance 3 in process: a queue with two SIPREC recorders. The first answers 503,
//! the second takes the recording: its INVITE requires `siprec`, carries `+sip.src` and a
//! `multipart/mixed` body (two labelled `sendonly` streams, metadata with the customer's
//! context), and the customer's 440 Hz arrives on stream 1 and the agent's 1000 Hz on stream 2.
//! A pause over REST is a re-INVITE with `a=inactive` and no media until the resume's re-INVITE;
//! the end is a BYE; the record names the recorder and the refusal. A transfer to another agent
//! is a metadata update: the recorder hears who left and who came.

use super::calls_are_recorded_in_stereo::{
    recorded_call_with, recording, the_call, tmp_dir, Recorded,
};
use crate::common;

use clicktocall::media::g711;
use clicktocall::media::rtp::RtpView;
use clicktocall::media::tone::{dominant_frequency, rms};
use common::call::{call_config, place_call, records_of, Widget};
use common::phones::{response, AgentPhone};
use common::{header, http, start, Peer};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

/// What one recorder stream received: (arrival, RTP timestamp, samples).
type Received = Arc<Mutex<Vec<(Instant, u32, Vec<i16>)>>>;

fn collect(sock: UdpSocket) -> (Received, tokio::task::JoinHandle<()>) {
    let got: Received = Arc::default();
    let g = got.clone();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok(n) = sock.recv(&mut buf).await {
            let Ok(p) = RtpView::parse(&buf[..n]) else {
                continue;
            };
            let mut pcm = Vec::new();
            match p.pt {
                0 => g711::decode_ulaw(p.payload, &mut pcm),
                8 => g711::decode_alaw(p.payload, &mut pcm),
                _ => continue,
            }
            g.lock().unwrap().push((Instant::now(), p.timestamp, pcm));
        }
    });
    (got, task)
}

/// The next request at a recorder, which must be a `method` (ACKs skipped).
async fn next(peer: &Peer, method: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = peer
            .recv(left)
            .await
            .unwrap_or_else(|| panic!("no {method}"));
        if m.starts_with(&format!("{method} ")) {
            return m;
        }
        assert!(m.starts_with("ACK "), "expected {method}, got {m}");
    }
}

async fn answer(peer: &Peer, gw: std::net::SocketAddr, req: &str, sdp: &str) {
    let contact = format!("Contact: <sip:srs@{}>\r\n", peer.addr);
    peer.send(gw, response(req, 200, &contact, Some(sdp)).as_bytes())
        .await;
}

fn recorder_sdp(ports: (u16, u16), dir: &str) -> String {
    format!(
        "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na={dir}\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:2\r\na={dir}\r\n",
        ports.0, ports.1
    )
}

/// The samples of a stream, and the largest gap between its RTP timestamps (samples).
fn stream(got: &Received) -> (Vec<i16>, u32) {
    let got = got.lock().unwrap();
    let pcm = got.iter().flat_map(|(_, _, p)| p.clone()).collect();
    let gap = got
        .windows(2)
        .map(|w| w[1].1.wrapping_sub(w[0].1))
        .max()
        .unwrap_or(0);
    (pcm, gap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_recorder_takes_both_streams_pauses_inactive_and_gets_bye() {
    let refuser = Peer::bind("127.0.0.1").await;
    let srs = Peer::bind("127.0.0.1").await;
    let (s1, s2) = (
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let ports = (
        s1.local_addr().unwrap().port(),
        s2.local_addr().unwrap().port(),
    );
    let (got1, t1) = collect(s1);
    let (got2, t2) = collect(s2);
    let rules = format!(
        "siprec = [\"sip:srs@{}\", \"sip:srs@{}\"]\n",
        refuser.addr, srs.addr
    );
    let dir = tmp_dir("siprec");
    let extra = format!("[recording]\ndirectory = \"{}\"\n", dir.display());
    let context = json!({"name": "Ada <Lovelace>", "crm_id": "CRM-77"});
    let Recorded {
        gw,
        addr,
        agent: _agent,
        browser: _browser,
        mut widget,
        id,
        ..
    } = recorded_call_with("8101", &rules, &extra, 0, context).await;
    // (The phone and the browser talk while they live: both are kept.)
    let sip = gw.sip.udp_addr.expect("a SIP address");

    let first = next(&refuser, "INVITE").await;
    assert_eq!(header(&first, "Require"), Some("siprec"));
    refuser
        .send(sip, response(&first, 503, "", None).as_bytes())
        .await;

    let invite = next(&srs, "INVITE").await;
    assert_eq!(header(&invite, "Require"), Some("siprec"));
    assert!(
        header(&invite, "Contact").unwrap().ends_with(";+sip.src"),
        "{invite}"
    );
    assert!(header(&invite, "Content-Type")
        .unwrap()
        .starts_with("multipart/mixed;boundary="));
    assert!(invite.contains("Content-Type: application/rs-metadata+xml"));
    assert_eq!(invite.matches("m=audio ").count(), 2);
    assert!(invite.contains("a=label:1\r\n") && invite.contains("a=label:2\r\n"));
    assert_eq!(invite.matches("a=sendonly").count(), 2);
    assert!(
        invite.contains("<name>Ada &lt;Lovelace&gt;</name>"),
        "{invite}"
    );
    assert!(invite.contains("<ctc:item name=\"crm_id\">CRM-77</ctc:item>"));
    assert!(
        invite.contains("<nameID aor=\"sip:8101@"),
        "the agent is a participant"
    );
    answer(&srs, sip, &invite, &recorder_sdp(ports, "recvonly")).await;

    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(recording(addr, id, r#"{"action":"pause"}"#).await.0, 200);
    let pause = next(&srs, "INVITE").await;
    assert_eq!(pause.matches("a=inactive").count(), 2, "{pause}");
    answer(&srs, sip, &pause, &recorder_sdp(ports, "inactive")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = (got1.lock().unwrap().len(), got2.lock().unwrap().len());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        (got1.lock().unwrap().len(), got2.lock().unwrap().len()),
        during,
        "media while paused"
    );
    assert_eq!(recording(addr, id, r#"{"action":"resume"}"#).await.0, 200);
    let resume = next(&srs, "INVITE").await;
    assert_eq!(resume.matches("a=sendonly").count(), 2, "{resume}");
    answer(&srs, sip, &resume, &recorder_sdp(ports, "recvonly")).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;

    widget.send(json!({"type": "hangup"}));
    let bye = next(&srs, "BYE").await;
    srs.send(sip, response(&bye, 200, "", None).as_bytes())
        .await;
    widget.wait_for("state", Some("ended"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    t1.abort();
    t2.abort();

    let ((left, gap1), (right, gap2)) = (stream(&got1), stream(&got2));
    assert!(left.len() > 8000 * 3, "{} samples on stream 1", left.len());
    assert_eq!(left.len(), right.len(), "the streams carry the same frames");
    // Before the pause and after it: one second of each (the stream's phase jumps at the pause).
    let n = left.len();

    for w in [4000..12000, n - 12000..n - 4000] {
        assert_eq!(dominant_frequency(&left[w.clone()], 8000), 440.0, "{w:?}");
        assert_eq!(dominant_frequency(&right[w.clone()], 8000), 1000.0, "{w:?}");
        assert!(rms(&left[w.clone()]) > 1000.0 && rms(&right[w]) > 1000.0);
    }
    // The pause (about 1.5 s plus the re-INVITEs' round trips) is a jump in the RTP timestamps.
    for gap in [gap1, gap2] {
        assert!((8000..=8000 * 3).contains(&gap), "timestamp gap {gap}");
    }

    let records = records_of(addr, id).await;
    let rec = &records[0]["recordings"][0];
    assert_eq!(
        rec["recorder"],
        json!(format!("sip:srs@{}", srs.addr)),
        "{rec}"
    );
    let why = rec["recorder_error"]
        .as_str()
        .expect("the refusal is recorded");
    assert!(
        why.contains(&format!("sip:srs@{}: 503", refuser.addr)),
        "{why}"
    );
    assert!(rec["error"].is_null(), "the WAV is fine: {rec}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_tells_the_recorder_who_left_and_who_came() {
    let srs = Peer::bind("127.0.0.1").await;
    let rules = format!(
        "strategy = \"round_robin\"\nrecord = \"always\"\nsiprec = [\"sip:srs@{}\"]\n",
        srs.addr
    );
    let dir = tmp_dir("siprec-transfer");
    let extra = format!("[recording]\ndirectory = \"{}\"\n", dir.display());
    let (gw, sip) = start(call_config(&["8201", "8202"], &rules, &extra)).await;
    let addr = gw.http_addr;
    let mut first = AgentPhone::register(sip, "8201", "pw8201").await;
    let mut second = AgentPhone::register(sip, "8202", "pw8202").await;
    let mut widget = Widget::connect(addr).await;
    let _browser = place_call(&mut widget, json!({"crm_id": "T-1"}), Some("support")).await;
    let inv = first.recv_request("INVITE", WAIT).await.expect("rings");
    first.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let invite = next(&srs, "INVITE").await;
    assert!(invite.contains("sip:8201@") && !invite.contains("sip:8202@"));
    answer(&srs, sip, &invite, &recorder_sdp((9, 11), "recvonly")).await;
    let id = the_call(addr).await;

    let (code, body) = http(
        addr,
        "POST",
        &format!("/api/calls/{id}/transfer"),
        Some("test-key"),
        r#"{"agent":"8202"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let inv2 = second.recv_request("INVITE", WAIT).await.expect("rings");
    second.answer(&inv2).await;
    // One re-INVITE per change the call task saw (the second agent joining, the first leaving),
    // each with the whole picture; the last one has both.
    let mut metadata_updates = 0;
    let update = loop {
        let re = next(&srs, "INVITE").await;
        answer(&srs, sip, &re, &recorder_sdp((9, 11), "recvonly")).await;
        metadata_updates += 1;
        assert_eq!(re.matches("a=sendonly").count(), 2, "still recording");
        if re.contains("sip:8202@") && re.contains("<disassociate-time>") {
            break re;
        }
        assert!(metadata_updates < 3, "no update naming both agents: {re}");
    };
    assert_eq!(update.matches("<participant ").count(), 3, "{update}");
    assert_eq!(update.matches("<disassociate-time>").count(), 1);
    assert!(update.contains("<ctc:item name=\"crm_id\">T-1</ctc:item>"));

    widget.send(json!({"type": "hangup"}));
    let bye = next(&srs, "BYE").await;
    srs.send(sip, response(&bye, 200, "", None).as_bytes())
        .await;
    widget.wait_for("state", Some("ended"), WAIT).await;
    let records = records_of(addr, id).await;
    let rec = &records[0]["recordings"][0];
    assert_eq!(rec["recorder"], json!(format!("sip:srs@{}", srs.addr)));
    assert!(rec["recorder_error"].is_null(), "{rec}");
    let _ = std::fs::remove_dir_all(dir);
}
