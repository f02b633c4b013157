//! Issue 17, acceptance 1: scoped API keys, table-driven over every route of the REST API. One key
//! per scope; for each route (taken from `clicktocall::http::routes::api_routes`, so a new route
//! cannot be forgotten), every key lacking its scope gets 403, no key and a wrong key 401, and the
//! key with the scope gets 2xx, in a walk through a real call (hold, play, record, supervise,
//! consult, add a party, transfer, hang up), callbacks and the SIP ban list. Every write and every
//! recording download leaves an audit line naming the key.

use crate::common;

use clicktocall::http::keyring::Scope;
use clicktocall::http::routes::api_routes;
use common::call::{call_config, place_call, Widget};
use common::phones::AgentPhone;
use common::{http, http_get_raw, start};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Audit lines, captured from the `clicktocall::audit` tracing target of this test binary.
fn audit() -> Arc<Mutex<Vec<u8>>> {
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let sink = buf.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter("clicktocall::audit=info")
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            buf
        })
        .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn key_name(s: Scope) -> String {
    format!("k-{}", s.as_str().replace(':', "-"))
}

fn key_of(s: Scope) -> String {
    format!("secret-of-{}-0123456789", key_name(s))
}

fn config() -> clicktocall::config::Config {
    let mut extra = String::from(
        "[[agents]]\nid = \"8402\"\npassword = \"pw8402\"\nqueues = [\"sales\"]\n\
         [[agents]]\nid = \"8403\"\npassword = \"pw8403\"\nqueues = [\"sales\"]\n\
         [[supervisors]]\nid = \"9001\"\npassword = \"pw9001\"\nqueues = [\"support\"]\n\
         [sip.flood]\nrate_per_sec = 5\nburst = 20\nban_secs = 120\n\
         [callback]\nenabled = true\ntrunk = \"carrier\"\ndatabase = \":memory:\"\nqueue = \"support\"\n",
    );
    extra.push_str(&format!(
        "[recording]\ndirectory = \"{}\"\n",
        std::env::temp_dir()
            .join(format!("c2c-scopes-{}", std::process::id()))
            .display()
    ));
    for s in Scope::ALL {
        extra.push_str(&format!(
            "[[api.keys]]\nname = \"{}\"\nkey = \"{}\"\nscopes = [\"{}\"]\n",
            key_name(s),
            key_of(s),
            s.as_str()
        ));
    }
    call_config(&["8401"], "record = \"on_demand\"\n", &extra)
}

/// One step of the walk: the route it exercises and the concrete request.
struct Step {
    method: &'static str,
    pattern: &'static str,
    path: String,
    body: String,
}

fn step(method: &'static str, pattern: &'static str, path: String, body: &str) -> Step {
    Step {
        method,
        pattern,
        path,
        body: body.to_string(),
    }
}

/// One request; a recording's download is binary, so it goes through the raw helper.
async fn send(addr: SocketAddr, s: &Step, key: Option<&str>) -> (u16, Value) {
    if s.method == "GET" && s.path.ends_with("/recording") {
        let (code, _, body) = http_get_raw(addr, &s.path, key.unwrap_or(""), "").await;
        return (code, serde_json::from_slice(&body).unwrap_or(Value::Null));
    }
    http(addr, s.method, &s.path, key, &s.body).await
}

/// Every key but the one with `scope` (and the admin ones) is refused; so are none and a wrong one.
async fn refused_without_the_scope(addr: SocketAddr, s: &Step, scope: Scope) {
    for other in Scope::ALL {
        if other == scope || other == Scope::Admin {
            continue;
        }
        let (code, body) = send(addr, s, Some(&key_of(other))).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (403, Some("forbidden")),
            "{} {} with {}: {body}",
            s.method,
            s.path,
            key_name(other)
        );
    }
    for wrong in [None, Some("secret-of-nobody-0123456789")] {
        let (code, _) = send(addr, s, wrong).await;
        assert_eq!(code, 401, "{} {} with {wrong:?}", s.method, s.path);
    }
}

