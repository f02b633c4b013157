//! End-to-end call harness: the widget's WebSocket (tokio-tungstenite), a browser whose media runs
//! in a background task (str0m, real UDP, 440 Hz tone), and agent phones speaking raw SIP over UDP
//! with a 1000 Hz RTP tone.

use super::browser::TestBrowser;
use super::{header, register_agent, Peer};
use clicktocall::media::dtmf::DtmfEvent;
use clicktocall::media::g711;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::tone::ToneGenerator;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The widget's side of `/ws`.
pub struct Widget {
    tx: mpsc::UnboundedSender<Message>,
    rx: mpsc::UnboundedReceiver<Value>,
    /// Every message received so far.
    pub log: Vec<Value>,
    /// The session's first message (`hello`: ICE servers, what the gateway offers).
    pub hello: Value,
}

impl Widget {
    pub async fn connect(http: SocketAddr) -> Widget {
        Self::connect_as(http, "", None)
            .await
            .expect("WebSocket upgrade")
    }

    /// Connects to `/ws{query}` with an `Origin` header; the HTTP status when the upgrade is refused.
    pub async fn connect_as(
        http: SocketAddr,
        query: &str,
        origin: Option<&str>,
    ) -> Result<Widget, u16> {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        Widget::connect_with(http, query, &headers).await
    }

