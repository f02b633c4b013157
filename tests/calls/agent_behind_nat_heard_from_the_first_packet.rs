//! Issue 14, first part (latching that does not clip), in process: an agent's phone behind NAT
//! names 127.0.0.4 in its SDP but registered from, and sends from, 127.0.0.1. The customer hears
//! the agent from its first packets (before, the gateway ignored them for the 2 s grace and the
//! greeting was lost), while a stranger sending 700 Hz from 127.0.0.5 to the same port is never
//! heard.

use crate::common;

use clicktocall::media::tone::{goertzel, ToneGenerator};
use common::call::{call_config, place_call, rms, sdp_addr, Widget};
use common::phones::{pcmu_packet, AgentPhone};
use common::start;
use serde_json::json;
use std::time::Duration;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_hears_a_natted_agent_at_once_and_never_a_stranger() {
    let (gw, sip) = start(call_config(&["9001"], "", "")).await;
    let mut agent = AgentPhone::register(sip, "9001", "pw9001")
        .await
        .with_sdp_ip("127.0.0.4");
    let mut widget = Widget::connect(gw.http_addr).await;
    let browser = place_call(&mut widget, json!({"name": "Nat"}), Some("support")).await;
    let invite = agent.recv_request("INVITE", WAIT).await.expect("rings");
    let gw_media = sdp_addr(&invite).expect("the gateway's offer");

    // A stranger sends 700 Hz to the agent leg's port from before the answer to the end.
    let stranger = UdpSocket::bind("127.0.0.5:0").await.unwrap();
    let noise = tokio::spawn(async move {
        let mut tone = ToneGenerator::new(700.0, 8000, 0.4);
        for seq in 0..200u16 {
            let pkt = pcmu_packet(&tone.samples(160), seq, u32::from(seq) * 160, 0x5eed);
            let _ = stranger.send_to(&pkt, gw_media).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    agent.answer(&invite).await;
    widget.wait_for("state", Some("connected"), WAIT).await;
    let mark = browser.heard_len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let heard = browser.heard_since(mark);
    // The first 0.6 s after the answer (the browser hears 8 kHz): the agent's 1000 Hz is there.
    let first = &heard[..heard.len().min(4800)];
    let (agent_power, stranger_power) =
        (goertzel(first, 1000.0, 8000), goertzel(first, 700.0, 8000));
    assert!(
        rms(first) > 300.0 && agent_power > 1e6,
        "the agent is heard within 0.6 s of answering: rms {}, 1000 Hz {agent_power:.0}",
        rms(first)
    );
    assert!(
        stranger_power < agent_power / 100.0,
        "the stranger is not: {stranger_power:.0}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = browser.heard_since(mark);
    let tail = &later[later.len() - 8000..];
    assert!(goertzel(tail, 700.0, 8000) < goertzel(tail, 1000.0, 8000) / 100.0);
    // The agent hears the customer too: the gateway sends to where its media comes from.
    let agent_heard = agent.heard.lock().unwrap().clone();
    assert!(
        rms(&agent_heard) > 300.0,
        "the agent hears the customer: rms {}",
        rms(&agent_heard)
    );

    noise.abort();
    widget.send(json!({"type": "hangup"}));
    agent.recv_request("BYE", WAIT).await.expect("BYE");
    browser.stop();
    gw.shutdown().await;
}
