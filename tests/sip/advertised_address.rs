//! NAT 1:1: with `sip.advertised_host` set, our own requests name the public address in Via, From and
//! Call-ID (while the socket stays bound to loopback), and no foreign domain appears anywhere.

use crate::common;

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

    // A registered agent gets keepalive OPTIONS: our own requests, to inspect.
    register_agent(&phone, sip, "1001", "pw1001").await;

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
