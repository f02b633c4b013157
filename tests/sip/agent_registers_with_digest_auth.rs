//! An agent phone registers: 401 challenge, 200 with its Contact and the granted expiry, shows up
//! online in the location store, un-registers and goes offline. Wrong passwords, other people's
//! addresses of record and too-short expiries are refused.

use crate::common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(3);

fn register(
    peer: SocketAddr,
    user: &str,
    cseq: u32,
    expires: Option<u32>,
    auth: Option<String>,
) -> String {
    register_msg(
        peer,
        user,
        &format!("reg-{user}@{peer}"),
        cseq,
        expires,
        auth.as_deref(),
    )
}

fn answer(challenge: &str, user: &str, password: &str) -> String {
    digest_answer(challenge, user, password)
}

async fn challenge(peer: &Peer, sip: SocketAddr, user: &str, cseq: u32) -> String {
    peer.send(
        sip,
        register(peer.addr, user, cseq, Some(600), None).as_bytes(),
    )
    .await;
    let resp = peer.recv_final(WAIT).await.expect("answer to REGISTER");
    assert_eq!(status(&resp), 401, "{resp}");
    header(&resp, "WWW-Authenticate")
        .expect("challenge header")
        .to_string()
}

#[tokio::test]
async fn agent_registers_shows_online_and_unregisters() {
    let (gw, sip) = start(test_config("")).await;
    let peer = Peer::bind("127.0.0.1").await;

    let ch = challenge(&peer, sip, "1001", 1).await;
    assert!(ch.starts_with("Digest realm=\"clicktocall\""), "{ch}");
    assert!(ch.contains("qop=\"auth\""), "{ch}");

    // 7200 s asked, 3600 s (max_expires) granted.
    peer.send(
        sip,
        register(
            peer.addr,
            "1001",
            2,
            Some(7200),
            Some(answer(&ch, "1001", "pw1001")),
        )
        .as_bytes(),
    )
    .await;
    let ok = peer.recv_final(WAIT).await.expect("200");
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(
        header(&ok, "Contact"),
        Some(format!("<sip:1001@{}>;expires=3600", peer.addr).as_str())
    );
    let contacts = gw.locations.contacts("1001").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].source, peer.addr);
    assert_eq!(gw.locations.online_agents().await, vec!["1001".to_string()]);

    // Un-REGISTER with Expires: 0.
    peer.send(
        sip,
        register(
            peer.addr,
            "1001",
            3,
            Some(0),
            Some(answer(&ch, "1001", "pw1001")),
        )
        .as_bytes(),
    )
    .await;
    let ok = peer.recv_final(WAIT).await.expect("200");
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(header(&ok, "Contact"), None);
    assert!(gw.locations.online_agents().await.is_empty());
}

#[tokio::test]
async fn wrong_password_other_aor_and_too_brief_are_refused() {
    let (gw, sip) = start(test_config("")).await;
    let peer = Peer::bind("127.0.0.1").await;
    let ch = challenge(&peer, sip, "1001", 1).await;

    peer.send(
        sip,
        register(
            peer.addr,
            "1001",
            2,
            Some(600),
            Some(answer(&ch, "1001", "wrong")),
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status(&peer.recv_final(WAIT).await.unwrap()), 403);

    // Right password for 1001, but registering the address of record of 1002.
    let msg = register(
        peer.addr,
        "1002",
        3,
        Some(600),
        Some(answer(&ch, "1001", "pw1001")),
    );
    peer.send(sip, msg.as_bytes()).await;
    assert_eq!(status(&peer.recv_final(WAIT).await.unwrap()), 403);

    peer.send(
        sip,
        register(
            peer.addr,
            "1001",
            4,
            Some(5),
            Some(answer(&ch, "1001", "pw1001")),
        )
        .as_bytes(),
    )
    .await;
    let brief = peer.recv_final(WAIT).await.unwrap();
    assert_eq!(status(&brief), 423, "{brief}");
    assert_eq!(header(&brief, "Min-Expires"), Some("60"));
    assert!(gw.locations.online_agents().await.is_empty());
}
