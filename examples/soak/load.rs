//! The load: registered agent phones that answer every call and talk back (the tests'
//! `AgentPhone`), and customers (browsers over the widget's WebSocket with a str0m peer, and trunk
//! callers with plain RTP) who pass the IVR, wait in the queue, talk to an agent and hang up.

use crate::common::call::{place_call, Widget};
use crate::common::ears::level;
use crate::common::phones::{rtp_phone, AgentPhone};
use crate::common::{digest_answer, header, register_msg, status, Peer};
use crate::gateway::{agent, NUMBER, TRUNK_IP};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};

/// The agents' tone (the customers listen for it).
const AGENT_HZ: f64 = 1000.0;
/// How long a customer waits to reach an agent.
const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// Agents re-register this often (they register for 600 s).
const REFRESH: Duration = Duration::from_secs(240);

/// What the load did.
#[derive(Default)]
pub struct Stats {
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub agent_calls: AtomicU64,
    /// Failed calls by reason.
    pub failed: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn fail(&self, reason: &str) {
        *self
            .failed
            .lock()
            .unwrap()
            .entry(reason.into())
            .or_default() += 1;
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.lock().unwrap().values().sum()
    }
}

/// Registers agents `0..n` (20 at a time) and starts their phones; they run until the driver ends.
pub async fn start_agents(sip: SocketAddr, n: usize, stats: Arc<Stats>) -> anyhow::Result<()> {
    for batch in (0..n).collect::<Vec<_>>().chunks(20) {
        let mut set = JoinSet::new();
        for &i in batch {
            let (id, pw) = agent(i);
            set.spawn(async move { (AgentPhone::register(sip, &id, &pw).await, pw) });
        }
        while let Some(r) = set.join_next().await {
            let (phone, pw) = r.map_err(|e| anyhow::anyhow!("an agent cannot register: {e}"))?;
            tokio::spawn(agent_loop(phone, pw, stats.clone()));
        }
    }
    Ok(())
}

/// An agent's phone: answers an INVITE when free (486 when in a call), answers the gateway's BYE,
/// refreshes its registration when idle. What it heard is dropped after each call.
async fn agent_loop(mut phone: AgentPhone, password: String, stats: Arc<Stats>) {
    let (gw, call_id) = (
        phone.gateway(),
        format!("reg-{}-{}", phone.user, phone.sip.addr.port()),
    );
    let (mut cseq, mut registered) = (2u32, Instant::now());
    let mut call: Option<String> = None;
    loop {
        let Some(m) = phone.sip.recv(Duration::from_secs(1)).await else {
            if call.is_none() && registered.elapsed() > REFRESH {
                cseq += 1;
                let msg =
                    register_msg(phone.sip.addr, &phone.user, &call_id, cseq, Some(600), None);
                phone.sip.send(gw, msg.as_bytes()).await;
                registered = Instant::now();
            }
            continue;
        };
        let id = header(&m, "Call-ID").unwrap_or_default().to_string();
        let method = m.split(' ').next().unwrap_or_default();
        match method {
            "INVITE" if call.as_deref() == Some(&id) => {} // a retransmission
            "INVITE" if call.is_some() => phone.reply(&m, 486, None).await,
            "INVITE" => {
                phone.answer(&m).await;
                call = Some(id);
            }
            "ACK" => {}
            "BYE" if call.as_deref() == Some(&id) => {
                phone.reply(&m, 200, None).await;
                phone.stop_rtp();
                phone.heard.lock().unwrap().clear();
                phone.received.lock().unwrap().clear();
                call = None;
                stats.agent_calls.fetch_add(1, Ordering::Relaxed);
            }
            "SIP/2.0" if status(&m) == 401 => {
                let Some(challenge) = header(&m, "WWW-Authenticate") else {
                    continue;
                };
                let auth = digest_answer(challenge, &phone.user, &password);
                cseq += 1;
                let addr = phone.sip.addr;
                let msg = register_msg(addr, &phone.user, &call_id, cseq, Some(600), Some(&auth));
                phone.sip.send(gw, msg.as_bytes()).await;
            }
            "SIP/2.0" => {}
            _ => phone.reply(&m, 200, None).await, // OPTIONS, a stray BYE, INFO, ...
        }
    }
}