    /// Opens `/ws{query}` with extra request headers.
    pub async fn connect_with(
        http: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Widget, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{http}/ws{query}")
            .into_client_request()
            .unwrap();
        for (k, v) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
            req.headers_mut().append(name, v.parse().unwrap());
        }
        let ws = match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                return Err(resp.status().as_u16())
            }
            Err(e) => panic!("WebSocket: {e}"),
        };
        let (mut sink, mut stream) = ws.split();
        let (tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (in_tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = out_rx.recv() => match m {
                        Some(m) => { if sink.send(m).await.is_err() { break; } }
                        None => { let _ = sink.close().await; break; }
                    },
                    m = stream.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                            if in_tx.send(v).is_err() { break; }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
        });
        let mut w = Widget {
            tx,
            rx,
            log: Vec::new(),
            hello: Value::Null,
        };
        w.hello = w.wait_for("hello", None, Duration::from_secs(5)).await;
        Ok(w)
    }

    pub fn send(&self, v: Value) {
        self.tx.send(Message::Text(v.to_string().into())).unwrap();
    }

    pub fn send_text(&self, t: &str) {
        self.tx.send(Message::Text(t.to_string().into())).unwrap();
    }

    /// Closes the socket.
    pub fn close(&self) {
        let _ = self.tx.send(Message::Close(None));
    }

    /// The next message, or `None` after `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<Value> {
        let v = tokio::time::timeout(wait, self.rx.recv()).await.ok()??;
        self.log.push(v.clone());
        Some(v)
    }

    /// Waits for the message of `type` (and `state`, for state messages); earlier ones are logged.
    pub async fn wait_for(&mut self, ty: &str, state: Option<&str>, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self
                .recv(left)
                .await
                .unwrap_or_else(|| panic!("no {ty} {state:?} within {wait:?}; got {:?}", self.log));
            if v["type"] == ty && state.is_none_or(|s| v["state"] == s) {
                return v;
            }
        }
    }

    /// The `state` values seen so far, in order.
    pub fn states(&self) -> Vec<String> {
        self.log
            .iter()
            .filter(|v| v["type"] == "state")
            .map(|v| v["state"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// What the browser's media task observed.
#[derive(Default)]
pub struct BrowserEars {
    /// Everything heard (8 kHz).
    pub heard: Vec<i16>,
    /// When the first non-silent frame arrived.
    pub first_sound: Option<Instant>,
    /// When the browser sent its first audio packet.
    pub first_sent: Option<Instant>,
    pub connected: bool,
}

/// A browser whose media runs by itself: sends a 440 Hz tone once connected, presses digits on request.
pub struct MediaBrowser {
    pub ears: Arc<Mutex<BrowserEars>>,
    keys: mpsc::UnboundedSender<char>,
    stop: mpsc::UnboundedSender<()>,
}

impl MediaBrowser {
    /// Creates the browser and its offer; call [`MediaBrowser::start`] with the answer.
    pub async fn offer() -> (TestBrowser, UdpSocket, String) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (b, offer) = TestBrowser::offer(Instant::now(), sock.local_addr().unwrap());
        (b, sock, offer)
    }

    pub fn start(mut b: TestBrowser, sock: UdpSocket, answer: &str) -> MediaBrowser {
        b.accept(answer);
        let ears = Arc::new(Mutex::new(BrowserEars::default()));
        let (keys, mut key_rx) = mpsc::unbounded_channel::<char>();
        let (stop, mut stop_rx) = mpsc::unbounded_channel::<()>();
        let e = ears.clone();
        tokio::spawn(async move {
            let mut tone = ToneGenerator::new(440.0, 8000, 0.4);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut ticks, mut buf) = (0u64, vec![0u8; 2048]);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.recv() => break,
                }
                let now = Instant::now();
                while let Ok((n, from)) = sock.try_recv_from(&mut buf) {
                    b.receive(now, from, &buf[..n]);
                }
                b.tick(now);
                for (to, data) in b.poll() {
                    let _ = sock.send_to(&data, to).await;
                }
                let mut ears = e.lock().unwrap();
                if !b.heard.is_empty() {
                    let new: Vec<i16> = std::mem::take(&mut b.heard);
                    if ears.first_sound.is_none() && rms(&new) > 300.0 {
                        ears.first_sound = Some(now);
                    }
                    ears.heard.extend(new);
                }
                ears.connected = b.connected;
                if b.connected {
                    let samples = tone.samples(160);
                    match key_rx.try_recv() {
                        Ok(d) => b.send_pcmu_with_dtmf(now, ticks, &samples, d),
                        Err(_) => b.send_pcmu(now, ticks, &samples),
                    }
                    ears.first_sent.get_or_insert(now);
                    ticks += 160;
                }
            }
        });
        MediaBrowser { ears, keys, stop }
    }

    /// Presses a key (RFC 4733 in the media).
    pub fn press(&self, d: char) {
        self.keys.send(d).unwrap();
    }

    /// Stops sending (the browser vanishes).
    pub fn stop(&self) {
        let _ = self.stop.send(());
    }

    /// Samples heard since `from` (an index into the heard buffer).
    pub fn heard_since(&self, from: usize) -> Vec<i16> {
        self.ears.lock().unwrap().heard[from..].to_vec()
    }

    pub fn heard_len(&self) -> usize {
        self.ears.lock().unwrap().heard.len()
    }

    /// What the browser hears from now on, in a buffer of its own (moved out of its ears every
    /// 20 ms), to read like a phone's `heard`.
    pub fn tap(&self) -> Arc<Mutex<Vec<i16>>> {
        let out = Arc::new(Mutex::new(Vec::new()));
        let (feed, ears) = (out.clone(), self.ears.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let new = std::mem::take(&mut ears.lock().unwrap().heard);
                feed.lock().unwrap().extend(new);
            }
        });
        out
    }
}

/// The ended call records of call `id` (waits up to 5 s for the first).
pub async fn records_of(addr: SocketAddr, id: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, rows) =
            super::http(addr, "GET", "/api/cdrs?ended=true", Some("test-key"), "").await;
        let mine: Vec<Value> = rows
            .as_array()
            .map(|a| a.iter().filter(|r| r["call"] == id).cloned().collect())
            .unwrap_or_default();
        if !mine.is_empty() || tokio::time::Instant::now() > deadline {
            return mine;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Root mean square of samples.
pub fn rms(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
}

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
}

impl AgentPhone {
    /// The phone sends `hz` instead of 1000 Hz.
    pub fn with_tone(mut self, hz: f64) -> AgentPhone {
        self.tone_hz = hz;
        self
    }

