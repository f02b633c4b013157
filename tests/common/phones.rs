//! Test phones: agent phones speaking raw SIP over UDP with an RTP tone (1000 Hz unless set), and a
//! trunk caller's RTP phone (a tone, RFC 4733 keys, what it hears and the digits it gets).

use super::call::sdp_addr;
use super::{header, register_agent, Peer};
use clicktocall::media::dtmf::DtmfEvent;
use clicktocall::media::g711;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::tone::ToneGenerator;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// An agent phone: raw SIP on UDP, RTP with a 1000 Hz tone.
pub struct AgentPhone {
    pub sip: Peer,
    pub user: String,
    gw: SocketAddr,
    cseq: u32,
    pub heard: Arc<Mutex<Vec<i16>>>,
    rtp_stop: Option<mpsc::UnboundedSender<()>>,
    /// The tone the phone sends once answered (1000 Hz unless set).
    pub tone_hz: f64,
    /// The address its SDP names (its own unless set: a phone behind NAT names its private one).
    pub sdp_ip: String,
    /// (SSRC, timestamp) of every PCMU packet it received, in order.
    pub received: Arc<Mutex<Vec<(u32, u32)>>>,
    /// One packet in N it never sends (0: none).
    pub lose_every: u16,
}

impl AgentPhone {
    /// The phone sends `hz` instead of 1000 Hz.
    pub fn with_tone(mut self, hz: f64) -> AgentPhone {
        self.tone_hz = hz;
        self
    }

    /// The phone's SDP names `ip` while its media comes from 127.0.0.1 (behind NAT).
    pub fn with_sdp_ip(mut self, ip: &str) -> AgentPhone {
        self.sdp_ip = ip.into();
        self
    }

    /// Registers `user` with the gateway at `gw`.
    pub async fn register(gw: SocketAddr, user: &str, password: &str) -> AgentPhone {
        let sip = Peer::bind("127.0.0.1").await;
        register_agent(&sip, gw, user, password).await;
        AgentPhone::with_peer(sip, gw, user)
    }

    /// A static (unregistered) phone on an already bound peer.
    pub fn with_peer(sip: Peer, gw: SocketAddr, user: &str) -> AgentPhone {
        AgentPhone {
            sip,
            user: user.into(),
            gw,
            cseq: 10,
            heard: Arc::default(),
            rtp_stop: None,
            tone_hz: 1000.0,
            sdp_ip: "127.0.0.1".into(),
            received: Arc::default(),
            lose_every: 0,
        }
    }

