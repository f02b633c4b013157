//! Acceptance 1 and 3 of call control, in process: a browser (str0m over real UDP, via the `/ws`
//! widget protocol) hears the IVR prompt only after its media flows, presses 2, waits in "support",
//! and the registered agent's phone receives an INVITE carrying the context (X- headers, RFC 7433
//! User-to-User, Call-Info, From display name); after the answer each side hears the other's tone.
//! The agent hangs up: the widget sees `ended` with reason `agent_hangup`.

use crate::common;

use clicktocall::media::tone::dominant_frequency;
use clicktocall::widget::context::decode_user_to_user;
use common::call::{call_config, place_call, rms, Widget};
use common::phones::AgentPhone;
use common::{header, start};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_ivr_queue_agent_with_context_and_two_way_audio() {
    let rules = "headers = { \"X-Queue-Priority\" = \"gold\" }\n";
    let (gw, sip) = start(call_config(&["1001"], rules, "")).await;
    let mut agent = AgentPhone::register(sip, "1001", "pw1001").await;
    let mut widget = Widget::connect(gw.http_addr).await;
    let context = json!({"name": "Ann Lee", "crm_id": 4711, "page": "/cart", "cart": "2 items"});
    let browser = place_call(&mut widget, context.clone(), None).await;
    widget
        .wait_for("state", Some("ivr"), Duration::from_secs(2))
        .await;

    // The welcome prompt is heard, and only after the browser's media flows.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (sound, sent) = {
            let e = browser.ears.lock().unwrap();
            (e.first_sound, e.first_sent)
        };
        if let Some(sound) = sound {
            let sent = sent.expect("browser sent media before hearing anything");
            assert!(sound >= sent, "a prompt arrived before media flowed");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no prompt heard");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let prompt = browser.heard_since(0);
    assert!(rms(&prompt) > 500.0, "prompt level {}", rms(&prompt));

    browser.press('2');
    widget
        .wait_for("state", Some("queued"), Duration::from_secs(3))
        .await;
    let invite = agent
        .recv_request("INVITE", Duration::from_secs(5))
        .await
        .expect("the agent's phone rings");
    widget
        .wait_for("state", Some("ringing"), Duration::from_secs(2))
        .await;

    assert_eq!(header(&invite, "X-Customer-Name"), Some("Ann Lee"));
    assert_eq!(header(&invite, "X-CRM-Id"), Some("4711"));
    assert_eq!(header(&invite, "X-Page"), Some("/cart"));
    assert_eq!(header(&invite, "X-Queue"), Some("support"));
    assert_eq!(
        header(&invite, "X-Queue-Priority"),
        Some("gold"),
        "per-queue header"
    );
    assert_eq!(
        header(&invite, "Call-Info"),
        Some("<https://crm.example.com/customers/4711>;purpose=info")
    );
    let uui = header(&invite, "User-to-User").expect("User-to-User header");
    assert!(uui.ends_with(";encoding=hex"), "{uui}");
    let decoded = decode_user_to_user(uui).expect("hex JSON");
    assert_eq!(serde_json::Value::Object(decoded), context);
    let from = header(&invite, "From").unwrap();
    assert!(from.starts_with("\"Ann Lee (web)\""), "{from}");
    assert!(
        from.contains("sip:clicktocall@127.0.0.1"),
        "the gateway is the caller: {from}"
    );

    agent.answer(&invite).await;
    widget
        .wait_for("state", Some("connected"), Duration::from_secs(3))
        .await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let heard = browser.heard_since(mark);
    assert!(heard.len() > 8000, "browser heard {} samples", heard.len());
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        1000.0
    );
    let agent_heard = agent.heard.lock().unwrap().clone();
    assert!(
        agent_heard.len() > 8000,
        "agent heard {}",
        agent_heard.len()
    );
    assert_eq!(
        dominant_frequency(&agent_heard[agent_heard.len() - 4000..], 8000),
        440.0
    );

    // The agent hangs up: the customer's call ends with reason agent_hangup.
    agent.in_dialog(&invite, "BYE", "", "").await;
    let ended = widget
        .wait_for("state", Some("ended"), Duration::from_secs(3))
        .await;
    assert_eq!(ended["reason"], "agent_hangup");
    browser.stop();
    gw.shutdown().await;
}

/// The widget's first message gives its browser STUN and TURN servers from `[ice]`; the TURN
/// credentials are per session, time-limited, and check out against the shared secret the way
/// coturn checks them (`use-auth-secret`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_gives_stun_and_time_limited_turn_credentials() {
    let extra = "[ice]\nstun = [\"stun:stun.example.com:3478\"]\n\
                 turn = [\"turn:turn.example.com:3478?transport=udp\"]\n\
                 turn_secret = \"north-secret\"\nturn_ttl_secs = 600\n";
    let (gw, _sip) = start(call_config(&[], "", extra)).await;
    let a = Widget::connect(gw.http_addr).await;
    let b = Widget::connect(gw.http_addr).await;
    let servers = a.hello["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(a.hello["v"], 1);
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0], json!({"urls": ["stun:stun.example.com:3478"]}));
    assert_eq!(
        servers[1]["urls"],
        json!(["turn:turn.example.com:3478?transport=udp"])
    );
    let user = servers[1]["username"].as_str().unwrap();
    let (expiry, label) = user.split_once(':').unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (now + 590..=now + 610).contains(&expiry),
        "expiry {expiry}, now {now}"
    );
    let (_, expected) =
        clicktocall::widget::ice::turn_credentials("north-secret", label, expiry - 600, 600);
    assert_eq!(servers[1]["credential"], expected.as_str());
    // Each session has its own username.
    assert_ne!(
        b.hello["ice_servers"][1]["username"],
        servers[1]["username"]
    );
    gw.shutdown().await;
}
