//! The media shell on real loopback UDP sockets: the engine answers a (str0m) browser on a pooled
//! port, bridges it to a plain RTP phone through one task per call, and each side hears the other's
//! tone; a digit pressed in the browser reaches the controller; `Stop` ends the task and frees ports.

use crate::common;

use clicktocall::media::call_media::MediaEvent;
use clicktocall::media::engine::{MediaCommand, MediaConfig, MediaEngine};
use clicktocall::media::g711;
use clicktocall::media::leg::NewLeg;
use clicktocall::media::routes::LegId;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::rtp_leg::RtpLegTimers;
use clicktocall::media::sdp::{read_answer, Format};
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::browser::TestBrowser;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[tokio::test]
async fn browser_and_phone_hear_each_other_over_udp() {
    let engine = MediaEngine::new(MediaConfig {
        bind_ip: "127.0.0.1".parse().unwrap(),
        advertised_ip: None,
        port_min: 31000,
        port_max: 31100,
    });
    let bsock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (mut browser, offer) = TestBrowser::offer(Instant::now(), bsock.local_addr().unwrap());
    let (leg, web_lease, answer) = engine.answer_browser(Instant::now(), &offer).await.unwrap();
    browser.accept(&answer);

    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sip_lease = engine.lease().await.unwrap();
    let gw_rtp = sip_lease.local;
    let sdp = format!(
        "v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        phone.local_addr().unwrap().port()
    );
    let negotiated = read_answer(&sdp, &[Format::pcmu(), Format::telephone_event()]).unwrap();
    assert_eq!(engine.ports_in_use(), 2);
    let mut media = engine
        .spawn_pair(
            (NewLeg::Browser(Box::new(leg)), web_lease),
            (NewLeg::Rtp(negotiated), sip_lease),
            RtpLegTimers::default(),
        )
        .await;

    let (mut to_phone, mut from_phone) = (
        ToneGenerator::new(440.0, 8000, 0.5),
        ToneGenerator::new(1000.0, 8000, 0.5),
    );
    let mut phone_heard = Vec::new();
    let mut events = Vec::new();
    let (mut ticks, mut seq, mut buf) = (0u64, 1u16, vec![0u8; 2048]);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for step in 0..150 {
        tick.tick().await;
        let now = Instant::now();
        while let Ok((n, from)) = bsock.try_recv_from(&mut buf) {
            browser.receive(now, from, &buf[..n]);
        }
        browser.tick(now);
        for (to, data) in browser.poll() {
            bsock.send_to(&data, to).await.unwrap();
        }
        if browser.connected {
            if step == 100 {
                browser.send_pcmu_with_dtmf(now, ticks, &to_phone.samples(160), '8');
            } else {
                browser.send_pcmu(now, ticks, &to_phone.samples(160));
            }
            ticks += 160;
            let mut payload = Vec::new();
            g711::encode_ulaw(&from_phone.samples(160), &mut payload);
            let mut pkt = Vec::new();
            rtp::write(
                &mut pkt,
                false,
                0,
                seq,
                u32::from(seq) * 160,
                0x99,
                &payload,
            );
            phone.send_to(&pkt, gw_rtp).await.unwrap();
            seq += 1;
        }
        while let Ok((n, _)) = phone.try_recv_from(&mut buf) {
            if let Ok(p) = RtpView::parse(&buf[..n]) {
                if p.pt == 0 {
                    g711::decode_ulaw(p.payload, &mut phone_heard);
                }
            }
        }
        while let Ok(e) = media.events.try_recv() {
            events.push(e);
        }
    }
    assert!(
        phone_heard.len() > 8000,
        "phone heard {}",
        phone_heard.len()
    );
    assert!(
        browser.heard.len() > 8000,
        "browser heard {}",
        browser.heard.len()
    );
    assert_eq!(
        dominant_frequency(&phone_heard[phone_heard.len() - 4000..], 8000),
        440.0
    );
    assert_eq!(
        dominant_frequency(&browser.heard[browser.heard.len() - 4000..], 8000),
        1000.0
    );
    assert!(
        events.contains(&MediaEvent::Flowing(LegId(0))),
        "{events:?}"
    );
    assert!(
        events.contains(&MediaEvent::Flowing(LegId(1))),
        "{events:?}"
    );
    assert!(
        events.contains(&MediaEvent::Digit(LegId(0), '8')),
        "{events:?}"
    );

    media.commands.send(MediaCommand::Stop).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), media.task)
        .await
        .unwrap()
        .unwrap();
    // Both ports are back in the pool.
    assert_eq!(engine.ports_in_use(), 0, "ports were released");
}
