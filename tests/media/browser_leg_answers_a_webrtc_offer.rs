//! The browser leg answers a real WebRTC offer (from a str0m peer playing the browser), connects
//! ICE + DTLS-SRTP, and carries audio both ways: the browser's 440 Hz arrives at the gateway and the
//! gateway's 1000 Hz at the browser, each checked by frequency. Runs on simulated time over an
//! in-memory network, so it takes milliseconds.

use crate::common;

use clicktocall::media::browser_leg::{AudioCodec, BrowserEvent, BrowserLeg, BrowserOutput};
use clicktocall::media::g711;
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::browser::TestBrowser;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, RtcConfig};

#[test]
fn audio_flows_both_ways_through_dtls_srtp() {
    let mut now = Instant::now();
    let browser_addr: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let gw_addr: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let (mut browser, offer) = TestBrowser::offer(now, browser_addr);
    assert!(offer.contains("opus") && offer.contains("PCMU"), "{offer}");

    let (mut gw, answer) = BrowserLeg::answer(
        now,
        &offer,
        &[(gw_addr, gw_addr)],
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
    )
    .expect("offer accepted");
    assert_eq!(
        gw.codec(),
        Some(AudioCodec::Pcmu),
        "G.711 preferred: no transcoding toward SIP"
    );
    assert!(answer.contains("a=ice-lite"), "{answer}");
    browser.accept(&answer);

    let mut to_browser = ToneGenerator::new(1000.0, 8000, 0.5);
    let mut from_browser = ToneGenerator::new(440.0, 8000, 0.5);
    let mut gw_heard: Vec<i16> = Vec::new();
    let mut gw_connected = false;
    let mut ticks: u64 = 0;
    for _ in 0..400 {
        loop {
            match gw.poll_output().unwrap() {
                BrowserOutput::Transmit { from, to, data } => {
                    assert_eq!(to, browser_addr);
                    browser.receive(now, from, &data);
                }
                BrowserOutput::Event(BrowserEvent::Connected) => gw_connected = true,
                BrowserOutput::Event(BrowserEvent::Audio { codec, payload, .. }) => {
                    assert_eq!(codec, AudioCodec::Pcmu);
                    g711::decode_ulaw(&payload, &mut gw_heard);
                }
                BrowserOutput::Event(e) => panic!("unexpected {e:?}"),
                BrowserOutput::Timeout(_) => break,
            }
        }
        for (to, data) in browser.poll() {
            gw.handle_receive(now, browser_addr, to, &data).unwrap();
        }
        if browser.connected && gw.is_connected() {
            browser.send_pcmu(now, ticks, &from_browser.samples(160));
            let mut frame = Vec::new();
            g711::encode_ulaw(&to_browser.samples(160), &mut frame);
            gw.send_audio(now, ticks, &frame).unwrap();
            ticks += 160;
        }
        now += Duration::from_millis(20);
        gw.handle_timeout(now).unwrap();
        browser.tick(now);
    }

    assert!(gw_connected, "DTLS connected");
    assert!(
        gw_heard.len() >= 8000,
        "gateway heard {} samples",
        gw_heard.len()
    );
    assert!(
        browser.heard.len() >= 8000,
        "browser heard {} samples",
        browser.heard.len()
    );
    assert_eq!(
        dominant_frequency(&gw_heard[gw_heard.len() - 4000..], 8000),
        440.0
    );
    assert_eq!(
        dominant_frequency(&browser.heard[browser.heard.len() - 4000..], 8000),
        1000.0
    );
}

#[test]
fn bad_offers_are_refused_with_a_reason() {
    let now = Instant::now();
    let gw: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    for bad in [
        "",
        "garbage",
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
    ] {
        assert!(
            BrowserLeg::answer(now, bad, &[(gw, gw)], &[AudioCodec::Pcmu, AudioCodec::Pcma])
                .is_err(),
            "{bad:?}"
        );
    }
    // A video-only offer has no audio for us.
    let mut rtc = RtcConfig::new().build(now);
    rtc.add_local_candidate(Candidate::host("10.0.0.2:5000".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, _) = api.apply().unwrap();
    let err = BrowserLeg::answer(
        now,
        &offer.to_sdp_string(),
        &[(gw, gw)],
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("audio"), "{err}");
}