/// Runs `calls` customer slots until `until`: slot i starts after i/calls of a call's length (so
/// starts spread out), then places call after call (even slots browsers, odd slots trunk
/// callers), each about `call_len` from its start to its hang-up. Returns once every slot's last
/// call has ended.
pub async fn run(
    http: SocketAddr,
    sip: SocketAddr,
    calls: usize,
    call_len: Duration,
    until: Instant,
    stats: Arc<Stats>,
) {
    let mut set = JoinSet::new();
    for slot in 0..calls {
        let stats = stats.clone();
        let delay = call_len.mul_f64(slot as f64 / calls as f64);
        set.spawn(async move {
            sleep(delay).await;
            let mut n = 0u64;
            while Instant::now() < until {
                n += 1;
                // Every fourth caller presses nothing and the menu times out into support.
                let digit = (n % 4 != 0).then_some(if slot % 2 == 0 { '1' } else { '2' });
                let start = Instant::now();
                stats.started.fetch_add(1, Ordering::Relaxed);
                let call = async move {
                    if slot % 2 == 0 {
                        browser_call(http, digit, start + call_len).await
                    } else {
                        trunk_call(sip, digit, start + call_len, slot, n).await
                    }
                };
                // A helper that panics (a timeout in the tests' terms) fails only this call.
                let outcome = tokio::spawn(call).await;
                match outcome {
                    Ok(Ok(())) => {
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(reason)) => stats.fail(reason),
                    Err(e) => stats.fail(&panic_reason(e)),
                }
                if start.elapsed() < Duration::from_secs(1) {
                    sleep(Duration::from_secs(1)).await; // no hot loop when calls fail fast
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// A short name for a panicked call (its message up to the first detail).
fn panic_reason(e: tokio::task::JoinError) -> String {
    let Ok(p) = e.try_into_panic() else {
        return "cancelled".into();
    };
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let short: String = msg
        .split(';')
        .next()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    format!("panic: {short}")
}

/// A browser customer: the widget's `call`, the IVR (its key pressed in the media, RFC 4733),
/// the queue, the agent (whose tone it must hear), then `hangup` at `end`.
async fn browser_call(
    http: SocketAddr,
    digit: Option<char>,
    end: Instant,
) -> Result<(), &'static str> {
    let mut w = Widget::connect(http).await;
    let b = place_call(&mut w, json!({"name": "Soak"}), None).await;
    w.wait_for("state", Some("ivr"), Duration::from_secs(10))
        .await;
    if let Some(d) = digit {
        sleep(Duration::from_millis(500)).await;
        b.press(d);
    }
    w.wait_for("state", Some("connected"), CONNECT_WAIT).await;
    sleep_until_or(end, Duration::from_secs(3)).await;
    let heard = {
        let ears = b.ears.lock().unwrap();
        let tail = ears.heard.len().saturating_sub(4000);
        level(&ears.heard[tail..], AGENT_HZ)
    };
    w.send(json!({"type": "hangup"}));
    w.wait_for("state", Some("ended"), Duration::from_secs(10))
        .await;
    b.stop();
    w.close();
    if heard < 300.0 {
        return Err("browser did not hear the agent");
    }
    Ok(())
}

/// Sleeps until `end`, but at least `min`.
async fn sleep_until_or(end: Instant, min: Duration) {
    tokio::time::sleep_until(end.max(Instant::now() + min)).await;
}

/// A trunk customer (from [`TRUNK_IP`]): INVITE with plain RTP, the IVR (RFC 4733 key), waits
/// until it hears the agent's tone, talks until `end`, then BYE.
async fn trunk_call(
    sip: SocketAddr,
    digit: Option<char>,
    end: Instant,
    slot: usize,
    n: u64,
) -> Result<(), &'static str> {
    let trunk = Peer::bind(TRUNK_IP).await;
    let rtp = UdpSocket::bind((TRUNK_IP, 0)).await.map_err(|_| "bind")?;
    let port = rtp.local_addr().map_err(|_| "bind")?.port();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {TRUNK_IP}\r\ns=-\r\nc=IN IP4 {TRUNK_IP}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    );
    let (me, call_id) = (trunk.addr, format!("soak-{slot}-{n}"));
    let from = format!("<sip:+1555{:07}@{TRUNK_IP}>;tag=c{slot}x{n}", slot);
    let invite = format!(
        "INVITE sip:{NUMBER}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsoak{slot}x{n};rport\r\nFrom: {from}\r\nTo: <sip:{NUMBER}@{sip}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:cust@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    trunk.send(sip, invite.as_bytes()).await;
    let ok = trunk
        .recv_final(Duration::from_secs(10))
        .await
        .ok_or("trunk: no answer")?;
    if status(&ok) != 200 {
        return Err("trunk: refused");
    }
    let to = header(&ok, "To").unwrap_or_default().to_string();
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:clicktocall@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsoak{slot}x{n}{method};rport\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    trunk.send(sip, in_dialog("ACK", 1).as_bytes()).await;
    let media = crate::common::call::sdp_addr(&ok).ok_or("trunk: no SDP")?;
    let phone = rtp_phone(rtp, 440.0);
    let _ = phone.go.send(media);
    if let Some(d) = digit {
        sleep(Duration::from_millis(500)).await;
        let _ = phone.keys.send(d as u8 - b'0');
    }
    let hears_agent = || {
        let h = phone.heard.lock().unwrap();
        level(&h[h.len().saturating_sub(2000)..], AGENT_HZ) > 300.0
    };
    let connected = timeout(CONNECT_WAIT, async {
        while !hears_agent() {
            sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .is_ok();
    if connected {
        sleep_until_or(end, Duration::from_secs(3)).await;
    }
    let talked = connected && hears_agent();
    trunk.send(sip, in_dialog("BYE", 2).as_bytes()).await;
    let bye = trunk.recv_final(Duration::from_secs(10)).await;
    match (connected, talked, bye.map(|r| status(&r))) {
        (false, _, _) => Err("trunk: never heard an agent"),
        (_, false, _) => Err("trunk: agent's audio stopped"),
        (_, _, Some(200)) => Ok(()),
        _ => Err("trunk: BYE not answered 200"),
    }
}
