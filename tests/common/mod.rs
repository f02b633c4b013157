//! Shared helpers for the in-process scenario tests: a gateway on ephemeral loopback ports and a raw
//! SIP-over-UDP test peer.
#![allow(dead_code)]

pub mod browser;
pub mod call;
pub mod dialing;
pub mod ears;
pub mod media;
pub mod phones;
pub mod trunk;

use clicktocall::config::Config;
use clicktocall::gateway::Gateway;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// A config on ephemeral loopback ports (UDP SIP only) with agent 1001/pw1001 and a trunk at 127.0.0.2.
pub fn test_config(extra: &str) -> Config {
    let text = format!(
        r#"
[http]
listen = "127.0.0.1:0"
[sip]
listen_udp = "127.0.0.1:0"
listen_tcp = ""
[registrar]
keepalive_interval_secs = 0
nonce_secret = "test-secret"
[records]
database = ":memory:"
[[trunks]]
name = "carrier"
proxy = "sip:127.0.0.2:5060"
sources = ["127.0.0.2/32"]
[[queues]]
name = "sales"
[[queues]]
name = "support"
[[agents]]
id = "1001"
password = "pw1001"
queues = ["support"]
{extra}
"#
    );
    let cfg = Config::from_toml(&text).expect("test config parses");
    cfg.validate().expect("test config is valid");
    cfg
}

/// Starts a gateway; returns it and its SIP UDP address.
pub async fn start(cfg: Config) -> (Gateway, SocketAddr) {
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let sip = gw.sip.udp_addr.expect("UDP listener");
    (gw, sip)
}

/// A raw SIP peer on a loopback UDP socket.
pub struct Peer {
    pub socket: UdpSocket,
    pub addr: SocketAddr,
}

impl Peer {
    pub async fn bind(ip: &str) -> Peer {
        let socket = UdpSocket::bind((ip, 0)).await.expect("bind test peer");
        let addr = socket.local_addr().unwrap();
        Peer { socket, addr }
    }

    pub async fn send(&self, to: SocketAddr, bytes: &[u8]) {
        self.socket.send_to(bytes, to).await.expect("send");
    }

    /// The next datagram as text, or `None` after `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        match tokio::time::timeout(wait, self.socket.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => None,
        }
    }

    /// Waits for a final response (skipping 1xx and requests such as keepalive OPTIONS).
    pub async fn recv_final(&self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.recv(left).await?;
            if msg.starts_with("SIP/2.0 1") || !msg.starts_with("SIP/2.0") {
                continue;
            }
            return Some(msg);
        }
    }
}

/// The status code of a response.
pub fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The value of the first header named `name` (case-insensitive).
pub fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A minimal well-formed request from `from` (an address string like 127.0.0.1:40000).
pub fn request(method: &str, from: SocketAddr, branch: &str, call_id: &str, extra: &str) -> String {
    format!(
        "{method} sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{branch};rport\r\n\
         From: <sip:test@{from}>;tag=t{branch}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// A REGISTER for `user` from `peer` (branch from Call-ID and CSeq, so a resend is a retransmission).
pub fn register_msg(
    peer: SocketAddr,
    user: &str,
    call_id: &str,
    cseq: u32,
    expires: Option<u32>,
    auth: Option<&str>,
) -> String {
    let expires = expires
        .map(|e| format!("Expires: {e}\r\n"))
        .unwrap_or_default();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let branch: String = call_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {peer};branch=z9hG4bK{branch}x{cseq};rport\r\n\
         From: <sip:{user}@127.0.0.1>;tag=r1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:{user}@{peer}>\r\n{expires}{auth}Content-Length: 0\r\n\r\n"
    )
}

/// The Authorization value a phone sends in answer to `challenge` (qop=auth, as most phones do).
pub fn digest_answer(challenge: &str, user: &str, password: &str) -> String {
    digest_for(
        challenge,
        user,
        password,
        rsipstack::rsip::Method::Register,
        "sip:127.0.0.1",
    )
}

/// [`digest_answer`] for a request of `method` to `uri`.
pub fn digest_for(
    challenge: &str,
    user: &str,
    password: &str,
    method: rsipstack::rsip::Method,
    uri: &str,
) -> String {
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::rsip::headers::auth::{Algorithm, AuthQop};
    let param = |name: &str| {
        challenge
            .split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {challenge}"))
            .to_string()
    };
    let (nonce, realm) = (param("nonce"), param("realm"));
    let qop = AuthQop::Auth {
        cnonce: "c0ffee".into(),
        nc: 1,
    };
    let resp = compute_digest(
        user,
        password,
        &realm,
        &nonce,
        &method,
        uri,
        Algorithm::Md5,
        Some(&qop),
    );
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm=MD5, qop=auth, cnonce=\"c0ffee\", nc=00000001"
    )
}

/// Registers `user` from `peer` the way a phone does (401, then credentials); asserts the 200.
pub async fn register_agent(peer: &Peer, sip: SocketAddr, user: &str, password: &str) {
    let call_id = format!("reg-{user}-{}", peer.addr.port());
    peer.send(
        sip,
        register_msg(peer.addr, user, &call_id, 1, Some(600), None).as_bytes(),
    )
    .await;
    let ch = peer.recv_final(Duration::from_secs(3)).await.expect("401");
    assert_eq!(status(&ch), 401, "{ch}");
    let auth = digest_answer(
        header(&ch, "WWW-Authenticate").expect("challenge"),
        user,
        password,
    );
    peer.send(
        sip,
        register_msg(peer.addr, user, &call_id, 2, Some(600), Some(&auth)).as_bytes(),
    )
    .await;
    let ok = peer.recv_final(Duration::from_secs(3)).await.expect("200");
    assert_eq!(status(&ok), 200, "{ok}");
}

/// One HTTP/1.1 request (bearer `key`, JSON `body`); the status and the JSON body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        code,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// One GET with extra request headers: the status, the response head and the raw body.
pub async fn http_get_raw(
    addr: SocketAddr,
    path: &str,
    key: &str,
    extra: &str,
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n{extra}Connection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = out[split + 4..].to_vec();
    // Chunked responses (a streamed body): undo the chunking.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = plain;
    }
    (code, head, body)
}
