//! Issue 19 in process: three gateway nodes share one store (the in-memory [`MemoryKv`], as
//! they would share Redis). An agent registered through node 2 rings for a browser call placed
//! on node 1 (context headers, audio both ways); a REST read of that call on node 3 is
//! redirected to node 1, a widget socket resuming it there is told to move to node 1; a call on node 3 never rings the busy agent and goes to the agent who
//! registers on node 3; when the node running the ACD stops, another takes over and the queues
//! go on; while the store is down new calls are refused (`unavailable`), after it comes back
//! they are served.

use crate::common;

use clicktocall::cluster::kv::{Kv, MemoryKv};
use clicktocall::gateway::Gateway;
use clicktocall::media::tone::dominant_frequency;
use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::{header, http, http_get_raw};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(8);

async fn node(kv: &Arc<MemoryKv>, n: u16) -> (Gateway, SocketAddr) {
    let extra = format!("[cluster]\nnode_id = {n}\n");
    let cfg = call_config(&["8001", "8002"], "", &extra);
    let store: Arc<dyn Kv> = kv.clone();
    let gw = Gateway::start_with(cfg, Some(store))
        .await
        .expect("node starts");
    let sip = gw.sip.udp_addr.expect("UDP listener");
    (gw, sip)
}

/// Waits until `agent` shows `state` in the cluster's ACD, asked through node `addr`.
async fn agent_is(addr: SocketAddr, agent: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, v) = http(addr, "GET", "/api/agents", Some("test-key"), "").await;
        let now = v
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == agent))
            .map(|x| x["state"].clone());
        if now.as_ref().and_then(Value::as_str) == Some(state) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{agent} never {state}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tone_of(samples: &[i16]) -> f64 {
    dominant_frequency(&samples[samples.len().saturating_sub(4000)..], 8000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_of_one_node_takes_calls_of_the_others_and_is_never_offered_two() {
    let kv = Arc::new(MemoryKv::default());
    let (g1, _) = node(&kv, 1).await;
    let (g2, sip2) = node(&kv, 2).await;
    let (g3, sip3) = node(&kv, 3).await;
    let mut a1 = AgentPhone::register(sip2, "8001", "pw8001").await;
    agent_is(g3.http_addr, "8001", "available").await;

    let mut w1 = Widget::connect(g1.http_addr).await;
    let browser = place_call(&mut w1, json!({"name": "Ada Lovelace"}), Some("support")).await;
    let inv = a1
        .recv_request("INVITE", WAIT)
        .await
        .expect("the agent registered through node 2 rings for node 1's call");
    assert_eq!(header(&inv, "X-Customer-Name"), Some("Ada Lovelace"));
    a1.answer(&inv).await;
    w1.wait_for("state", Some("connected"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tone_of(&a1.heard.lock().unwrap()), 440.0, "agent hears");
    assert_eq!(tone_of(&browser.heard_since(0)), 1000.0, "customer hears");
    agent_is(g2.http_addr, "8001", "busy").await;
    // Asked through any node, the ACD's answers travel back: busy cannot go away; an unknown
    // agent is unknown.
    let (code, body) = http(
        g3.http_addr,
        "PUT",
        "/api/agents/8001/state",
        Some("test-key"),
        r#"{"state":"away"}"#,
    )
    .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("not_now")),
        "{body}"
    );
    let (code, _) = http(
        g3.http_addr,
        "PUT",
        "/api/agents/9999/state",
        Some("test-key"),
        r#"{"state":"away"}"#,
    )
    .await;
    assert_eq!(code, 404);

    // The call is node 1's: REST on node 3 is sent there.
    let (_, calls) = http(g1.http_addr, "GET", "/api/calls", Some("test-key"), "").await;
    let id = calls[0]["id"].as_u64().expect("a call id");
    let path = format!("/api/calls/{id}");
    let (code, head, _) = http_get_raw(g3.http_addr, &path, "test-key", "").await;
    assert_eq!(code, 307, "{head}");
    let location = format!("location: http://{}{path}", g1.http_addr);
    assert!(head.to_ascii_lowercase().contains(&location), "{head}");
    let (code, _, _) = http_get_raw(g3.http_addr, &path, "wrong-key", "").await;
    assert_eq!(code, 401, "the key is checked before the redirect");
    // A widget socket resuming it on node 3 is told where the call is.
    let token = w1
        .log
        .iter()
        .find(|m| m["type"] == "answer")
        .and_then(|m| m["resume"].as_str())
        .expect("a resume token")
        .to_string();
    let mut elsewhere = Widget::connect(g3.http_addr).await;
    elsewhere.send(json!({"type": "resume", "v": 1, "token": token}));
    let moved = elsewhere.wait_for("moved", None, WAIT).await;
    assert_eq!(moved["url"], format!("ws://{}/ws", g1.http_addr));

    // A call on node 3 waits: 8001 is busy (never offered), 8002 registers on node 3 and gets it.
    let mut w3 = Widget::connect(g3.http_addr).await;
    let _b3 = place_call(&mut w3, json!({}), Some("support")).await;
    assert!(
        a1.recv_request("INVITE", Duration::from_millis(1500))
            .await
            .is_none(),
        "a busy agent is never offered a second call"
    );
    let mut a2 = AgentPhone::register(sip3, "8002", "pw8002").await;
    let inv2 = a2
        .recv_request("INVITE", WAIT)
        .await
        .expect("the second agent rings");
    a2.answer(&inv2).await;
    w3.wait_for("state", Some("connected"), WAIT).await;

    w1.send(json!({"type": "hangup"}));
    w1.wait_for("state", Some("ended"), WAIT).await;
    agent_is(g3.http_addr, "8001", "wrap_up").await;
    for g in [g1, g2, g3] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acd_moves_when_its_node_stops_and_calls_wait_out_a_store_outage() {
    let kv = Arc::new(MemoryKv::default());
    let (g1, _) = node(&kv, 1).await;
    // Node 1 runs the ACD (the first to take the lease).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (g2, sip2) = node(&kv, 2).await;
    let leader = kv.get("c2c:acd:leader").await.unwrap();
    assert_eq!(leader.as_deref(), Some("1"));
    g1.shutdown().await;

    let mut a1 = AgentPhone::register(sip2, "8001", "pw8001").await;
    agent_is(g2.http_addr, "8001", "available").await;
    let leader = kv.get("c2c:acd:leader").await.unwrap();
    assert_eq!(leader.as_deref(), Some("2"), "node 2 took the ACD over");

    // The store goes down: a new call is refused as unavailable, calls come back with it.
    kv.set_down(true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut w = Widget::connect(g2.http_addr).await;
    let (_b, _sock, offer) = common::call::MediaBrowser::offer().await;
    w.send(json!({"type": "call", "v": 1, "sdp": offer, "context": {}, "queue": "support"}));
    let err = w.wait_for("error", None, WAIT).await;
    assert_eq!(err["code"], "unavailable", "{err}");
    kv.set_down(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut w = Widget::connect(g2.http_addr).await;
    let _b = place_call(&mut w, json!({}), Some("support")).await;
    let inv = a1
        .recv_request("INVITE", WAIT)
        .await
        .expect("served again once the store is back");
    a1.answer(&inv).await;
    w.wait_for("state", Some("connected"), WAIT).await;
    g2.shutdown().await;
}
