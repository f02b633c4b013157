//! The transaction layer over UDP (RFC 3261 §17): our keepalive OPTIONS is retransmitted on Timer E
//! until the agent answers (here: only the third copy), and a retransmitted request from a phone gets
//! the same answer again without being processed twice.

use crate::common;

use common::*;
use std::time::{Duration, Instant};

fn branch_of(msg: &str) -> String {
    header(msg, "Via")
        .and_then(|v| v.split("branch=").nth(1))
        .map(|b| b.split(';').next().unwrap().to_string())
        .unwrap()
}

#[tokio::test]
async fn keepalive_options_is_retransmitted_until_the_third_copy_is_answered() {
    let mut cfg = test_config("");
    cfg.registrar.keepalive_interval_secs = 1;
    cfg.registrar.keepalive_max_failures = 1;
    let (gw, sip) = start(cfg).await;
    let phone = Peer::bind("127.0.0.1").await;
    register_agent(&phone, sip, "1001", "pw1001").await;

    // Receive three copies of the same OPTIONS transaction; answer only the third.
    let mut copies = Vec::new();
    while copies.len() < 3 {
        let msg = phone
            .recv(Duration::from_secs(5))
            .await
            .expect("keepalive OPTIONS (or a retransmission)");
        assert!(msg.starts_with("OPTIONS sip:1001@"), "{msg}");
        copies.push((Instant::now(), msg));
    }
    let branch = branch_of(&copies[0].1);
    assert!(
        copies.iter().all(|(_, m)| branch_of(m) == branch),
        "all copies belong to one transaction"
    );
    // Timer E: T1 (500 ms), then 2*T1 (1 s) between copies.
    let gap1 = copies[1].0 - copies[0].0;
    let gap2 = copies[2].0 - copies[1].0;
    assert!(
        gap1 >= Duration::from_millis(350) && gap1 <= Duration::from_millis(900),
        "first gap {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(800) && gap2 <= Duration::from_millis(1600),
        "second gap {gap2:?}"
    );
    assert!(gap2 > gap1, "retransmission interval doubles");

    let opt = &copies[2].1;
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=ph1\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(opt, "Via").unwrap(),
        header(opt, "From").unwrap(),
        header(opt, "To").unwrap(),
        header(opt, "Call-ID").unwrap(),
        header(opt, "CSeq").unwrap()
    );
    phone.send(sip, reply.as_bytes()).await;

    // Answered: no more copies of that transaction, and the agent is still online (max failures is 1,
    // so an unanswered keepalive would have taken it offline).
    let deadline = Instant::now() + Duration::from_millis(2500);
    while let Some(msg) = phone
        .recv(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        assert_ne!(
            branch_of(&msg),
            branch,
            "answered transaction retransmitted again: {msg}"
        );
    }
    assert_eq!(gw.locations.online_agents().await, vec!["1001".to_string()]);
}

#[tokio::test]
async fn a_retransmitted_request_gets_the_same_answer_once_processed() {
    let (_gw, sip) = start(test_config("")).await;
    let phone = Peer::bind("127.0.0.1").await;
    let msg = register_msg(phone.addr, "1001", "same-1", 1, Some(600), None);
    phone.send(sip, msg.as_bytes()).await;
    let first = phone.recv_final(Duration::from_secs(3)).await.expect("401");
    phone.send(sip, msg.as_bytes()).await;
    let second = phone
        .recv_final(Duration::from_secs(3))
        .await
        .expect("retransmitted 401");
    assert_eq!(status(&first), 401);
    // The transaction layer replays its last response: same To tag and the same nonce, which a
    // second pass through the handler would have changed.
    assert_eq!(header(&first, "To"), header(&second, "To"));
    assert_eq!(
        header(&first, "WWW-Authenticate"),
        header(&second, "WWW-Authenticate")
    );
}

#[tokio::test]
async fn an_agent_that_never_answers_keepalives_goes_offline() {
    let mut cfg = test_config("");
    cfg.registrar.keepalive_interval_secs = 1;
    cfg.registrar.keepalive_max_failures = 1;
    cfg.sip.timer_t1_ms = 20; // Timer F = 64 * T1 = 1.28 s
    let (gw, sip) = start(cfg).await;
    let phone = Peer::bind("127.0.0.1").await;
    register_agent(&phone, sip, "1001", "pw1001").await;
    assert_eq!(gw.locations.online_agents().await, vec!["1001".to_string()]);
    // The phone is dead: it receives the keepalive copies and never answers.
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && !gw.locations.online_agents().await.is_empty() {
        let _ = phone.recv(Duration::from_millis(100)).await;
    }
    assert!(
        gw.locations.online_agents().await.is_empty(),
        "a silent agent must go offline"
    );
}
