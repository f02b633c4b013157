//! The built-in demo agent (issue 6's "working demo with no phone"): on the embedded demo config's
//! setting, a browser call through `/ws` that picks "support" is answered by agent "demo", which
//! greets and then echoes the caller: the browser hears speech, then its own 440 Hz back.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use common::call::{call_config, place_call, rms, Widget};
use common::start;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_agent_greets_then_echoes_the_caller() {
    let cfg = call_config(&[], "", "[demo_agent]\nenabled = true\n");
    let (gw, _) = start(cfg).await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Demo"}), Some("support")).await;
    widget
        .wait_for("state", Some("connected"), Duration::from_secs(8))
        .await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let greeting = browser.heard_since(mark);
    assert!(
        rms(&greeting) > 500.0,
        "the demo agent greets: rms {}",
        rms(&greeting)
    );
    // The greeting is 5.9 s; after it the caller hears themselves.
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let echo = browser.heard_since(mark);
    assert!(echo.len() > 4000, "heard {}", echo.len());
    assert_eq!(dominant_frequency(&echo[echo.len() - 4000..], 8000), 440.0);
    widget.send(json!({"type": "hangup"}));
    let ended = widget
        .wait_for("state", Some("ended"), Duration::from_secs(3))
        .await;
    assert_eq!(ended["reason"], "customer_hangup");
    browser.stop();
    gw.shutdown().await;
}
