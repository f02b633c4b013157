//! The HTTP side and graceful shutdown: the demo page and health endpoints are served, CORS answers
//! configured widget origins only, and while draining `/readyz` fails and new calls get 503 while the
//! call in progress keeps the process up.

use crate::common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A bare HTTP/1.1 GET; returns (status, raw response).
async fn get(addr: std::net::SocketAddr, path: &str, extra: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    (
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        text,
    )
}

#[tokio::test]
async fn demo_page_health_and_readiness() {
    let (gw, _) = start(test_config("")).await;
    let (code, page) = get(gw.http_addr, "/", "").await;
    assert_eq!(code, 200);
    assert!(page
        .to_ascii_lowercase()
        .contains("content-type: text/html"));
    assert!(page.contains("clicktocall"));
    assert_eq!(get(gw.http_addr, "/healthz", "").await.0, 200);
    assert_eq!(get(gw.http_addr, "/readyz", "").await.0, 200);
    assert_eq!(get(gw.http_addr, "/no/such/file.js", "").await.0, 404);
    assert_eq!(get(gw.http_addr, "/../Cargo.toml", "").await.0, 404);
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let mut cfg = test_config("");
    cfg.http.cors_origins = vec!["https://shop.example.com".into()];
    let (gw, _) = start(cfg).await;
    let (_, ok) = get(
        gw.http_addr,
        "/healthz",
        "Origin: https://shop.example.com\r\n",
    )
    .await;
    assert!(
        ok.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://shop.example.com"),
        "{ok}"
    );
    let (_, other) = get(
        gw.http_addr,
        "/healthz",
        "Origin: https://evil.example.net\r\n",
    )
    .await;
    assert!(
        !other
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{other}"
    );
}

#[tokio::test]
async fn draining_fails_readiness_refuses_new_calls_and_waits_for_the_running_one() {
    let (gw, sip) = start(test_config("")).await;
    let running_call = gw.lifecycle.start_call().expect("serving");
    let lifecycle = gw.lifecycle.clone();
    let drain = tokio::spawn(async move { lifecycle.drain(Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert_eq!(
        get(gw.http_addr, "/readyz", "").await.0,
        503,
        "readiness flips when draining"
    );
    assert_eq!(
        get(gw.http_addr, "/healthz", "").await.0,
        200,
        "still alive"
    );

    let trunk = Peer::bind("127.0.0.2").await;
    trunk
        .send(
            sip,
            request("INVITE", trunk.addr, "drain1", "drain-1", "").as_bytes(),
        )
        .await;
    let resp = trunk
        .recv_final(Duration::from_secs(3))
        .await
        .expect("answer");
    assert_eq!(status(&resp), 503, "{resp}");
    assert!(header(&resp, "Retry-After").is_some());

    assert!(
        !drain.is_finished(),
        "the running call holds the grace period"
    );
    drop(running_call);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .unwrap()
            .unwrap(),
        0
    );
    assert!(gw.lifecycle.stop_token().is_cancelled());
}
