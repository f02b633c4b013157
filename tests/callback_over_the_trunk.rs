//! Call me back, in process: the trunk is a raw SIP peer on 127.0.0.3 that challenges, sends 183
//! with early media (reliably, so the gateway PRACKs), then answers; the customer behind it hears
//! the greeting only after the answer, presses 1 (RFC 4733), and the agent's phone rings with the
//! page's context marked verified. Then the ways a callback fails (busy, no answer, unconfirmed,
//! retries), the toll-fraud guard, the site/origin check, and a scheduled callback that survives a
//! restart.

mod common;

use clicktocall::media::dtmf::DtmfEvent;
use clicktocall::media::rtp;
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use clicktocall::widget::signing;
use common::call::{
    call_config, pcmu_packet, receive_pcmu, response, rms, sdp_addr, AgentPhone, Widget,
};
use common::{header, start, Peer};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);
const ORIGIN: &str = "https://shop.example.com";

fn temp_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("c2c-cb-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("callbacks.db")
}

/// A gateway whose callbacks go through a trunk at `trunk` (digest user acme / trunkpw).
fn config(trunk: SocketAddr, db: &std::path::Path, callback: &str) -> clicktocall::config::Config {
    let extra = format!(
        r#"
[[trunks]]
name = "callbacks"
proxy = "sip:{trunk}"
username = "acme"
password = "trunkpw"
numbers = ["+15550100"]
[callback]
enabled = true
trunk = "callbacks"
database = "{}"
queue = "support"
retries = 0
ring_timeout_secs = 5
confirm_timeout_secs = 2
{callback}
[[sites]]
key = "acme"
origins = ["{ORIGIN}"]
secret = "site-secret"
"#,
        db.display()
    );
    call_config(&["8101"], "", &extra)
}

/// The requests the trunk receives, answered by the test.
struct Trunk {
    peer: Peer,
}

impl Trunk {
    async fn bind() -> Trunk {
        Trunk {
            peer: Peer::bind("127.0.0.3").await,
        }
    }

    /// The next request of `method`, answering anything else that needs it (ACKs are skipped).
    async fn expect(&self, method: &str, wait: Duration) -> Option<(String, SocketAddr)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (n, from) = tokio::time::timeout(left, self.peer.socket.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m.starts_with(&format!("{method} ")) {
                return Some((m, from));
            }
        }
    }

    async fn reply(&self, to: SocketAddr, req: &str, code: u16, extra: &str, sdp: Option<&str>) {
        let contact = format!("Contact: <sip:carrier@{}>\r\n{extra}", self.peer.addr);
        self.peer
            .send(to, response(req, code, &contact, sdp).as_bytes())
            .await;
    }

    /// Answers the first INVITE with a digest challenge and returns the authenticated one,
    /// checking its credentials.
    async fn challenge(&self) -> (String, SocketAddr) {
        let (inv, gw) = self
            .expect("INVITE", WAIT)
            .await
            .expect("the callback INVITE");
        let challenge =
            "WWW-Authenticate: Digest realm=\"carrier\", nonce=\"n0nce1\", qop=\"auth\", algorithm=MD5\r\n";
        self.reply(gw, &inv, 401, challenge, None).await;
        let (inv2, gw) = self
            .expect("INVITE", WAIT)
            .await
            .expect("INVITE with credentials");
        let auth = header(&inv2, "Authorization").expect("Authorization after 401");
        check_digest(auth, "acme", "trunkpw");
        (inv2, gw)
    }
}

