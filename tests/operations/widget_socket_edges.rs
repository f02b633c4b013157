//! Issue 17, acceptance 4, and the widget socket's other edges: malformed messages followed by one
//! over the limit get their `error` replies, then a close with 1009 (not an abnormal end), also when
//! the oversized frame is megabytes long; a widget that never reads is dropped instead of buffered
//! for; one address opening sockets too fast gets 429.

use crate::common;

use common::call::{call_config, Widget};
use common::start;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(addr: SocketAddr) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("upgrade");
    ws
}

/// Everything the gateway sends until it closes: the error codes and the close code.
async fn replies_until_close(
    stream: &mut futures_util::stream::SplitStream<Client>,
) -> (Vec<String>, Option<CloseCode>) {
    let mut codes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the gateway closes in time");
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "error" {
                    codes.push(v["code"].as_str().unwrap_or_default().to_string());
                }
            }
            Some(Ok(Message::Close(frame))) => return (codes, frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    }
}

async fn malformed_then_oversized(addr: SocketAddr, big: usize) {
    let (mut sink, mut stream) = open(addr).await.split();
    let bad = [
        "{not json",
        r#"{"type":"no_such_thing"}"#,
        r#"{"type":"dtmf","digits":"12"}"#,
    ];
    // All in one go, the oversized one last, while the replies are read concurrently.
    let send = tokio::spawn(async move {
        for b in bad {
            sink.send(Message::Text(b.into())).await.unwrap();
        }
        // The gateway drops this frame's payload as it comes; sending it whole must not fail.
        let _ = sink.send(Message::Text("x".repeat(big).into())).await;
        sink
    });
    let (codes, close) = replies_until_close(&mut stream).await;
    assert_eq!(
        codes,
        ["malformed", "malformed", "no_call"],
        "every reply due, in order ({big} bytes)"
    );
    assert_eq!(close, Some(CloseCode::Size), "then 1009 ({big} bytes)");
    let _ = send.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_malformed_messages_arrive_then_an_oversized_one_closes_with_1009() {
    let (gw, _) = start(call_config(&["8801"], "", "")).await;
    for big in [70_000, 200_000, 8_000_000] {
        malformed_then_oversized(gw.http_addr, big).await;
    }
    // The gateway is unharmed.
    let w = Widget::connect(gw.http_addr).await;
    assert_eq!(w.hello["type"], "hello");
}

/// A masked client text frame (RFC 6455 §5.2), written by hand: this client never runs a
/// WebSocket library's reader, which would answer the gateway's pings.
fn masked_text(text: &str) -> Vec<u8> {
    let mask = [7u8, 1, 2, 3];
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widget_that_never_reads_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, _) = start(call_config(&["8802"], "", "")).await;
    let mut tcp = tokio::net::TcpStream::connect(gw.http_addr).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    // Requests with replies, as fast as the gateway takes them, and no reading at all: the
    // replies pile up until the gateway cannot send, or it hears nothing more (no pongs either).
    let pump = tokio::spawn(async move {
        let ping = masked_text(r#"{"type":"ping"}"#).repeat(1000);
        for _ in 0..400 {
            let sent = tokio::time::timeout(Duration::from_secs(1), wr.write_all(&ping)).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
        wr
    });
    tokio::time::sleep(Duration::from_secs(12)).await;
    // Now read raw bytes (answering nothing): what the gateway sent, then the end it made.
    let mut buf = vec![0u8; 1 << 16];
    let (mut total, t0) = (0usize, tokio::time::Instant::now());
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the gateway still holds a socket that never read ({total} bytes read in {:?})",
        t0.elapsed()
    );
    assert!(
        total > 100_000,
        "it did answer while it could: {total} bytes"
    );
    pump.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_opening_sockets_too_fast_gets_429() {
    let extra = "[limits]\nws_per_ip_per_sec = 1\nws_per_ip_burst = 5\n";
    let (gw, _) = start(call_config(&["8803"], "", extra)).await;
    let mut codes = Vec::new();
    let mut open_ones = Vec::new();
    for _ in 0..8 {
        match Widget::connect_as(gw.http_addr, "", None).await {
            Ok(w) => {
                codes.push(101);
                open_ones.push(w);
            }
            Err(code) => codes.push(code),
        }
    }
    assert_eq!(codes, [101, 101, 101, 101, 101, 429, 429, 429]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        Widget::connect_as(gw.http_addr, "", None).await.is_ok(),
        "a second later: one more"
    );
}
