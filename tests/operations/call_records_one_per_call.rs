//! Call detail records, in process: every call placed gets exactly one record, completed ones and
//! failed ones alike (an agent who answers and hangs up; a visitor who hangs up in the menu; one who
//! gives up in the queue after a busy agent), readable through `GET /api/cdrs` (JSON and CSV) and
//! still on disk after the gateway stops.

use crate::common;

use clicktocall::records::store::{Filter, RecordStore};
use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::{http, start};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_gets_one_complete_record_in_json_csv_and_on_disk() {
    let dir = std::env::temp_dir().join(format!("c2c-cdr-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("records.db");
    let mut cfg = call_config(&["1001"], "wrap_up_secs = 0\n", "");
    cfg.records.database = db.clone();
    let (gw, sip) = start(cfg).await;
    let mut agent = AgentPhone::register(sip, "1001", "pw1001").await;

    // 1. Completed: IVR → support → the agent answers, talks 1 s, hangs up.
    let mut w = Widget::connect(gw.http_addr).await;
    let b = place_call(&mut w, json!({"name": "Ann Lee", "crm_id": 4711}), None).await;
    w.wait_for("state", Some("ivr"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.press('2');
    let inv = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&inv).await;
    w.wait_for("state", Some("connected"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    agent.in_dialog(&inv, "BYE", "", "").await;
    w.wait_for("state", Some("ended"), WAIT).await;
    b.stop();

    // 2. Failed in the menu: the visitor hangs up before choosing.
    let mut w2 = Widget::connect(gw.http_addr).await;
    let b2 = place_call(&mut w2, json!({"name": "Bo Park"}), None).await;
    w2.wait_for("state", Some("ivr"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    w2.send(json!({"type": "hangup"}));
    w2.wait_for("state", Some("ended"), WAIT).await;
    b2.stop();

    // 3. Abandoned: straight to support, the agent is busy (486), the visitor gives up waiting.
    let mut w3 = Widget::connect(gw.http_addr).await;
    let b3 = place_call(&mut w3, json!({"name": "Cy Diaz"}), Some("support")).await;
    let inv3 = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.reply(&inv3, 486, None).await;
    w3.wait_for("state", Some("queued"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    w3.send(json!({"type": "hangup"}));
    w3.wait_for("state", Some("ended"), WAIT).await;
    b3.stop();

    // The API: one complete record per call, in order.
    let mut rows = Value::Null;
    for _ in 0..20 {
        rows = http(
            gw.http_addr,
            "GET",
            "/api/cdrs?ended=true",
            Some("test-key"),
            "",
        )
        .await
        .1;
        if rows.as_array().is_some_and(|r| r.len() == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = rows.as_array().expect("a JSON array").clone();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let (all, _) = (
        http(gw.http_addr, "GET", "/api/cdrs", Some("test-key"), "")
            .await
            .1,
        (),
    );
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "no other records: {all:#?}"
    );

    let done = &rows[0];
    assert_eq!(done["kind"], "browser");
    assert_eq!(done["context"]["name"], "Ann Lee");
    assert_eq!(done["queue"], "support");
    assert_eq!(done["ivr_path"], json!(["main", "2"]));
    assert_eq!(done["agent"], "1001");
    assert_eq!(done["offers"][0]["outcome"], "answered");
    assert_eq!(done["end_reason"], "agent_hangup");
    assert_eq!(done["hung_up_by"], "agent");
    for k in [
        "created_ms",
        "ivr_answered_ms",
        "queued_ms",
        "agent_answered_ms",
        "ended_ms",
    ] {
        assert!(done[k].is_i64(), "{k} missing: {done}");
    }
    // Receive quality of the agent's RTP (1 s of 20 ms packets on loopback: none lost).
    let q = &done["agent_quality"];
    assert!(q["expected"].as_u64().unwrap() >= 40, "{q}");
    assert_eq!(q["lost"], 0, "{q}");
    assert!(q["jitter_ms"].as_f64().unwrap() < 20.0, "{q}");
    // ... and of the browser's audio (after SRTP): the call lasted ~2 s of 20 ms packets.
    let q = &done["customer_quality"];
    assert!(q["expected"].as_u64().unwrap() >= 80, "{q}");
    assert_eq!(q["lost"], 0, "{q}");
    assert!(q["jitter_ms"].as_f64().unwrap() < 20.0, "{q}");
    let talk = done["talk_secs"].as_f64().unwrap();
    assert!((0.8..3.0).contains(&talk), "talk {talk}");

    let menu = &rows[1];
    assert_eq!(menu["end_reason"], "customer_hangup");
    assert_eq!(menu["hung_up_by"], "customer");
    assert!(menu["queue"].is_null() && menu["queued_ms"].is_null() && menu["talk_secs"].is_null());
    assert!(menu["ivr_answered_ms"].is_i64());

    let gave_up = &rows[2];
    assert_eq!(gave_up["queue"], "support");
    assert_eq!(gave_up["offers"][0]["outcome"], "busy");
    assert_eq!(gave_up["end_reason"], "customer_hangup");
    assert!(gave_up["wait_secs"].as_f64().unwrap() >= 0.6, "{gave_up}");
    assert!(gave_up["agent_answered_ms"].is_null());

    // Filters and CSV.
    let (_, support) = http(
        gw.http_addr,
        "GET",
        "/api/cdrs?queue=support",
        Some("test-key"),
        "",
    )
    .await;
    assert_eq!(support.as_array().unwrap().len(), 2);
    let (code, bad) = http(
        gw.http_addr,
        "GET",
        "/api/cdrs?colour=red",
        Some("test-key"),
        "",
    )
    .await;
    assert_eq!((code, bad["error"].as_str()), (400, Some("bad_request")));
    let csv = raw_get(gw.http_addr, "/api/cdrs?format=csv").await;
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{csv}");
    for (line, row) in lines[1..].iter().zip(&rows) {
        assert!(line.starts_with(row["id"].as_str().unwrap()), "{line}");
    }

    // Durable: after the gateway stops, the file has the same three records.
    gw.shutdown().await;
    let store = RecordStore::open(&db).unwrap();
    let on_disk = store.query(&Filter::default()).unwrap();
    assert_eq!(on_disk, rows);
    std::fs::remove_dir_all(&dir).ok();
}

/// The body of a GET with the test API key (for the CSV, which is not JSON).
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("content-type: text/csv"),
        "{out}"
    );
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}