    /// Registers `user` with the gateway at `gw`.
    pub async fn register(gw: SocketAddr, user: &str, password: &str) -> AgentPhone {
        let sip = Peer::bind("127.0.0.1").await;
        register_agent(&sip, gw, user, password).await;
        AgentPhone {
            sip,
            user: user.into(),
            gw,
            cseq: 10,
            heard: Arc::default(),
            rtp_stop: None,
            tone_hz: 1000.0,
        }
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

    /// Answers a request with `code` (and SDP for a 200 to INVITE).
    pub async fn reply(&self, req: &str, code: u16, sdp: Option<&str>) {
        let contact = format!("Contact: <sip:{}@{}>\r\n", self.user, self.sip.addr);
        self.sip
            .send(self.gw, response(req, code, &contact, sdp).as_bytes())
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
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        );
        self.reply(invite, 180, None).await;
        let contact = format!("Contact: <sip:{}@{}>\r\n{extra}", self.user, self.sip.addr);
        self.sip
            .send(
                self.gw,
                response(invite, 200, &contact, Some(&sdp)).as_bytes(),
            )
            .await;
        let target = sdp_addr(invite).expect("INVITE carries SDP");
        let heard = self.heard.clone();
        let (stop, mut stop_rx) = mpsc::unbounded_channel::<()>();
        self.rtp_stop = Some(stop);
        let hz = self.tone_hz;
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
                let _ = rtp.send_to(&pkt, target).await;
                seq = seq.wrapping_add(1);
                receive_pcmu(&rtp, &mut buf, &heard);
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

/// The media address of the SDP in a SIP message.
pub fn sdp_addr(msg: &str) -> Option<SocketAddr> {
    let body = msg.split("\r\n\r\n").nth(1)?;
    let ip = body
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim()
        .to_string();
    let port = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .to_string();
    format!("{ip}:{port}").parse().ok()
}

/// Starts a browser call over `widget` and returns the running browser.
pub async fn place_call(widget: &mut Widget, context: Value, queue: Option<&str>) -> MediaBrowser {
    let (b, sock, offer) = MediaBrowser::offer().await;
    let mut msg = json!({"type": "call", "v": 1, "sdp": offer, "context": context});
    if let Some(q) = queue {
        msg["queue"] = json!(q);
    }
    widget.send(msg);
    let answer = widget
        .wait_for("answer", None, Duration::from_secs(5))
        .await;
    MediaBrowser::start(b, sock, answer["sdp"].as_str().unwrap())
}

/// A gateway config with agents `ids` (password `pw<id>`) in `queue` and the given queue rules.
pub fn call_config(agents: &[&str], queue_rules: &str, extra: &str) -> clicktocall::config::Config {
    let mut text = format!(
        r#"
[http]
listen = "127.0.0.1:0"
[sip]
listen_udp = "127.0.0.1:0"
listen_tcp = ""
timer_t1_ms = 100
[registrar]
keepalive_interval_secs = 0
nonce_secret = "test-secret"
[media]
port_min = 32000
port_max = 33999
[api]
key = "test-key"
[records]
database = ":memory:"
[shutdown]
grace_secs = 1
[context]
headers = {{ name = "X-Customer-Name", crm_id = "X-CRM-Id", page = "X-Page" }}
screen_pop = "https://crm.example.com/customers/{{crm_id}}"
display_name = "{{name}} (web)"
[[trunks]]
name = "carrier"
proxy = "sip:127.0.0.2:5060"
sources = ["127.0.0.2/32"]
numbers = ["+15550100"]
pass_through_headers = ["X-Account-Id"]
[[queues]]
name = "sales"
[[queues]]
name = "support"
announce_position_secs = 0
{queue_rules}
"#
    );
    for id in agents {
        text.push_str(&format!(
            "[[agents]]\nid = \"{id}\"\npassword = \"pw{id}\"\nqueues = [\"support\", \"sales\"]\n"
        ));
    }
    text.push_str(extra);
    if extra.contains("[records]") {
        text = text.replacen("[records]\ndatabase = \":memory:\"\n", "", 1);
    }
    let cfg = clicktocall::config::Config::from_toml(&text).expect("test config parses");
    cfg.validate().expect("test config is valid");
    cfg
}

/// A customer's phone behind a trunk: plain RTP from `rtp`, sends `hz` once told where (`go`),
/// records what arrives (PCMU), presses keys (RFC 4733, payload type 101) on request.
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
            if let Ok(a) = go_rx.try_recv() {
                to = Some(a);
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
