//! RFC 3261 §18.1.1: an INVITE to the agent that is too large for UDP (a big context makes a big
//! `User-to-User`) is sent over TCP to the agent's address instead.

use crate::common;

use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::start;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_context_invite_arrives_over_tcp() {
    let mut cfg = call_config(&["1301"], "", "");
    cfg.sip.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    let (gw, sip) = start(cfg).await;
    let agent = AgentPhone::register(sip, "1301", "pw1301").await;
    // The phone also listens on TCP at its registered address.
    let tcp = tokio::net::TcpListener::bind(agent.sip.addr).await.unwrap();
    let mut widget = Widget::connect(gw.http_addr).await;
    let mut context = Map::new();
    for i in 0..30 {
        context.insert(format!("field{i}"), Value::String("x".repeat(100)));
    }
    let browser = place_call(&mut widget, Value::Object(context), Some("support")).await;
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), tcp.accept())
        .await
        .expect("the gateway connects over TCP")
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("User-to-User") {
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .expect("INVITE bytes")
            .unwrap();
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("INVITE sip:1301@"),
        "{}",
        &text[..80.min(text.len())]
    );
    assert!(text.contains("SIP/2.0/TCP"), "Via names TCP");
    assert!(
        agent
            .sip
            .recv(Duration::from_millis(300))
            .await
            .is_none_or(|m| !m.starts_with("INVITE")),
        "not also over UDP"
    );
    browser.stop();
    gw.shutdown().await;
}
