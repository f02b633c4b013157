//! The REST API: bearer key required; `PUT /api/agents/{id}/state` takes an agent away (a waiting
//! call is not offered to it) and back (it is); errors are JSON with stable codes.

use crate::common;

use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::{http, start};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_away_is_skipped_and_api_errors_are_clear() {
    let (gw, sip) = start(call_config(&["1201"], "", "")).await;
    let api = gw.http_addr;
    let (code, body) = http(api, "GET", "/api/agents", None, "").await;
    assert_eq!((code, body["error"].as_str()), (401, Some("unauthorized")));
    let (code, _) = http(api, "GET", "/api/agents", Some("wrong"), "").await;
    assert_eq!(code, 401);

    let mut agent = AgentPhone::register(sip, "1201", "pw1201").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, agents) = http(api, "GET", "/api/agents", Some("test-key"), "").await;
    assert_eq!(code, 200);
    assert_eq!(
        agents[0],
        json!({"id": "1201", "state": "available", "queues": ["support", "sales"]})
    );

    let (code, _) = http(
        api,
        "PUT",
        "/api/agents/1201/state",
        Some("test-key"),
        r#"{"state":"away"}"#,
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = http(
        api,
        "PUT",
        "/api/agents/nobody/state",
        Some("test-key"),
        r#"{"state":"away"}"#,
    )
    .await;
    assert_eq!((code, body["error"].as_str()), (404, Some("unknown_agent")));
    let (code, body) = http(
        api,
        "PUT",
        "/api/agents/1201/state",
        Some("test-key"),
        r#"{"state":"busy"}"#,
    )
    .await;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_state")));
    let (code, body) = http(
        api,
        "PUT",
        "/api/agents/1201/state",
        Some("test-key"),
        "{oops",
    )
    .await;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_request")));

    // Away: a waiting call is not offered to the agent.
    let mut widget = Widget::connect(api).await;
    let browser = place_call(&mut widget, json!({"name": "Ida"}), Some("support")).await;
    widget
        .wait_for("state", Some("queued"), Duration::from_secs(5))
        .await;
    assert!(agent
        .recv_request("INVITE", Duration::from_millis(1500))
        .await
        .is_none());
    let (_, queues) = http(api, "GET", "/api/queues", Some("test-key"), "").await;
    let support = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "support")
        .unwrap()
        .clone();
    assert_eq!(support["waiting"], 1, "{support}");
    assert_eq!(support["agents_available"], 0, "{support}");
    assert_eq!(support["agents_logged_in"], 1, "{support}");

    // Available again: the call is offered at once.
    let (code, _) = http(
        api,
        "PUT",
        "/api/agents/1201/state",
        Some("test-key"),
        r#"{"state":"available"}"#,
    )
    .await;
    assert_eq!(code, 200);
    let invite = agent
        .recv_request("INVITE", Duration::from_secs(5))
        .await
        .expect("offered now");
    agent.answer(&invite).await;
    widget
        .wait_for("state", Some("connected"), Duration::from_secs(5))
        .await;
    let (code, body) = http(
        api,
        "PUT",
        "/api/agents/1201/state",
        Some("test-key"),
        r#"{"state":"away"}"#,
    )
    .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("not_now")),
        "busy agents cannot go away mid-call"
    );
    browser.stop();
    gw.shutdown().await;
}
