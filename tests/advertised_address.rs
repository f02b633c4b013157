//! NAT 1:1: with `sip.advertised_host` set, our own requests name the public address in Via, From and
//! Call-ID (while the socket stays bound to loopback), and no foreign domain appears anywhere.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test]
async fn our_requests_carry_the_advertised_address_and_only_it() {
    let mut cfg = test_config("");
    cfg.sip.advertised_host = Some("203.0.113.10".into());
    cfg.sip.advertised_port = Some(5999);
    cfg.registrar.keepalive_interval_secs = 1;
    cfg.validate().unwrap();
    let (_gw, sip) = start(cfg).await;
    let phone = Peer::bind("127.0.0.1").await;

    // Register (challenge, then answer) so the gateway starts sending us keepalive OPTIONS.
    let reg = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKadv{cseq}\r\n\
             From: <sip:1001@127.0.0.1>;tag=x\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: adv@{a}\r\n\
             CSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:1001@{a}>\r\n{auth}Content-Length: 0\r\n\r\n",
            a = phone.addr
        )
    };
    phone.send(sip, reg(1, "").as_bytes()).await;
    let ch = phone.recv_final(Duration::from_secs(3)).await.unwrap();
    let ch = header(&ch, "WWW-Authenticate").unwrap();
    let nonce = ch
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let resp = rsipstack::dialog::authenticate::compute_digest(
        "1001",
        "pw1001",
        "clicktocall",
        nonce,
        &rsipstack::rsip::Method::Register,
        "sip:127.0.0.1",
        rsipstack::rsip::headers::auth::Algorithm::Md5,
        None,
    );
    let auth = format!(
        "Authorization: Digest username=\"1001\", realm=\"clicktocall\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", response=\"{resp}\"\r\n"
    );
    phone.send(sip, reg(2, &auth).as_bytes()).await;
    assert_eq!(
        status(&phone.recv_final(Duration::from_secs(3)).await.unwrap()),
        200
    );

    let opt = loop {
        let m = phone
            .recv(Duration::from_secs(4))
            .await
            .expect("keepalive OPTIONS");
        if m.starts_with("OPTIONS ") {
            break m;
        }
    };
    assert!(
        header(&opt, "Via")
            .unwrap()
            .starts_with("SIP/2.0/UDP 203.0.113.10:5999"),
        "{opt}"
    );
    assert!(
        header(&opt, "From").unwrap().contains("@203.0.113.10"),
        "{opt}"
    );
    assert!(
        header(&opt, "Call-ID").unwrap().ends_with("@203.0.113.10"),
        "{opt}"
    );
    assert!(
        !opt.contains("restsend"),
        "no foreign domain in our headers: {opt}"
    );
}