    /// The next request of `method` (others are skipped; OPTIONS answered).
    pub async fn recv_request(&self, method: &str, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.sip.recv(left).await?;
            if m.starts_with(&format!("{method} ")) {
                return Some(m);
            }
            if m.starts_with("OPTIONS ") {
                self.sip
                    .send(self.gw, response(&m, 200, "", None).as_bytes())
                    .await;
            }
        }
    }

    /// Answers a request with `code` (and SDP for a 200 to INVITE), to where its Via says
    /// (a node of a cluster other than the one the phone registered with may have sent it).
    pub async fn reply(&self, req: &str, code: u16, sdp: Option<&str>) {
        let contact = format!("Contact: <sip:{}@{}>\r\n", self.user, self.sip.addr);
        self.sip
            .send(
                via_addr(req).unwrap_or(self.gw),
                response(req, code, &contact, sdp).as_bytes(),
            )
            .await;
    }

    /// Answers the INVITE with 200 and SDP for an RTP socket that plays 1000 Hz to the gateway's
    /// media address and records what it hears.
    pub async fn answer(&mut self, invite: &str) {
        self.answer_with(invite, "").await
    }

    /// [`AgentPhone::answer`] with extra header lines in the 200 (`Session-Expires: ...\r\n`).
    pub async fn answer_with(&mut self, invite: &str, extra: &str) {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rtp.local_addr().unwrap().port();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
            ip = self.sdp_ip
        );
        self.reply(invite, 180, None).await;
        let contact = format!("Contact: <sip:{}@{}>\r\n{extra}", self.user, self.sip.addr);
        self.sip
            .send(
                via_addr(invite).unwrap_or(self.gw),
                response(invite, 200, &contact, Some(&sdp)).as_bytes(),
            )
            .await;
        let target = sdp_addr(invite).expect("INVITE carries SDP");
        self.start_rtp(rtp, target);
    }

    /// Plays the phone's tone from `rtp` to `target` and records what arrives.
    pub fn start_rtp(&mut self, rtp: UdpSocket, target: SocketAddr) {
        let (heard, received) = (self.heard.clone(), self.received.clone());
        let (stop, mut stop_rx) = mpsc::unbounded_channel::<()>();
        self.rtp_stop = Some(stop);
        let (hz, lose) = (self.tone_hz, self.lose_every);
        tokio::spawn(async move {
            let mut tone = ToneGenerator::new(hz, 8000, 0.4);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut seq, mut buf) = (1u16, vec![0u8; 2048]);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.recv() => break,
                }
                let pkt = pcmu_packet(&tone.samples(160), seq, u32::from(seq) * 160, 0xa9e47);
                if lose == 0 || seq % lose != 0 {
                    let _ = rtp.send_to(&pkt, target).await;
                }
                seq = seq.wrapping_add(1);
                while let Ok((n, _)) = rtp.try_recv_from(&mut buf) {
                    if let Ok(p) = RtpView::parse(&buf[..n]) {
                        if p.pt == 0 {
                            g711::decode_ulaw(p.payload, &mut heard.lock().unwrap());
                            received.lock().unwrap().push((p.ssrc, p.timestamp));
                        }
                    }
                }
            }
        });
    }

    /// Stops the phone's RTP.
    pub fn stop_rtp(&mut self) {
        self.rtp_stop.take();
    }

    /// Sends an in-dialog request (BYE, re-INVITE, REFER) for the dialog of `invite` (which we answered).
    pub async fn in_dialog(&mut self, invite: &str, method: &str, extra: &str, body: &str) {
        self.cseq += 1;
        let call_id = header(invite, "Call-ID").unwrap();
        let from = header(invite, "From").unwrap(); // the gateway, with its tag
        let to = header(invite, "To").unwrap(); // us, without our tag
        let target = header(invite, "Contact")
            .and_then(|c| c.split('<').nth(1))
            .and_then(|c| c.split('>').next())
            .unwrap()
            .to_string();
        let ct = if body.is_empty() || extra.contains("Content-Type:") {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".into()
        };
        let msg = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{}{};rport\r\nFrom: {to};tag=agent-{}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {} {method}\r\nMax-Forwards: 70\r\nContact: <sip:{}@{}>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
            self.sip.addr,
            method.to_lowercase(),
            self.cseq,
            self.user,
            self.cseq,
            self.user,
            self.sip.addr,
            body.len()
        );
        self.sip.send(self.gw, msg.as_bytes()).await;
    }

    /// Sends ACK for a 2xx to our re-INVITE (the gateway's response `resp`).
    pub async fn ack(&self, invite: &str, resp: &str) {
        let call_id = header(invite, "Call-ID").unwrap();
        let from = header(invite, "From").unwrap();
        let to = header(invite, "To").unwrap();
        let cseq: u32 = header(resp, "CSeq")
            .and_then(|c| c.split(' ').next())
            .and_then(|c| c.parse().ok())
            .unwrap();
        let target = header(invite, "Contact")
            .and_then(|c| c.split('<').nth(1))
            .and_then(|c| c.split('>').next())
            .unwrap()
            .to_string();
        let msg = format!(
            "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKack{cseq};rport\r\nFrom: {to};tag=agent-{}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            self.sip.addr, self.user
        );
        self.sip.send(self.gw, msg.as_bytes()).await;
    }

    /// The gateway's SIP address.
    pub fn gateway(&self) -> SocketAddr {
        self.gw
    }

    /// Heard samples so far.
    pub fn heard_len(&self) -> usize {
        self.heard.lock().unwrap().len()
    }
}

/// One RTP packet of PCMU (payload type 0) carrying `samples`.
pub fn pcmu_packet(samples: &[i16], seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut payload = Vec::new();
    g711::encode_ulaw(samples, &mut payload);
    let mut pkt = Vec::new();
    rtp::write(&mut pkt, false, 0, seq, ts, ssrc, &payload);
    pkt
}

/// Decodes every PCMU packet waiting on `sock` into `heard`.
pub fn receive_pcmu(sock: &UdpSocket, buf: &mut [u8], heard: &Mutex<Vec<i16>>) {
    while let Ok((n, _)) = sock.try_recv_from(buf) {
        if let Ok(p) = RtpView::parse(&buf[..n]) {
            if p.pt == 0 {
                g711::decode_ulaw(p.payload, &mut heard.lock().unwrap());
            }
        }
    }
}

