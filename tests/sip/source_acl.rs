//! The source ACL: INVITEs from a configured trunk's network pass the ACL, from anywhere else they get
//! 403; OPTIONS is answered for anyone; unknown methods get 501 and Allow; requests for dialogs that
//! do not exist get 481.

use crate::common;

use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn invite_from_unknown_source_is_forbidden_and_from_trunk_is_not() {
    let (_gw, sip) = start(test_config("")).await;
    let stranger = Peer::bind("127.0.0.1").await;
    stranger
        .send(
            sip,
            request("INVITE", stranger.addr, "inv1", "acl-1", "").as_bytes(),
        )
        .await;
    assert_eq!(
        status(&stranger.recv_final(WAIT).await.expect("answer")),
        403
    );

    let trunk = Peer::bind("127.0.0.2").await;
    trunk
        .send(
            sip,
            request("INVITE", trunk.addr, "inv2", "acl-2", "").as_bytes(),
        )
        .await;
    let resp = trunk.recv_final(WAIT).await.expect("answer");
    // Passed the ACL and reached call control, which wants an SDP offer (488 without one).
    assert_eq!(status(&resp), 488, "{resp}");

    let bye = request("BYE", stranger.addr, "bye1", "acl-3", "");
    stranger.send(sip, bye.as_bytes()).await;
    assert_eq!(status(&stranger.recv_final(WAIT).await.unwrap()), 403);
    trunk
        .send(
            sip,
            request("BYE", trunk.addr, "bye2", "acl-4", "").as_bytes(),
        )
        .await;
    assert_eq!(status(&trunk.recv_final(WAIT).await.unwrap()), 481);
}

#[tokio::test]
async fn options_is_answered_with_capabilities() {
    let (_gw, sip) = start(test_config("")).await;
    let anyone = Peer::bind("127.0.0.1").await;
    anyone
        .send(
            sip,
            request("OPTIONS", anyone.addr, "o1", "opt-1", "").as_bytes(),
        )
        .await;
    let resp = anyone.recv_final(WAIT).await.unwrap();
    assert_eq!(status(&resp), 200);
    assert!(header(&resp, "Allow").unwrap().contains("INVITE"));
    assert!(header(&resp, "User-Agent")
        .unwrap()
        .starts_with("clicktocall/"));
}

#[tokio::test]
async fn unknown_and_unsupported_methods() {
    let (_gw, sip) = start(test_config("")).await;
    let p = Peer::bind("127.0.0.1").await;
    p.send(sip, request("FROB", p.addr, "f1", "m-1", "").as_bytes())
        .await;
    let resp = p.recv_final(WAIT).await.unwrap();
    assert_eq!(status(&resp), 501);
    assert!(header(&resp, "Allow").is_some());
    p.send(sip, request("MESSAGE", p.addr, "m1", "m-2", "").as_bytes())
        .await;
    assert_eq!(status(&p.recv_final(WAIT).await.unwrap()), 405);
}
