//! The browser leg answers a real WebRTC offer (from a str0m peer playing the browser), connects
//! ICE + DTLS-SRTP, and carries audio both ways: the browser's 440 Hz arrives at the gateway and the
//! gateway's 1000 Hz at the browser, each checked by frequency. Runs on simulated time over an
//! in-memory network, so it takes milliseconds.

use clicktocall::media::browser_leg::{AudioCodec, BrowserEvent, BrowserLeg, BrowserOutput};
use clicktocall::media::g711;
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

struct TestBrowser {
    rtc: Rtc,
    mid: str0m::media::Mid,
    heard: Vec<i16>,
    connected: bool,
}

impl TestBrowser {
    fn new(now: Instant, addr: SocketAddr) -> (Self, str0m::change::SdpPendingOffer, String) {
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        (
            TestBrowser {
                rtc,
                mid,
                heard: Vec::new(),
                connected: false,
            },
            pending,
            offer.to_sdp_string(),
        )
    }
}

#[test]
fn audio_flows_both_ways_through_dtls_srtp() {
    let mut now = Instant::now();
    let browser_addr: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let gw_addr: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let (mut browser, pending, offer) = TestBrowser::new(now, browser_addr);
    assert!(offer.contains("opus") && offer.contains("PCMU"), "{offer}");

    let (mut gw, answer) =
        BrowserLeg::answer(now, &offer, &[(gw_addr, gw_addr)], false).expect("offer accepted");
    assert_eq!(
        gw.codec(),
        Some(AudioCodec::Pcmu),
        "G.711 preferred: no transcoding toward SIP"
    );
    assert!(answer.contains("a=ice-lite"), "{answer}");
    browser
        .rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();

    let mut to_browser = ToneGenerator::new(1000.0, 8000, 0.5);
    let mut from_browser = ToneGenerator::new(440.0, 8000, 0.5);
    let mut gw_heard: Vec<i16> = Vec::new();
    let mut gw_connected_at = None;
    let mut ticks: u64 = 0;
    let pcmu_pt = browser
        .rtc
        .writer(browser.mid)
        .unwrap()
        .payload_params()
        .find(|p| p.spec().codec == str0m::format::Codec::PCMU)
        .unwrap()
        .pt();

    for _ in 0..400 {
        // Gateway leg: drain its output into the browser.
        loop {
            match gw.poll_output().unwrap() {
                BrowserOutput::Transmit { from, to, data } => {
                    assert_eq!(to, browser_addr);
                    browser
                        .rtc
                        .handle_input(Input::Receive(
                            now,
                            Receive {
                                proto: Protocol::Udp,
                                source: from,
                                destination: to,
                                contents: data.as_slice().try_into().unwrap(),
                            },
                        ))
                        .unwrap();
                }
                BrowserOutput::Event(BrowserEvent::Connected) => gw_connected_at = Some(now),
                BrowserOutput::Event(BrowserEvent::Audio { codec, payload, .. }) => {
                    assert_eq!(codec, AudioCodec::Pcmu);
                    g711::decode_ulaw(&payload, &mut gw_heard);
                }
                BrowserOutput::Event(e) => panic!("unexpected {e:?}"),
                BrowserOutput::Timeout(_) => break,
            }
        }
        // Browser: drain its output into the gateway leg.
        loop {
            match browser.rtc.poll_output().unwrap() {
                Output::Transmit(t) => gw
                    .handle_receive(now, t.source, t.destination, &t.contents)
                    .unwrap(),
                Output::Event(Event::Connected) => browser.connected = true,
                Output::Event(Event::MediaData(d)) => {
                    g711::decode_ulaw(&d.data, &mut browser.heard)
                }
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        // 20 ms of audio each way once both ends are up.
        if browser.connected && gw.is_connected() {
            let mut frame = Vec::new();
            g711::encode_ulaw(&from_browser.samples(160), &mut frame);
            browser
                .rtc
                .writer(browser.mid)
                .unwrap()
                .write(
                    pcmu_pt,
                    now,
                    MediaTime::new(ticks, Frequency::EIGHT_KHZ),
                    frame,
                )
                .unwrap();
            let mut frame = Vec::new();
            g711::encode_ulaw(&to_browser.samples(160), &mut frame);
            gw.send_audio(now, ticks, &frame).unwrap();
            ticks += 160;
        }
        now += Duration::from_millis(20);
        gw.handle_timeout(now).unwrap();
        browser.rtc.handle_input(Input::Timeout(now)).unwrap();
    }

    assert!(gw_connected_at.is_some(), "DTLS connected");
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
            BrowserLeg::answer(now, bad, &[(gw, gw)], false).is_err(),
            "{bad:?}"
        );
    }
    // A video-only offer has no audio for us.
    let mut rtc = RtcConfig::new().build(now);
    rtc.add_local_candidate(Candidate::host("10.0.0.2:5000".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, _) = api.apply().unwrap();
    let err = BrowserLeg::answer(now, &offer.to_sdp_string(), &[(gw, gw)], false)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("audio"), "{err}");
}