/// The step with the right key: 2xx (retried a little for what settles asynchronously).
async fn allowed_with_the_scope(addr: SocketAddr, s: &Step, scope: Scope) -> Value {
    let key = key_of(scope);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, body) = send(addr, s, Some(&key)).await;
        if (200..300).contains(&code) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} {} {} with {}: {code} {body}",
            s.method,
            s.path,
            s.body,
            key_name(scope)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `s`: refused without its scope, served with it, audited when it writes.
async fn run(
    addr: SocketAddr,
    s: Step,
    done: &mut BTreeSet<(&'static str, &'static str)>,
) -> Value {
    let route = api_routes()
        .into_iter()
        .find(|r| r.method == s.method && r.path == s.pattern)
        .unwrap_or_else(|| panic!("{} {} is no API route", s.method, s.pattern));
    refused_without_the_scope(addr, &s, route.scope).await;
    let body = allowed_with_the_scope(addr, &s, route.scope).await;
    if s.method != "GET" || route.scope == Scope::RecordingsRead {
        let lines = String::from_utf8_lossy(&audit().lock().unwrap()).to_string();
        let wanted = format!(
            "key={} method={} path={}",
            key_name(route.scope),
            s.method,
            s.path
        );
        assert!(
            lines.lines().any(|l| l.contains(&wanted)),
            "an audit line with {wanted:?} in:\n{lines}"
        );
    }
    done.insert((s.method, s.pattern));
    body
}

