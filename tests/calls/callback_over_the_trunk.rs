//! Call me back, in process: the trunk is a raw SIP peer on 127.0.0.3 that challenges, sends 183
//! with early media (reliably, so the gateway PRACKs), then answers; the customer behind it hears
//! the greeting only after the answer, presses 1 (RFC 4733), and the agent's phone rings with the
//! page's context marked verified. Then the ways a callback fails (busy, no answer, unconfirmed,
//! retries), the toll-fraud guard, the site/origin check, and a scheduled callback that survives a
//! restart.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use clicktocall::widget::signing;
use common::call::{call_config, rms, sdp_addr, Widget};
use common::phones::{response, rtp_phone, AgentPhone};
use common::{header, start, Peer};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UdpSocket;

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

    /// The next INVITE to `number` (stale retransmissions of earlier calls are skipped).
    async fn invite_to(&self, number: &str) -> (String, SocketAddr) {
        loop {
            let (m, from) = self.expect("INVITE", WAIT).await.expect("an INVITE");
            if m.starts_with(&format!("INVITE sip:{number}@")) {
                return (m, from);
            }
        }
    }

    /// Answers the first INVITE to `number` with a digest challenge and returns the authenticated
    /// one, checking its credentials.
    async fn challenge(&self, number: &str) -> (String, SocketAddr) {
        let (inv, gw) = self.invite_to(number).await;
        let challenge =
            "WWW-Authenticate: Digest realm=\"carrier\", nonce=\"n0nce1\", qop=\"auth\", algorithm=MD5\r\n";
        self.reply(gw, &inv, 401, challenge, None).await;
        // Retransmissions of the first INVITE (sent before our 401 arrived) are skipped.
        let (inv2, gw) = loop {
            let (m, from) = self.invite_to(number).await;
            if header(&m, "Authorization").is_some() {
                break (m, from);
            }
            self.reply(from, &m, 401, challenge, None).await;
        };
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
    let (inv, gw_sip) = trunk.challenge("+15550102000").await;
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
    let customer = rtp_phone(rtp, 440.0);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_gets_numbers_in_its_own_format_with_its_tech_prefix() {
    // trunks[].dial_format = "national" (NANP here: 1 + area code) and a tech prefix with '#'.
    let trunk = Trunk::bind().await;
    let db = temp_db();
    let mut cfg = config(trunk.peer.addr, &db, "");
    let t = cfg
        .trunks
        .iter_mut()
        .find(|t| t.name == "callbacks")
        .unwrap();
    t.dial_format = clicktocall::callback::number::DialFormat::National;
    t.dial_prefix = "1010#".into();
    let (gw, _sip) = start(cfg).await;
    let mut w = site_widget(gw.http_addr).await;
    w.send(json!({"type": "callback", "v": 1, "number": "(555) 010-7000"}));
    // On the wire '#' is escaped (%23, RFC 3261 §25.1); the digest still checks out.
    let (inv, to) = trunk.challenge("1010%2315550107000").await;
    trunk.reply(to, &inv, 486, "", None).await;
    let failed = w.wait_for("callback", Some("failed"), WAIT).await;
    assert_eq!(failed["reason"], "busy");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_no_answer_unconfirmed_and_retries_reach_the_requester() {
    let trunk = Trunk::bind().await;
    let db = temp_db();
    let cfg = config(
        trunk.peer.addr,
        &db,
        "per_number_per_hour = 10\nper_ip_per_hour = 10\n",
    );
    let mut cfg = cfg;
    cfg.callback.ring_timeout_secs = 1;
    cfg.callback.confirm_timeout_secs = 1;
    let (gw, _sip) = start(cfg).await;
    let mut w = site_widget(gw.http_addr).await;

    // Busy: 486 → failed/busy (no retries configured).
    w.send(json!({"type": "callback", "v": 1, "number": "+1 555 010 3001"}));
    let (inv, to) = trunk.challenge("+15550103001").await;
    trunk.reply(to, &inv, 486, "", None).await;
    let failed = w.wait_for("callback", Some("failed"), WAIT).await;
    assert_eq!(failed["reason"], "busy");

    // No answer: it rings past ring_timeout_secs → CANCEL → failed/no_answer.
    w.send(json!({"type": "callback", "v": 1, "number": "+1 555 010 3002"}));
    let (inv, to) = trunk.challenge("+15550103002").await;
    trunk.reply(to, &inv, 180, "", None).await;
    w.wait_for("callback", Some("ringing"), WAIT).await;
    let (cancel, _) = trunk
        .expect("CANCEL", WAIT)
        .await
        .expect("CANCEL after the ring timeout");
    trunk.reply(to, &cancel, 200, "", None).await;
    trunk.reply(to, &inv, 487, "", None).await;
    let failed = w.wait_for("callback", Some("failed"), WAIT).await;
    assert_eq!(failed["reason"], "no_answer");

    // Unconfirmed: answered (a voicemail), nobody presses 1 → greeting twice, then BYE.
    w.send(json!({"type": "callback", "v": 1, "number": "+1 555 010 3003"}));
    let (inv, to) = trunk.challenge("+15550103003").await;
    let rtp = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let sdp = trunk_sdp(rtp.local_addr().unwrap().port());
    trunk.reply(to, &inv, 200, "", Some(&sdp)).await;
    let voicemail = rtp_phone(rtp, 440.0);
    voicemail.go.send(sdp_addr(&inv).unwrap()).unwrap();
    let (bye, _) = trunk
        .expect("BYE", Duration::from_secs(30))
        .await
        .expect("the gateway hangs up an unconfirmed callback");
    trunk.reply(to, &bye, 200, "", None).await;
    w.wait_for("callback", Some("unconfirmed"), WAIT).await;
    assert!(
        rms(&voicemail.heard.lock().unwrap()) > 300.0,
        "the greeting played"
    );
    gw.shutdown().await;

    // Retries: busy twice with retries = 1 → two INVITEs about retry_delay_secs apart, then failed.
    let trunk = Trunk::bind().await;
    let mut cfg = config(trunk.peer.addr, &db, "");
    cfg.callback.retries = 1;
    cfg.callback.retry_delay_secs = 1;
    let (gw, _sip) = start(cfg).await;
    let mut w = site_widget(gw.http_addr).await;
    w.send(json!({"type": "callback", "v": 1, "number": "+1 555 010 3004"}));
    let (inv, to) = trunk.challenge("+15550103004").await;
    let first = std::time::Instant::now();
    trunk.reply(to, &inv, 486, "", None).await;
    let retry = w.wait_for("callback", Some("scheduled"), WAIT).await;
    let retry = if retry["reason"].is_null() {
        w.wait_for("callback", Some("scheduled"), WAIT).await
    } else {
        retry
    };
    assert_eq!(retry["reason"], "busy");
    let (inv, to) = trunk.challenge("+15550103004").await;
    assert!(
        first.elapsed() >= Duration::from_millis(900),
        "retried after the delay"
    );
    trunk.reply(to, &inv, 486, "", None).await;
    let failed = w.wait_for("callback", Some("failed"), WAIT).await;
    let rec = gw
        .calls
        .callbacks
        .get()
        .unwrap()
        .store
        .get(failed["id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((rec.attempts, rec.reason.as_deref()), (2, Some("busy")));
    assert!(
        trunk
            .expect("INVITE", Duration::from_millis(1500))
            .await
            .is_none(),
        "no third attempt"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_per_ip_limit_counts_visitors_not_the_proxy() {
    // The gateway behind a load balancer at 127.0.0.1 (`http.trusted_proxies`): every socket
    // comes from it, and X-Forwarded-For names the visitor. With one callback per IP an hour, two
    // visitors each get theirs; the first visitor's second request is refused, and a forged
    // left-most entry does not change who the visitor is.
    let trunk = Trunk::bind().await;
    let db = temp_db();
    let mut cfg = config(
        trunk.peer.addr,
        &db,
        "per_ip_per_hour = 1\nper_number_per_hour = 10\n",
    );
    cfg.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let (gw, _sip) = start(cfg).await;
    let visitor = |xff: &'static str| {
        let addr = gw.http_addr;
        async move {
            Widget::connect_with(
                addr,
                "?site=acme",
                &[("origin", ORIGIN), ("x-forwarded-for", xff)],
            )
            .await
            .expect("admitted")
        }
    };
    let mut ann = visitor("198.51.100.4").await;
    ann.send(json!({"type": "callback", "v": 1, "number": "+15550106001"}));
    ann.wait_for("callback", Some("scheduled"), WAIT).await;
    let mut bo = visitor("198.51.100.5").await;
    bo.send(json!({"type": "callback", "v": 1, "number": "+15550106002"}));
    bo.wait_for("callback", Some("scheduled"), WAIT).await;
    let mut ann_again = visitor("203.0.113.99, 198.51.100.4").await;
    ann_again.send(json!({"type": "callback", "v": 1, "number": "+15550106003"}));
    let e = ann_again.wait_for("error", None, WAIT).await;
    assert_eq!(e["code"], "rate_limited", "{e}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toll_fraud_guard_refuses_before_anything_reaches_the_trunk() {
    let trunk = Trunk::bind().await;
    let db = temp_db();
    let cfg = config(
        trunk.peer.addr,
        &db,
        "per_ip_per_hour = 3\nper_number_per_hour = 2\n",
    );
    let (gw, _sip) = start(cfg).await;
    let mut w = site_widget(gw.http_addr).await;

    // 1,000 requests to premium, satellite and foreign numbers (the home country is +1).
    let bad = [
        "+1 900 555 0100",
        "+881 6 555 0101",
        "+44 20 7946 0018",
        "011 870 555 0102",
        "+1 976 555 0103",
    ];
    for i in 0..1000 {
        w.send(json!({"type": "callback", "v": 1, "number": bad[i % bad.len()]}));
    }
    let mut refused = 0;
    while refused < 1000 {
        let m = w.recv(WAIT).await.expect("every request is answered");
        assert_eq!(m["type"], "error", "{m}");
        assert_eq!(m["code"], "number_not_allowed", "{m}");
        refused += 1;
    }
    // Junk is an error too.
    w.send(json!({"type": "callback", "v": 1, "number": "call me now"}));
    assert_eq!(
        w.wait_for("error", None, WAIT).await["code"],
        "invalid_number"
    );

    // Per IP: 3 accepted an hour (scheduled far ahead over the socket is not possible, so these
    // are dialled: the trunk answers busy).
    for n in ["+15550104001", "+15550104002", "+15550104003"] {
        w.send(json!({"type": "callback", "v": 1, "number": n}));
        w.wait_for("callback", Some("scheduled"), WAIT).await;
    }
    w.send(json!({"type": "callback", "v": 1, "number": "+15550104004"}));
    let e = w.wait_for("error", None, WAIT).await;
    assert_eq!(e["code"], "rate_limited");
    assert!(e["message"].as_str().unwrap().contains("ip"), "{e}");

    // Per number (over the API: no IP limit): 2 an hour. A duplicate while open is collapsed.
    let later = clicktocall::callback::service::unix_now() + 3600;
    let body = json!({"number": "+15550105000", "not_before": later}).to_string();
    let (code, first) = common::http(
        gw.http_addr,
        "POST",
        "/api/callbacks",
        Some("test-key"),
        &body,
    )
    .await;
    assert_eq!(code, 201, "{first}");
    let (code, dup) = common::http(
        gw.http_addr,
        "POST",
        "/api/callbacks",
        Some("test-key"),
        &body,
    )
    .await;
    assert_eq!(
        (code, &dup["id"], &dup["duplicate"]),
        (200, &first["id"], &json!(true))
    );
    let path = format!("/api/callbacks/{}", first["id"].as_str().unwrap());
    let (code, cancelled) = common::http(gw.http_addr, "DELETE", &path, Some("test-key"), "").await;
    assert_eq!(
        (code, cancelled["state"].as_str()),
        (200, Some("cancelled"))
    );
    let (code, _) = common::http(
        gw.http_addr,
        "POST",
        "/api/callbacks",
        Some("test-key"),
        &body,
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = common::http(
        gw.http_addr,
        "DELETE",
        "/api/callbacks/nope",
        Some("test-key"),
        "",
    )
    .await;
    assert_eq!(code, 404);
    let (code, _) = common::http(
        gw.http_addr,
        "DELETE",
        &path.replace(
            first["id"].as_str().unwrap(),
            &dup["id"].as_str().unwrap().replace("cb-", "cb-0"),
        ),
        Some("test-key"),
        "",
    )
    .await;
    assert_eq!(code, 404);
    let second = common::http(
        gw.http_addr,
        "GET",
        "/api/callbacks?state=scheduled",
        Some("test-key"),
        "",
    )
    .await
    .1;
    let second_id = second[0]["id"].as_str().unwrap().to_string();
    common::http(
        gw.http_addr,
        "DELETE",
        &format!("/api/callbacks/{second_id}"),
        Some("test-key"),
        "",
    )
    .await;
    let (code, limited) = common::http(
        gw.http_addr,
        "POST",
        "/api/callbacks",
        Some("test-key"),
        &body,
    )
    .await;
    assert_eq!(
        (code, limited["error"].as_str()),
        (429, Some("rate_limited")),
        "{limited}"
    );
    let (code, bad) = common::http(
        gw.http_addr,
        "POST",
        "/api/callbacks",
        Some("test-key"),
        r#"{"number": "+1 900 555 0100"}"#,
    )
    .await;
    assert_eq!(
        (code, bad["error"].as_str()),
        (403, Some("number_not_allowed"))
    );

    // Only the three accepted visitor requests ever reached the trunk (counted by Call-ID: an
    // INVITE nobody answered yet is retransmitted).
    let mut calls = std::collections::BTreeSet::new();
    while let Some((inv, to)) = trunk.expect("INVITE", Duration::from_millis(1500)).await {
        assert!(
            !inv.contains("+1900") && !inv.contains("+881") && !inv.contains("+44"),
            "{inv}"
        );
        trunk.reply(to, &inv, 486, "", None).await;
        calls.insert(header(&inv, "Call-ID").unwrap().to_string());
    }
    let invites = calls.len();
    assert_eq!(invites, 3, "only the three accepted callbacks were dialled");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_origins_and_signed_context() {
    let trunk = Trunk::bind().await;
    let db = temp_db();
    let extra = "[[sites]]\nkey = \"strict\"\norigins = [\"https://bank.example.com\"]\nsecret = \"bank-secret\"\nunsigned = \"refuse\"\n";
    let mut cfg = config(trunk.peer.addr, &db, "");
    let more = clicktocall::config::Config::from_toml(extra).unwrap();
    cfg.sites.extend(more.sites);
    let (gw, sip) = start(cfg).await;
    let http = gw.http_addr;

    // The upgrade: the site's origin only; an unknown key, a foreign origin, no key at all → 403.
    assert_eq!(
        Widget::connect_as(http, "?site=acme", Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        Widget::connect_as(http, "?site=acme", None).await.err(),
        Some(403)
    );
    assert_eq!(
        Widget::connect_as(http, "?site=nope", Some(ORIGIN))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        Widget::connect_as(http, "", Some(ORIGIN)).await.err(),
        Some(403)
    );
    // The gateway's own pages (the demo) need no key.
    let own = format!("http://{http}");
    assert!(Widget::connect_as(http, "", Some(&own)).await.is_ok());

    // A forged CRM id under a valid signature reaches the agent marked unverified.
    let agent = AgentPhone::register(sip, "8101", "pw8101").await;
    let mut w = site_widget(http).await;
    let mut ctx = signed_context();
    ctx["crm_id"] = json!(9999);
    let browser = common::call::place_call(&mut w, ctx, Some("support")).await;
    let inv = agent
        .recv_request("INVITE", WAIT)
        .await
        .expect("the agent rings");
    assert_eq!(header(&inv, "X-Context-Verified"), Some("no"));
    assert_eq!(header(&inv, "X-CRM-Id"), Some("9999"));
    agent.reply(&inv, 486, None).await;
    w.send(json!({"type": "hangup"}));
    browser.stop();

    // An expired signature on a site that refuses unsigned context: refused, nothing rings.
    let mut strict = Widget::connect_as(http, "?site=strict", Some("https://bank.example.com"))
        .await
        .unwrap();
    let mut old = json!({"name": "Ann Lee", "c2c_exp": 1000})
        .as_object()
        .unwrap()
        .clone();
    let sig = signing::sign(&old, "bank-secret");
    old.insert("c2c_sig".into(), Value::String(sig));
    strict.send(json!({"type": "callback", "v": 1, "number": "+15550106000", "context": old}));
    let e = strict.wait_for("error", None, WAIT).await;
    assert_eq!(e["code"], "context_unverified");
    assert!(e["message"].as_str().unwrap().contains("expired"), "{e}");
    assert!(trunk
        .expect("INVITE", Duration::from_millis(500))
        .await
        .is_none());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_callback_survives_a_restart_and_is_placed_at_its_time() {
    let trunk = Trunk::bind().await;
    let db = temp_db();
    let (gw, _sip) = start(config(trunk.peer.addr, &db, "")).await;
    let at = clicktocall::callback::service::unix_now() + 4;
    let body = json!({"number": "+15550107000", "context": {"name": "Bo Park"}, "not_before": at})
        .to_string();
    let (code, cb) = common::http(
        gw.http_addr,
        "POST",
        "/api/callbacks",
        Some("test-key"),
        &body,
    )
    .await;
    assert_eq!(code, 201, "{cb}");
    gw.shutdown().await;

    // A new process on the same database (the same trunk address).
    let (gw, _sip) = start(config(trunk.peer.addr, &db, "")).await;
    let (inv, to) = trunk.challenge("+15550107000").await;
    let now = clicktocall::callback::service::unix_now();
    assert!(now >= at, "placed at its time ({now} >= {at})");
    assert!(inv.starts_with("INVITE sip:+15550107000@"), "{inv}");
    trunk.reply(to, &inv, 486, "", None).await;
    let path = format!("/api/callbacks/{}", cb["id"].as_str().unwrap());
    let mut rec = Value::Null;
    for _ in 0..20 {
        rec = common::http(gw.http_addr, "GET", &path, Some("test-key"), "")
            .await
            .1;
        if rec["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (rec["state"].as_str(), rec["reason"].as_str()),
        (Some("failed"), Some("busy")),
        "{rec}"
    );
    assert_eq!(rec["context"]["name"], "Bo Park");
    gw.shutdown().await;
}
