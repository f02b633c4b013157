//! End-to-end call harness: the widget's WebSocket (tokio-tungstenite), a browser whose media runs
//! in a background task (str0m, real UDP, 440 Hz tone), the gateway's config and records; the
//! phones (agents speaking raw SIP over UDP, trunk callers' RTP) are in [`super::phones`].

use super::browser::TestBrowser;
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

    /// The last message of `type` seen so far.
    pub fn last(&self, ty: &str) -> Option<&Value> {
        self.log.iter().rev().find(|v| v["type"] == ty)
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
    /// The key presses it received (RFC 4733).
    pub digits: String,
}

/// A browser whose media runs by itself: sends a 440 Hz tone once connected, presses digits on request.
pub struct MediaBrowser {
    pub ears: Arc<Mutex<BrowserEars>>,
    keys: mpsc::UnboundedSender<char>,
    stop: mpsc::UnboundedSender<()>,
    moves: mpsc::UnboundedSender<Move>,
}

/// A network change: the browser's new socket, and where its restart offer goes; then the answer.
enum Move {
    To(UdpSocket, tokio::sync::oneshot::Sender<String>),
    Answer(String),
    /// From now on, one packet in N is never sent (0: none).
    Lose(u32),
    /// A tone of `hz` for `frames` 20 ms frames instead of the 440 Hz; when its first packet went.
    Burst(f64, usize, tokio::sync::oneshot::Sender<Instant>),
    /// Send nothing (true) or the tone again.
    Mute(bool),
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
        let (moves, mut move_rx) = mpsc::unbounded_channel::<Move>();
        let e = ears.clone();
        let mut sock = sock;
        tokio::spawn(async move {
            let mut tone = ToneGenerator::new(440.0, 8000, 0.4);
            let (mut lose, mut sent, mut muted) = (0u32, 0u32, false);
            let mut burst: Option<(
                ToneGenerator,
                usize,
                Option<tokio::sync::oneshot::Sender<Instant>>,
            )> = None;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut ticks, mut buf) = (0u64, vec![0u8; 2048]);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.recv() => break,
                }
                let now = Instant::now();
                while let Ok(m) = move_rx.try_recv() {
                    match m {
                        Move::To(new, offer) => {
                            let _ = offer.send(b.restart_ice(new.local_addr().unwrap()));
                            sock = new;
                        }
                        Move::Answer(a) => b.accept(&a),
                        Move::Lose(n) => lose = n,
                        Move::Mute(m) => muted = m,
                        Move::Burst(hz, frames, when) => {
                            burst = Some((ToneGenerator::new(hz, 8000, 0.4), frames, Some(when)))
                        }
                    }
                }
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
                if ears.digits.len() != b.digits.len() {
                    ears.digits = b.digits.clone();
                }
                if b.connected {
                    let mut samples = tone.samples(160);
                    if let Some((t, left, when)) = burst.as_mut() {
                        samples = t.samples(160);
                        if let Some(w) = when.take() {
                            let _ = w.send(now);
                        }
                        *left -= 1;
                        if *left == 0 {
                            burst = None;
                        }
                    }
                    sent += 1;
                    let lost = lose > 0 && sent % lose == 0;
                    match key_rx.try_recv() {
                        Ok(d) => b.send_pcmu_with_dtmf(now, ticks, &samples, d),
                        Err(_) if lost || muted => {}
                        Err(_) => b.send_pcmu(now, ticks, &samples),
                    }
                    ears.first_sent.get_or_insert(now);
                    ticks += 160;
                }
            }
        });
        MediaBrowser {
            ears,
            keys,
            stop,
            moves,
        }
    }

    /// The browser moves to `sock` (a new network) and restarts ICE: the offer to send.
    pub async fn move_to(&self, sock: UdpSocket) -> String {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.moves.send(Move::To(sock, tx)).unwrap();
        rx.await.unwrap()
    }

    /// From now on the browser loses one packet in `n` (never sends it).
    pub fn lose_every(&self, n: u32) {
        self.moves.send(Move::Lose(n)).unwrap();
    }

    /// The browser sends nothing (`true`: a muted microphone with DTX) or its tone again.
    pub fn mute(&self, on: bool) {
        self.moves.send(Move::Mute(on)).unwrap();
    }

    /// A burst of `hz` for `ms` instead of the 440 Hz: when its first packet was sent.
    pub async fn burst(&self, hz: f64, ms: usize) -> Instant {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.moves.send(Move::Burst(hz, ms / 20, tx)).unwrap();
        rx.await.unwrap()
    }

    /// The gateway's answer to the restart.
    pub fn accept(&self, answer: &str) {
        self.moves.send(Move::Answer(answer.into())).unwrap();
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