/// Floods the gateway with OPTIONS from 127.0.0.9 until it stops answering: banned.
async fn get_banned(sip: SocketAddr) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.9:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    for i in 0..100 {
        let msg = format!(
            "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKflood{i}\r\n\
             From: <sip:scan@{me}>;tag=f{i}\r\nTo: <sip:{sip}>\r\nCall-ID: flood-{i}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        sock.send_to(msg.as_bytes(), sip).await.unwrap();
    }
    let mut buf = vec![0u8; 4096];
    let mut answered = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
    {
        answered += 1;
    }
    assert_eq!(answered, 20, "the burst is answered, then nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_its_scope_and_every_write_is_audited() {
    audit();
    let (gw, sip) = start(config()).await;
    let addr = gw.http_addr;
    let mut agent = AgentPhone::register(sip, "8401", "pw8401").await;
    let mut other = AgentPhone::register(sip, "8402", "pw8402").await;
    let _away = AgentPhone::register(sip, "8403", "pw8403").await;
    let mut sup = AgentPhone::register(sip, "9001", "pw9001").await;
    get_banned(sip).await;
    let mut widget = Widget::connect(addr).await;
    let _browser = place_call(&mut widget, json!({"name": "Ada"}), Some("support")).await;
    let inv = agent.recv_request("INVITE", WAIT).await.expect("rings");
    agent.answer(&inv).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let (_, calls) = http(addr, "GET", "/api/calls", Some("test-key"), "").await;
    let id = calls[0]["id"].as_u64().expect("a call");
    let call = |rest: &str| format!("/api/calls/{id}{rest}");
    let mut done = BTreeSet::new();
    let d = &mut done;

    for (p, path) in [
        ("/api/agents", "/api/agents"),
        ("/api/queues", "/api/queues"),
    ] {
        run(addr, step("GET", p, path.into(), ""), d).await;
    }
    run(addr, step("GET", "/api/calls", "/api/calls".into(), ""), d).await;
    run(addr, step("GET", "/api/calls/{id}", call(""), ""), d).await;
    let away = r#"{"state":"away"}"#;
    let state = "/api/agents/{id}/state";
    run(
        addr,
        step("PUT", state, "/api/agents/8403/state".into(), away),
        d,
    )
    .await;
    for action in ["hold", "unhold"] {
        let pattern = if action == "hold" {
            "/api/calls/{id}/hold"
        } else {
            "/api/calls/{id}/unhold"
        };
        run(
            addr,
            step("POST", pattern, call(&format!("/{action}")), ""),
            d,
        )
        .await;
    }
    let play = r#"{"prompt":"goodbye"}"#;
    run(
        addr,
        step("POST", "/api/calls/{id}/play", call("/play"), play),
        d,
    )
    .await;
    let rec = "/api/calls/{id}/recording";
    run(
        addr,
        step("POST", rec, call("/recording"), r#"{"action":"start"}"#),
        d,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    run(
        addr,
        step("POST", rec, call("/recording"), r#"{"action":"stop"}"#),
        d,
    )
    .await;
    run(addr, step("GET", rec, call("/recording"), ""), d).await;

    let sv = "/api/calls/{id}/supervise";
    let monitor = r#"{"supervisor":"9001","mode":"monitor"}"#;
    run(addr, step("POST", sv, call("/supervise"), monitor), d).await;
    let sinv = sup.recv_request("INVITE", WAIT).await.expect("sup rings");
    sup.answer(&sinv).await;
    let whisper = r#"{"supervisor":"9001","mode":"whisper"}"#;
    run(addr, step("PUT", sv, call("/supervise"), whisper), d).await;
    let party = "/api/calls/{id}/parties/{party}";
    run(addr, step("DELETE", party, call("/parties/9001"), ""), d).await;

    let consult = r#"{"agent":"8402"}"#;
    run(
        addr,
        step("POST", "/api/calls/{id}/consult", call("/consult"), consult),
        d,
    )
    .await;
    let cinv = other
        .recv_request("INVITE", WAIT)
        .await
        .expect("8402 rings");
    other.answer(&cinv).await;
    let action = "/api/calls/{id}/consult/{action}";
    run(addr, step("POST", action, call("/consult/cancel"), ""), d).await;
    other
        .recv_request("BYE", WAIT)
        .await
        .expect("the consult ends");

    run(
        addr,
        step("POST", "/api/calls/{id}/parties", call("/parties"), consult),
        d,
    )
    .await;
    run(addr, step("DELETE", party, call("/parties/8402"), ""), d).await;
    let to_sales = r#"{"queue":"sales"}"#;
    run(
        addr,
        step(
            "POST",
            "/api/calls/{id}/transfer",
            call("/transfer"),
            to_sales,
        ),
        d,
    )
    .await;
    run(
        addr,
        step("POST", "/api/calls/{id}/hangup", call("/hangup"), ""),
        d,
    )
    .await;
    widget.wait_for("state", Some("ended"), WAIT).await;
    run(addr, step("GET", "/api/cdrs", "/api/cdrs".into(), ""), d).await;

    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let cb = json!({"number": "+15557654321", "not_before": later}).to_string();
    let created = run(
        addr,
        step("POST", "/api/callbacks", "/api/callbacks".into(), &cb),
        d,
    )
    .await;
    let cb_id = created["id"].as_str().expect("a callback id").to_string();
    run(
        addr,
        step("GET", "/api/callbacks", "/api/callbacks".into(), ""),
        d,
    )
    .await;
    let one = format!("/api/callbacks/{cb_id}");
    run(addr, step("GET", "/api/callbacks/{id}", one.clone(), ""), d).await;
    run(addr, step("DELETE", "/api/callbacks/{id}", one, ""), d).await;

    let bans = run(addr, step("GET", "/api/bans", "/api/bans".into(), ""), d).await;
    assert_eq!(bans[0]["ip"], "127.0.0.9", "{bans}");
    assert_eq!(bans[0]["reason"], "flood", "{bans}");
    run(
        addr,
        step("DELETE", "/api/bans/{ip}", "/api/bans/127.0.0.9".into(), ""),
        d,
    )
    .await;

    // Lifting a ban that is not there, or of something that is no address.
    let admin = Some("test-key");
    let (code, body) = http(addr, "DELETE", "/api/bans/127.0.0.9", admin, "").await;
    assert_eq!((code, body["error"].as_str()), (404, Some("not_banned")));
    let (code, body) = http(addr, "DELETE", "/api/bans/not-an-ip", admin, "").await;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_address")));
    let (_, bans) = http(addr, "GET", "/api/bans", admin, "").await;
    assert_eq!(bans, json!([]), "the lifted ban is gone");

    let all: BTreeSet<_> = api_routes().iter().map(|r| (r.method, r.path)).collect();
    let missed: Vec<_> = all.difference(&done).collect();
    assert!(
        missed.is_empty(),
        "routes the walk did not cover: {missed:?}"
    );
    // The old single key is admin: it may still do everything.
    let (code, _) = http(addr, "GET", "/api/bans", Some("test-key"), "").await;
    assert_eq!(code, 200);
}
