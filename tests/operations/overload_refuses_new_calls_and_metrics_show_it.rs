//! Overload, in process: with `limits.max_calls = 3`, six browser calls get three answers and three
//! clean `busy` errors, a trunk INVITE gets 503, the calls in progress keep their media, and
//! `/metrics` shows the calls, the refusals and the setup times; `max_ws_sessions` caps sockets.

use crate::common;

use common::call::{call_config, place_call, rms, Widget};
use common::{start, status, Peer};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

async fn metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limit_calls_are_refused_cleanly_and_counted() {
    let mut cfg = call_config(&[], "", "");
    cfg.limits.max_calls = 3;
    cfg.limits.max_ws_sessions = 8;
    let (gw, sip) = start(cfg).await;

    let mut served = Vec::new();
    let mut refused = 0;
    for i in 0..6 {
        let mut w = Widget::connect(gw.http_addr).await;
        let (b, sock, offer) = common::call::MediaBrowser::offer().await;
        w.send(json!({"type": "call", "v": 1, "sdp": offer, "context": {"n": i}}));
        let reply = loop {
            let m = w.recv(WAIT).await.expect("a reply");
            if m["type"] == "answer" || m["type"] == "error" {
                break m;
            }
        };
        if reply["type"] == "answer" {
            served.push((
                w,
                common::call::MediaBrowser::start(b, sock, reply["sdp"].as_str().unwrap()),
            ));
        } else {
            assert_eq!(reply["code"], "busy", "{reply}");
            assert!(
                reply["message"].as_str().unwrap().contains("limit of 3"),
                "{reply}"
            );
            refused += 1;
        }
    }
    assert_eq!((served.len(), refused), (3, 3));

    // A trunk call at the limit: 503.
    let trunk = Peer::bind("127.0.0.2").await;
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:+15550100@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKover1;rport\r\nFrom: <sip:+15557654321@127.0.0.2>;tag=o1\r\nTo: <sip:+15550100@{sip}>\r\nCall-ID: over-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:c@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        trunk.addr, trunk.addr, sdp.len()
    );
    trunk.send(sip, invite.as_bytes()).await;
    let resp = trunk.recv_final(WAIT).await.expect("a final response");
    assert_eq!(status(&resp), 503, "{resp}");

    // The served calls are untouched: each hears its IVR prompt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (_, b) in &served {
        let heard = b.heard_since(0);
        assert!(
            rms(&heard) > 300.0,
            "a served call lost its audio: rms {}",
            rms(&heard)
        );
    }

    let text = metrics(gw.http_addr).await;
    assert_eq!(value(&text, "clicktocall_calls_active"), 3.0, "{text}");
    assert_eq!(value(&text, "clicktocall_calls_limit"), 3.0);
    assert_eq!(value(&text, "clicktocall_calls{state=\"ivr\"}"), 3.0);
    assert!(
        value(&text, "clicktocall_rejected_total{reason=\"overload\"}") >= 4.0,
        "{text}"
    );
    assert!(
        value(&text, "clicktocall_sip_responses_total{code=\"503\"}") >= 1.0,
        "{text}"
    );
    assert!(
        value(&text, "clicktocall_call_setup_seconds_count") >= 3.0,
        "{text}"
    );
    assert!(value(&text, "clicktocall_ws_sessions") >= 3.0);
    assert!(value(&text, "clicktocall_runtime_tasks_alive") >= 1.0);
    // The three served calls' media runs on the workers, which received their browsers' packets.
    let series = |name: &str| -> f64 {
        (0..64)
            .map(|w| value(&text, &format!("{name}{{worker=\"{w}\"}}")))
            .sum()
    };
    assert_eq!(series("clicktocall_media_worker_calls"), 3.0, "{text}");
    assert!(
        series("clicktocall_media_worker_datagrams_total") >= 3.0 * 50.0,
        "{text}"
    );
    assert!(series("clicktocall_media_worker_rounds_total") >= 50.0);
    assert!(
        text.contains("clicktocall_queue_waiting{queue=\"support\"} 0"),
        "{text}"
    );

    // The callers turned away are not lost from the records: three browser calls and the trunk
    // call, each ended at once by the gateway with reason `overload`, context kept.
    let (code, rows) = common::http(
        gw.http_addr,
        "GET",
        "/api/cdrs?ended=true",
        Some("test-key"),
        "",
    )
    .await;
    assert_eq!(code, 200, "{rows}");
    let refused_rows: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["end_reason"] == "overload")
        .collect();
    assert_eq!(refused_rows.len(), 4, "{rows:#}");
    assert!(refused_rows
        .iter()
        .all(|r| r["hung_up_by"] == "gateway" && r["ivr_answered_ms"].is_null()));
    assert_eq!(
        refused_rows
            .iter()
            .filter(|r| r["kind"] == "browser")
            .count(),
        3
    );
    assert!(refused_rows
        .iter()
        .any(|r| r["kind"] == "sip" && r["context"]["caller"] == "+15557654321"));
    assert!(refused_rows
        .iter()
        .any(|r| r["kind"] == "browser" && r["context"]["n"].is_u64()));

    // Sessions: 3 open (the served calls) + 5 more reach the cap of 8; the next upgrade gets 503.
    let mut extra = Vec::new();
    while let Ok(w) = Widget::connect_as(gw.http_addr, "", None).await {
        extra.push(w);
        assert!(extra.len() <= 8, "the session cap did not hold");
    }
    assert!(!extra.is_empty() && served.len() + extra.len() <= 8);
    assert_eq!(
        Widget::connect_as(gw.http_addr, "", None).await.err(),
        Some(503)
    );

    // Hang up one call: a new one is served again.
    let (w0, b0) = served.remove(0);
    w0.send(json!({"type": "hangup"}));
    drop(extra);
    b0.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut w = Widget::connect(gw.http_addr).await;
    let b = place_call(&mut w, json!({}), None).await;
    w.wait_for("state", Some("ivr"), WAIT).await;
    b.stop();
    for (_, b) in &served {
        b.stop();
    }
    gw.shutdown().await;
}
