//! Agents' phones calling each other when in no call: an agent dials another agent's id, the
//! other phone rings and answers, and the caller is answered then (not before): they hear each
//! other. A colleague who is in a call already (busy in the ACD) is not rung: the caller gets 486.
//! A queue's name puts the caller in that queue, answered at once. The records say `internal`.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use common::call::call_config;
use common::phones::AgentPhone;
use common::{http, start};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_agent_calls_a_colleague_and_a_busy_one_is_not_rung() {
    let (gw, sip) = start(call_config(&["8601", "8602", "8603"], "", "")).await;
    let mut a = AgentPhone::register(sip, "8601", "pw8601").await;
    let mut b = AgentPhone::register(sip, "8602", "pw8602")
        .await
        .with_tone(700.0);
    let mut c = AgentPhone::register(sip, "8603", "pw8603")
        .await
        .with_tone(500.0);
    let (call, first) = tokio::join!(a.dial("8602", "pw8601"), async {
        let inv = b
            .recv_request("INVITE", WAIT)
            .await
            .expect("the colleague's phone rings");
        assert!(inv.contains("X-Call-Id:"), "{inv}");
        tokio::time::sleep(Duration::from_millis(300)).await; // the caller is not answered yet
        b.answer(&inv).await;
        common::header(&inv, "Call-ID").unwrap().to_string()
    });
    assert_eq!(call.status(), 200, "{}", call.response);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let a_heard = a.heard.lock().unwrap().clone();
    let b_heard = b.heard.lock().unwrap().clone();
    assert_eq!(
        dominant_frequency(&a_heard[a_heard.len() - 4000..], 8000),
        700.0
    );
    assert_eq!(
        dominant_frequency(&b_heard[b_heard.len() - 4000..], 8000),
        1000.0
    );

    // 8602 is busy with 8601: 8603 calling it is refused without ringing it.
    let busy = c.dial("8602", "pw8603").await;
    assert_eq!(busy.status(), 486, "{}", busy.response);
    // (Retransmissions of the first INVITE, sent while it rang unanswered, are all it got.)
    while let Some(inv) = b.recv_request("INVITE", Duration::from_millis(300)).await {
        assert_eq!(
            common::header(&inv, "Call-ID"),
            Some(first.as_str()),
            "rung again: {inv}"
        );
    }

    // A queue's name: the caller waits in it, answered at once (it hears the queue).
    let queued = c.dial("sales", "pw8603").await;
    assert_eq!(queued.status(), 200, "{}", queued.response);
    c.request_in(&queued, "BYE", 3, "", "").await;

    a.request_in(&call, "BYE", 3, "", "").await;
    assert!(
        b.recv_request("BYE", WAIT).await.is_some(),
        "the colleague's leg ends too"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, cdrs) = http(gw.http_addr, "GET", "/api/cdrs", Some("test-key"), "").await;
    let kinds: Vec<&str> = cdrs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.iter().all(|k| *k == "internal"), "{cdrs}");
    let reasons: Vec<&str> = cdrs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["end_reason"].as_str().unwrap_or(""))
        .collect();
    assert!(
        reasons.contains(&"unanswered") && reasons.contains(&"customer_hangup"),
        "{reasons:?}"
    );
}
