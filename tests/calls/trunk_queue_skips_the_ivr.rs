//! A trunk with `queue = "sales"` sends its callers straight into that queue: no menu, no digit.
//! The caller's media starts flowing and the agent rings at once, offered from the sales queue
//! (the IVR would have waited for a key, and its timeout leads elsewhere).

use crate::common;

use common::call::call_config;
use common::phones::AgentPhone;
use common::trunk::trunk_call;
use common::{header, start};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_caller_goes_straight_to_the_trunks_queue() {
    let mut cfg = call_config(&["8001"], "", "");
    cfg.trunks[0].queue = Some("sales".into());
    cfg.validate().expect("a trunk queue is valid");
    let (gw, sip) = start(cfg).await;
    let agent = AgentPhone::register(sip, "8001", "pw8001").await;
    let placed = Instant::now();
    let (_trunk, _phone, _, _) = trunk_call(sip, 440.0).await;

    // No key is pressed: the agent rings from the trunk's queue, well inside a menu's prompt.
    let inv = agent
        .recv_request("INVITE", WAIT)
        .await
        .expect("the agent rings without the IVR");
    assert_eq!(header(&inv, "X-Queue"), Some("sales"));
    assert!(
        placed.elapsed() < Duration::from_secs(1),
        "offered {:?} after the call was placed (its media starts with the ACK)",
        placed.elapsed()
    );
    agent.reply(&inv, 486, None).await;
    gw.shutdown().await;
}