/// A response to `req`; To gets our tag `agent-<user>` (when it has none).
pub fn response(req: &str, code: u16, extra: &str, sdp: Option<&str>) -> String {
    let reason = match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        202 => "Accepted",
        486 => "Busy Here",
        487 => "Request Terminated",
        _ => "Whatever",
    };
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for line in req.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let n = name.trim().to_ascii_lowercase();
        match n.as_str() {
            "via" | "from" | "call-id" | "cseq" => out.push_str(&format!("{line}\r\n")),
            "to" => {
                let user = header(req, "To")
                    .and_then(|t| t.split("sip:").nth(1))
                    .and_then(|u| u.split('@').next())
                    .unwrap_or("agent")
                    .to_string();
                if value.contains("tag=") {
                    out.push_str(&format!("{line}\r\n"));
                } else {
                    out.push_str(&format!("{line};tag=agent-{user}\r\n"));
                }
            }
            _ => {}
        }
    }
    out.push_str(extra);
    match sdp {
        Some(s) => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{s}",
            s.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out
}

/// A customer's phone behind a trunk: plain RTP from `rtp`, sends `hz` once told where (`go`),
/// records what arrives (PCMU), presses keys (RFC 4733, payload type 101) on request; stops when
/// dropped.
pub struct RtpPhone {
    pub heard: Arc<Mutex<Vec<i16>>>,
    /// RFC 4733 digits received (once per key press).
    pub digits: Arc<Mutex<String>>,
    pub keys: mpsc::UnboundedSender<u8>,
    pub go: mpsc::UnboundedSender<SocketAddr>,
}

pub fn rtp_phone(rtp: UdpSocket, hz: f64) -> RtpPhone {
    let heard = Arc::new(Mutex::new(Vec::<i16>::new()));
    let digits = Arc::new(Mutex::new(String::new()));
    let (keys, mut key_rx) = mpsc::unbounded_channel::<u8>();
    let (go, mut go_rx) = mpsc::unbounded_channel::<SocketAddr>();
    let (h, d) = (heard.clone(), digits.clone());
    tokio::spawn(async move {
        let mut tone = ToneGenerator::new(hz, 8000, 0.4);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut seq, mut buf) = (1u16, vec![0u8; 2048]);
        let mut press: Option<(u8, u32, u16)> = None;
        let mut to: Option<SocketAddr> = None;
        let mut rx = clicktocall::media::dtmf::DtmfReceiver::new();
        loop {
            tick.tick().await;
            while let Ok((n, _)) = rtp.try_recv_from(&mut buf) {
                let Ok(p) = RtpView::parse(&buf[..n]) else {
                    continue;
                };
                match p.pt {
                    0 => g711::decode_ulaw(p.payload, &mut h.lock().unwrap()),
                    101 => d
                        .lock()
                        .unwrap()
                        .extend(rx.handle_packet(p.timestamp, p.payload)),
                    _ => {}
                }
            }
            match go_rx.try_recv() {
                Ok(a) => to = Some(a),
                // The phone was dropped: stop (a long run places thousands of these).
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            let Some(dest) = to else { continue };
            let ts = u32::from(seq) * 160;
            let mut pkt = Vec::new();
            if press.is_none() {
                if let Ok(code) = key_rx.try_recv() {
                    press = Some((code, ts, 0));
                }
            }
            if let Some((code, start, n)) = press {
                let ev = DtmfEvent {
                    code,
                    end: n >= 5,
                    volume: 10,
                    duration: (n + 1) * 160,
                };
                rtp::write(&mut pkt, n == 0, 101, seq, start, 0x7eed, &ev.to_bytes());
                press = if n >= 7 {
                    None
                } else {
                    Some((code, start, n + 1))
                };
            } else {
                pkt = pcmu_packet(&tone.samples(160), seq, ts, 0x7eed);
            }
            let _ = rtp.send_to(&pkt, dest).await;
            seq = seq.wrapping_add(1);
        }
    });
    RtpPhone {
        heard,
        digits,
        keys,
        go,
    }
}

/// The address in a request's top Via (`SIP/2.0/UDP host:port;...`).
pub fn via_addr(req: &str) -> Option<SocketAddr> {
    let line = req
        .lines()
        .find(|l| l.starts_with("Via:") || l.starts_with("v:"))?;
    let sent_by = line.split_whitespace().nth(2)?;
    sent_by.split(';').next()?.parse().ok()
}
