//! The built-in demo agent: a tiny SIP phone inside the gateway process (like Asterisk's echo test),
//! so the embedded demo config gives a working call with no phone installed. It is an ordinary
//! static-URI agent to the rest of the gateway, reached over real SIP on loopback: it answers every
//! INVITE, plays a short greeting, then echoes what the caller says (200 ms later). Off unless
//! `[demo_agent] enabled = true` (the embedded demo config turns it on).

use crate::media::g711;
use crate::media::rtp::{self, RtpView};
use crate::media::source::Clip;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// Frames of echo delay (20 ms each).
const ECHO_DELAY_FRAMES: usize = 10;

/// Binds the demo agent's SIP socket on `ip` (port chosen by the OS); returns it and its address.
pub fn bind(ip: IpAddr) -> std::io::Result<(std::net::UdpSocket, SocketAddr)> {
    let s = std::net::UdpSocket::bind((ip, 0))?;
    s.set_nonblocking(true)?;
    let addr = s.local_addr()?;
    Ok((s, addr))
}

/// Runs the demo agent on `socket` until `stop`.
pub fn spawn(socket: std::net::UdpSocket, greeting: Option<Clip>, stop: CancellationToken) {
    tokio::spawn(async move {
        let Ok(socket) = UdpSocket::from_std(socket) else {
            return;
        };
        let socket = Arc::new(socket);
        let mut calls: HashMap<String, (String, CancellationToken)> = HashMap::new();
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, from) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r { Ok(x) => x, Err(_) => continue },
                _ = stop.cancelled() => break,
            };
            let Ok(text) = std::str::from_utf8(&buf[..n]) else {
                continue;
            };
            let Some(method) = text.split(' ').next() else {
                continue;
            };
            let call_id = header(text, "Call-ID").unwrap_or_default().to_string();
            let reply = match method {
                "INVITE" => {
                    if let Some((answer, _)) = calls.get(&call_id) {
                        Some(answer.clone()) // a retransmission: the same answer
                    } else {
                        match answer_invite(text, socket.local_addr().ok(), greeting.clone()).await
                        {
                            Some((resp, media_stop)) => {
                                info!(%call_id, "demo agent answered");
                                calls.insert(call_id.clone(), (resp.clone(), media_stop));
                                Some(resp)
                            }
                            None => Some(response(text, "488 Not Acceptable Here", "", "")),
                        }
                    }
                }
                "BYE" => {
                    if let Some((_, media_stop)) = calls.remove(&call_id) {
                        media_stop.cancel();
                    }
                    Some(response(text, "200 OK", "", ""))
                }
                "CANCEL" | "OPTIONS" | "UPDATE" | "INFO" => Some(response(text, "200 OK", "", "")),
                _ => None, // ACK, responses
            };
            if let Some(r) = reply {
                let _ = socket.send_to(r.as_bytes(), from).await;
            }
        }
        for (_, (_, s)) in calls {
            s.cancel();
        }
    });
}

/// The value of the first header `name` (case-insensitive).
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A response to `req`, copying Via, From, To (tagged), Call-ID and CSeq.
fn response(req: &str, status: &str, extra: &str, sdp: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in req.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            if line.is_empty() {
                break;
            }
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "to" | "t" if !value.contains("tag=") => {
                out.push_str(line);
                out.push_str(";tag=demo-agent\r\n");
            }
            "to" | "t" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            _ => {}
        }
    }
    out.push_str("Server: clicktocall demo agent\r\n");
    out.push_str(extra);
    if sdp.is_empty() {
        out.push_str("Content-Length: 0\r\n\r\n");
    } else {
        out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ));
    }
    out
}

/// The media address in an SDP body.
fn sdp_target(body: &str) -> Option<SocketAddr> {
    let ip = body
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 ").or(l.strip_prefix("c=IN IP6 ")))?;
    let port = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split(' ')
        .next()?;
    format!("{}:{}", ip.trim(), port).parse().ok().or_else(|| {
        let ip: IpAddr = ip.trim().parse().ok()?;
        Some(SocketAddr::new(ip, port.parse().ok()?))
    })
}

async fn answer_invite(
    req: &str,
    sip_local: Option<SocketAddr>,
    greeting: Option<Clip>,
) -> Option<(String, CancellationToken)> {
    let body = req.split("\r\n\r\n").nth(1)?;
    let target = sdp_target(body)?;
    let local_ip = sip_local?.ip();
    let rtp = UdpSocket::bind((local_ip, 0)).await.ok()?;
    let port = rtp.local_addr().ok()?.port();
    let sdp = format!(
        "v=0\r\no=demo 1 1 IN IP4 {local_ip}\r\ns=demo agent\r\nc=IN IP4 {local_ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    let contact = format!("Contact: <sip:demo@{}>\r\n", sip_local?);
    let resp = response(req, "200 OK", &contact, &sdp);
    let stop = CancellationToken::new();
    tokio::spawn(media(rtp, target, greeting, stop.clone()));
    Some((resp, stop))
}

/// Plays the greeting, then echoes the caller's frames back after [`ECHO_DELAY_FRAMES`].
async fn media(
    rtp: UdpSocket,
    target: SocketAddr,
    greeting: Option<Clip>,
    stop: CancellationToken,
) {
    let samples: Vec<i16> = greeting.map(|c| c.samples().to_vec()).unwrap_or_default();
    let mut greeting = samples
        .chunks(160)
        .map(<[i16]>::to_vec)
        .collect::<VecDeque<_>>();
    let mut echo: VecDeque<Vec<u8>> = VecDeque::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut seq, mut ts, ssrc) = (1u16, 0u32, rand::random::<u32>());
    let mut buf = vec![0u8; 2048];
    let mut pkt = Vec::with_capacity(200);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = rtp.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    if let Ok(p) = RtpView::parse(&buf[..n]) {
                        if p.pt == 0 && echo.len() < 100 {
                            echo.push_back(p.payload.to_vec());
                        }
                    }
                }
                continue;
            }
            _ = stop.cancelled() => break,
        }
        let payload = if let Some(frame) = greeting.pop_front() {
            echo.clear(); // the caller hears the greeting, not themselves, until it ends
            let mut out = Vec::with_capacity(160);
            g711::encode_ulaw(&frame, &mut out);
            out.resize(160, 0xff);
            Some(out)
        } else if echo.len() > ECHO_DELAY_FRAMES {
            echo.pop_front()
        } else {
            None
        };
        if let Some(payload) = payload {
            pkt.clear();
            rtp::write(&mut pkt, false, 0, seq, ts, ssrc, &payload);
            if let Err(e) = rtp.send_to(&pkt, target).await {
                debug!(error = %e, "demo agent RTP send failed");
            }
        }
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
    }
}