/// The Authorization's response must be right for the user's password (RFC 2617, qop=auth).
fn check_digest(auth: &str, user: &str, password: &str) {
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::rsip::headers::auth::{Algorithm, AuthQop};
    let param = |name: &str| {
        auth.split(',')
            .find_map(|p| {
                let (k, v) = p.trim().trim_start_matches("Digest ").split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {auth}"))
    };
    assert_eq!(param("username"), user);
    assert_eq!(param("realm"), "carrier");
    let qop = AuthQop::Auth {
        cnonce: param("cnonce"),
        nc: u8::from_str_radix(&param("nc"), 16).unwrap(),
    };
    let expected = compute_digest(
        user,
        password,
        "carrier",
        "n0nce1",
        &rsipstack::rsip::Method::Invite,
        &param("uri"),
        Algorithm::Md5,
        Some(&qop),
    );
    assert_eq!(param("response"), expected, "digest response for {auth}");
}

fn trunk_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

/// The customer's phone behind the trunk: sends `hz` (after `go`), records what arrives, presses
/// keys on request.
struct Phone {
    heard: Arc<Mutex<Vec<i16>>>,
    keys: mpsc::UnboundedSender<u8>,
    go: mpsc::UnboundedSender<SocketAddr>,
}

fn phone(rtp: UdpSocket, hz: f64) -> Phone {
    let heard = Arc::new(Mutex::new(Vec::<i16>::new()));
    let (keys, mut key_rx) = mpsc::unbounded_channel::<u8>();
    let (go, mut go_rx) = mpsc::unbounded_channel::<SocketAddr>();
    let h = heard.clone();
    tokio::spawn(async move {
        let mut tone = ToneGenerator::new(hz, 8000, 0.4);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut seq, mut buf) = (1u16, vec![0u8; 2048]);
        let mut press: Option<(u8, u32, u16)> = None;
        let mut to: Option<SocketAddr> = None;
        loop {
            tick.tick().await;
            receive_pcmu(&rtp, &mut buf, &h);
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
    Phone { heard, keys, go }
}

fn signed_context() -> Value {
    let mut ctx = json!({"name": "Ann Lee", "crm_id": 4711, "page": "/cart", "c2c_exp": clicktocall::callback::service::unix_now() + 600})
        .as_object()
        .unwrap()
        .clone();
    let sig = signing::sign(&ctx, "site-secret");
    ctx.insert("c2c_sig".into(), Value::String(sig));
    Value::Object(ctx)
}

async fn site_widget(http: SocketAddr) -> Widget {
    Widget::connect_as(http, "?site=acme", Some(ORIGIN))
        .await
        .expect("the site's origin is admitted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_authenticates_ignores_early_media_greets_after_answer_and_reaches_agent() {
    let trunk = Trunk::bind().await;
    let db = temp_db();
    let (gw, sip) = start(config(trunk.peer.addr, &db, "")).await;
    let mut agent = AgentPhone::register(sip, "8101", "pw8101").await;
    let mut widget = site_widget(gw.http_addr).await;
    assert_eq!(widget.hello["callback"], true);

    widget.send(json!({"type": "callback", "v": 1, "number": "(555) 010-2000", "context": signed_context()}));
    let scheduled = widget.wait_for("callback", Some("scheduled"), WAIT).await;
    let id = scheduled["id"].as_str().unwrap().to_string();
    widget.wait_for("callback", Some("dialing"), WAIT).await;

    // 401 → INVITE with credentials; to the E.164 number, from our caller-ID, 100rel offered;
    // nothing of the visitor's context goes to the carrier.
    let (inv, gw_sip) = trunk.challenge().await;
    assert!(
        inv.starts_with("INVITE sip:+15550102000@127.0.0.3"),
        "{inv}"
    );
    assert!(
        header(&inv, "From").unwrap().contains("sip:+15550100@"),
        "{inv}"
    );
    assert!(
        header(&inv, "Supported").is_some_and(|s| s.contains("100rel")),
        "{inv}"
    );
    assert!(
        !inv.contains("Ann Lee") && !inv.contains("4711"),
        "context leaked to the carrier: {inv}"
    );
    let gw_media = sdp_addr(&inv).expect("offer SDP");

    // 183 with early media, reliably: the gateway PRACKs it and sends the customer nothing yet.
    let rtp = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let port = rtp.local_addr().unwrap().port();
    let sdp = trunk_sdp(port);
    trunk
        .reply(
            gw_sip,
            &inv,
            183,
            "Require: 100rel\r\nRSeq: 1\r\n",
            Some(&sdp),
        )
        .await;
    let (prack, _) = trunk
        .expect("PRACK", WAIT)
        .await
        .expect("PRACK for the reliable 183");
    let cseq = header(&inv, "CSeq").unwrap();
    assert_eq!(header(&prack, "RAck"), Some(format!("1 {cseq}").as_str()));
    trunk.reply(gw_sip, &prack, 200, "", None).await;
    widget.wait_for("callback", Some("ringing"), WAIT).await;
    let customer = phone(rtp, 440.0);
    customer.go.send(gw_media).unwrap(); // the carrier's ringback/announcement as early media
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        customer.heard.lock().unwrap().len(),
        0,
        "early media is passed to nobody and nothing is played before the answer"
    );

    // The answer: the greeting plays, then 1 puts the customer into the queue.
    trunk.reply(gw_sip, &inv, 200, "", Some(&sdp)).await;
    trunk.expect("ACK", WAIT).await.expect("ACK for the 200");
    widget.wait_for("callback", Some("in_call"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let greeting = customer.heard.lock().unwrap().clone();
    assert!(
        rms(&greeting) > 300.0,
        "greeting heard after the answer: rms {}",
        rms(&greeting)
    );
    customer.keys.send(1).unwrap();
    widget.wait_for("state", Some("queued"), WAIT).await;
    widget.wait_for("callback", Some("completed"), WAIT).await;

    let ainv = agent
        .recv_request("INVITE", WAIT)
        .await
        .expect("the agent rings");
    assert_eq!(header(&ainv, "X-Customer-Name"), Some("Ann Lee"));
    assert_eq!(header(&ainv, "X-CRM-Id"), Some("4711"));
    assert_eq!(header(&ainv, "X-Context-Verified"), Some("yes"));
    assert_eq!(header(&ainv, "X-Queue"), Some("support"));
    assert!(
        !ainv.contains("127.0.0.3"),
        "the customer's address never reaches the agent"
    );
    let uui =
        clicktocall::widget::context::decode_user_to_user(header(&ainv, "User-to-User").unwrap())
            .unwrap();
    assert_eq!(uui["callback"], id.as_str());
    assert!(uui.get("c2c_sig").is_none());
    agent.answer(&ainv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let heard = customer.heard.lock().unwrap().clone();
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        1000.0
    );
    let ag = agent.heard.lock().unwrap().clone();
    assert_eq!(dominant_frequency(&ag[ag.len() - 4000..], 8000), 440.0);

    // The record says completed after one attempt.
    let rec = gw
        .calls
        .callbacks
        .get()
        .unwrap()
        .store
        .get(&id)
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.state.as_str(), rec.attempts, rec.verified),
        ("completed", 1, true)
    );
    gw.shutdown().await;
}
