//! Bad input: malformed SIP messages sent over UDP to a running gateway. Each one is answered with
//! the expected error status or dropped, and the gateway keeps serving (OPTIONS still gets 200).
//! (The RFC 4475 corpus is in `torture`.)

use crate::common;

use common::*;
use std::time::Duration;

/// (name, message, expected status or None for "dropped, no answer").
fn corpus(from: std::net::SocketAddr) -> Vec<(&'static str, Vec<u8>, Option<u16>)> {
    let via = format!("Via: SIP/2.0/UDP {from};branch=z9hG4bKbad");
    let base = |start: &str, headers: &str, body: &str| -> Vec<u8> {
        format!("{start}\r\n{headers}\r\n{body}").into_bytes()
    };
    let std_headers = |cseq: &str, extra: &str| {
        format!(
            "{via}\r\nFrom: <sip:a@{from}>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: bad-1\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n{extra}"
        )
    };
    let ok_headers = std_headers("1 OPTIONS", "Content-Length: 0\r\n");
    let mut huge = std_headers("1 OPTIONS", "Content-Length: 0\r\n");
    huge.push_str(&format!("X-Filler: {}\r\n", "a".repeat(9000)));
    vec![
        (
            "bad start line: two tokens",
            base("OPTIONS sip:127.0.0.1", &ok_headers, ""),
            Some(400),
        ),
        (
            "bad start line: wrong version",
            base("OPTIONS sip:127.0.0.1 SIP/3.0", &ok_headers, ""),
            Some(505),
        ),
        (
            "bad start line: bad uri",
            base("OPTIONS nocolon SIP/2.0", &ok_headers, ""),
            Some(400),
        ),
        (
            "bad start line: double space",
            base("OPTIONS  sip:127.0.0.1 SIP/2.0", &ok_headers, ""),
            Some(400),
        ),
        (
            "unknown method",
            base(
                "FROB sip:127.0.0.1 SIP/2.0",
                &std_headers("1 FROB", "Content-Length: 0\r\n"),
                "",
            ),
            Some(501),
        ),
        (
            "missing Call-ID",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace("Call-ID: bad-1\r\n", ""),
                "",
            ),
            Some(400),
        ),
        (
            "missing From",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace(&format!("From: <sip:a@{from}>;tag=1\r\n"), ""),
                "",
            ),
            Some(400),
        ),
        (
            "missing To",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace("To: <sip:b@127.0.0.1>\r\n", ""),
                "",
            ),
            Some(400),
        ),
        (
            "missing CSeq",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace("CSeq: 1 OPTIONS\r\n", ""),
                "",
            ),
            Some(400),
        ),
        (
            // Legal: RFC 2543 had no Max-Forwards, and RFC 4475 §3.4.1 expects such requests served.
            "no Max-Forwards (RFC 2543) is served",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace("Max-Forwards: 70\r\n", ""),
                "",
            ),
            Some(200),
        ),
        (
            "missing Via",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace(&format!("{via}\r\n"), ""),
                "",
            ),
            None,
        ),
        (
            "Content-Length larger than body",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers("1 OPTIONS", "Content-Length: 50\r\n"),
                "short",
            ),
            Some(400),
        ),
        (
            "Content-Length not a number",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers("1 OPTIONS", "Content-Length: ten\r\n"),
                "",
            ),
            Some(400),
        ),
        (
            "header without colon",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers(
                    "1 OPTIONS",
                    "Subject this has no colon\r\nContent-Length: 0\r\n",
                ),
                "",
            ),
            Some(400),
        ),
        (
            "huge message",
            base("OPTIONS sip:127.0.0.1 SIP/2.0", &huge, ""),
            Some(513),
        ),
        (
            "binary garbage",
            (0..600u32).map(|i| (i * 7919 % 251) as u8).collect(),
            None,
        ),
        (
            "no blank line",
            format!("OPTIONS sip:127.0.0.1 SIP/2.0\r\n{via}\r\n").into_bytes(),
            None,
        ),
        (
            "bad Via protocol",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace("SIP/2.0/UDP", "HTTP/1.1/UDP"),
                "",
            ),
            None,
        ),
        (
            "bad Via host",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace(&format!("UDP {from}"), "UDP bad_host!:99999"),
                "",
            ),
            None,
        ),
        (
            "CSeq method mismatch",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers("1 INVITE", "Content-Length: 0\r\n"),
                "",
            ),
            Some(400),
        ),
        (
            "CSeq not a number",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers("one OPTIONS", "Content-Length: 0\r\n"),
                "",
            ),
            Some(400),
        ),
        (
            "CSeq out of range",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers("4294967296 OPTIONS", "Content-Length: 0\r\n"),
                "",
            ),
            Some(400),
        ),
        (
            "duplicate Call-ID",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers("1 OPTIONS", "Call-ID: second\r\nContent-Length: 0\r\n"),
                "",
            ),
            Some(400),
        ),
        (
            "bad From URI",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &ok_headers.replace(&format!("<sip:a@{from}>"), "<not a uri>"),
                "",
            ),
            Some(400),
        ),
        (
            "malformed ACK is never answered",
            base(
                "ACK sip:127.0.0.1 SIP/2.0",
                &std_headers("1 INVITE", "Content-Length: 0\r\n"),
                "",
            ),
            None,
        ),
        (
            "malformed response is never answered",
            base("SIP/2.0 2OO OK", &ok_headers, ""),
            None,
        ),
        (
            "control character in header",
            base(
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &std_headers("1 OPTIONS", "Subject: a\u{1}b\r\nContent-Length: 0\r\n"),
                "",
            ),
            Some(400),
        ),
    ]
}

#[tokio::test]
async fn every_malformed_message_is_answered_or_dropped_and_the_gateway_keeps_serving() {
    let (_gw, sip) = start(test_config("")).await;
    let peer = Peer::bind("127.0.0.1").await;
    let cases = corpus(peer.addr);
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (name, bytes, expected) in cases {
        peer.send(sip, &bytes).await;
        let wait = if expected.is_some() {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(300)
        };
        let got = peer.recv(wait).await.map(|r| status(&r));
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "wrong outcomes:\n{}",
        failures.join("\n")
    );

    // Still serving: a well-formed OPTIONS is answered 200.
    peer.send(
        sip,
        request("OPTIONS", peer.addr, "after", "after-1", "").as_bytes(),
    )
    .await;
    let resp = peer
        .recv_final(Duration::from_secs(2))
        .await
        .expect("OPTIONS answered after the garbage");
    assert_eq!(status(&resp), 200, "{resp}");
}

#[tokio::test]
async fn error_answers_copy_the_request_identity_and_add_a_to_tag() {
    let (_gw, sip) = start(test_config("")).await;
    let peer = Peer::bind("127.0.0.1").await;
    let msg = request("OPTIONS", peer.addr, "cseqbad", "ident-1", "")
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 BYE");
    peer.send(sip, msg.as_bytes()).await;
    let resp = peer.recv(Duration::from_secs(2)).await.expect("answered");
    assert_eq!(status(&resp), 400);
    assert!(resp.contains("CSeq method does not match"), "{resp}");
    assert_eq!(header(&resp, "Call-ID"), Some("ident-1"));
    assert!(header(&resp, "Via")
        .unwrap()
        .contains("branch=z9hG4bKcseqbad"));
    assert!(header(&resp, "To").unwrap().contains(";tag="), "{resp}");
    assert_eq!(header(&resp, "CSeq"), Some("1 BYE"));
}

#[tokio::test]
async fn over_tcp_a_parsed_but_invalid_request_gets_400_on_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = test_config("");
    cfg.sip.listen_tcp = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let (_gw, _) = start(cfg).await;
    let mut conn = None;
    for _ in 0..50 {
        if let Ok(c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            conn = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = conn.expect("TCP listener up");
    let local = conn.local_addr().unwrap();
    let msg = request("OPTIONS", local, "tcp1", "tcp-1", "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 REGISTER");
    conn.write_all(msg.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(status(&resp), 400, "{resp}");
    assert!(resp.contains("CSeq method does not match"), "{resp}");

    // The connection still serves a good request afterwards.
    let good = request("OPTIONS", local, "tcp2", "tcp-2", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    conn.write_all(good.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    assert_eq!(status(&String::from_utf8_lossy(&buf[..n])), 200);
}
