//! Issue 4, acceptance 2 (G.711 leg): DTMF `159#*0` pressed in the browser arrives at the phone as
//! RFC 4733 with the phone's payload type and 8 kHz durations, the phone's digits arrive at the
//! browser, SIP INFO digits reach the browser too, and the controller hears every digit exactly once.
//! Simulated time over an in-memory network.

mod common;

use clicktocall::media::browser_leg::{AudioCodec, BrowserLeg};
use clicktocall::media::dtmf::{event_packets, DtmfEvent, DtmfReceiver};
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::rtp_leg::{RtpLeg, RtpLegTimers};
use clicktocall::media::sdp::{read_answer, Format};
use clicktocall::media::session::{MediaEvent, MediaOutput, MediaSession, Side};
use common::browser::TestBrowser;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DIGITS: &str = "159#*0";

#[test]
fn digits_cross_both_ways_and_are_reported_once() {
    let mut now = Instant::now();
    let browser_addr: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let gw_web: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let phone: SocketAddr = "10.0.0.3:6000".parse().unwrap();
    let (mut browser, offer) = TestBrowser::offer(now, browser_addr);
    let (leg, answer) = BrowserLeg::answer(
        now,
        &offer,
        &[(gw_web, gw_web)],
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
    )
    .unwrap();
    browser.accept(&answer);
    // The phone uses payload type 96 for telephone-event: the relay must map to it.
    let phone_answer = "v=0\r\no=- 5 5 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\n";
    let negotiated =
        read_answer(phone_answer, &[Format::pcmu(), Format::telephone_event()]).unwrap();
    assert_eq!(negotiated.dtmf.as_ref().unwrap().pt, 96);
    let mut session = MediaSession::new(
        leg,
        RtpLeg::new(now, negotiated, 7, RtpLegTimers::default()),
    );

    let mut phone_rx = DtmfReceiver::new();
    let (mut phone_digits, mut phone_end_durations) = (String::new(), Vec::new());
    let mut events: Vec<MediaEvent> = Vec::new();
    let silence = vec![0i16; 160];
    let (mut ticks, mut phone_seq, mut step) = (0u64, 1u16, 0usize);
    let mut phone_pending: Vec<(usize, Vec<u8>)> = Vec::new();

    for _ in 0..600 {
        loop {
            match session.poll_output() {
                MediaOutput::Transmit {
                    side: Side::Browser,
                    data,
                    ..
                } => browser.receive(now, gw_web, &data),
                MediaOutput::Transmit {
                    side: Side::Sip,
                    to,
                    data,
                } => {
                    assert_eq!(to, phone);
                    let p = RtpView::parse(&data).unwrap();
                    if p.pt == 96 {
                        if let Some(d) = phone_rx.handle_packet(p.timestamp, p.payload) {
                            phone_digits.push(d);
                        }
                        let ev = DtmfEvent::parse(p.payload).unwrap();
                        if ev.end {
                            phone_end_durations.push(ev.duration);
                        }
                    } else {
                        assert_eq!(p.pt, 0);
                    }
                }
                MediaOutput::Event(e) => events.push(e),
                MediaOutput::Tap { .. }
                | MediaOutput::Transmit {
                    side: Side::SipRtcp,
                    ..
                } => {}
                MediaOutput::Timeout(_) => break,
            }
        }
        for (_, data) in browser.poll() {
            session
                .handle_browser_datagram(now, browser_addr, gw_web, &data)
                .unwrap();
        }
        if browser.connected {
            // Browser: a digit every 15 frames (300 ms) for the first 6 digits, else silence.
            let n = step / 15;
            if step % 15 == 0 && n < DIGITS.len() {
                browser.send_pcmu_with_dtmf(now, ticks, &silence, DIGITS.as_bytes()[n] as char);
            } else {
                browser.send_pcmu(now, ticks, &silence);
            }
            // Phone: after the browser's digits, presses the same digits (RFC 4733, PT 96) plus audio.
            let k = step.checked_sub(120).map(|s| s / 15);
            if let (Some(k), true) = (k, step >= 120 && (step - 120) % 15 == 0) {
                if k < DIGITS.len() {
                    let ev_ts = 50_000 + ticks as u32;
                    for p in event_packets(DIGITS.as_bytes()[k] as char, 100, 20, 8000).unwrap() {
                        let mut pkt = Vec::new();
                        rtp::write(
                            &mut pkt,
                            p.marker,
                            96,
                            phone_seq,
                            ev_ts,
                            0xabc,
                            &p.event.to_bytes(),
                        );
                        phone_seq = phone_seq.wrapping_add(1);
                        phone_pending.push((step + p.offset_ms as usize / 20, pkt));
                    }
                }
            }
            let (due, later): (Vec<_>, Vec<_>) =
                phone_pending.drain(..).partition(|(at, _)| *at <= step);
            phone_pending = later;
            for (_, pkt) in due {
                session.handle_sip_datagram(now, phone, &pkt).unwrap();
            }
            ticks += 160;
            step += 1;
        }
        now += Duration::from_millis(20);
        browser.tick(now);
        session.handle_timeout(now).unwrap();
    }

    assert_eq!(phone_digits, DIGITS, "browser -> phone");
    assert!(
        phone_end_durations.iter().all(|d| *d == 800),
        "100 ms at 8 kHz: {phone_end_durations:?}"
    );
    assert_eq!(browser.digits, DIGITS, "phone -> browser");
    let reported: Vec<(Side, char)> = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Digit(s, d) => Some((*s, *d)),
            _ => None,
        })
        .collect();
    let expect: Vec<(Side, char)> = DIGITS
        .chars()
        .map(|d| (Side::Browser, d))
        .chain(DIGITS.chars().map(|d| (Side::Sip, d)))
        .collect();
    assert_eq!(reported, expect, "each digit reported exactly once");
}

#[test]
fn sip_info_digits_reach_the_browser_as_rfc4733() {
    use clicktocall::media::dtmf::parse_info_body;
    let mut now = Instant::now();
    let browser_addr: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let gw_web: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let (mut browser, offer) = TestBrowser::offer(now, browser_addr);
    let (leg, answer) = BrowserLeg::answer(
        now,
        &offer,
        &[(gw_web, gw_web)],
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
    )
    .unwrap();
    browser.accept(&answer);
    let sdp = "v=0\r\no=- 5 5 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    let negotiated = read_answer(sdp, &[Format::pcmu()]).unwrap();
    let mut session = MediaSession::new(
        leg,
        RtpLeg::new(now, negotiated, 7, RtpLegTimers::default()),
    );
    let bodies = [
        "Signal=4\r\nDuration=160\r\n",
        "Signal=#\r\nDuration=200\r\n",
        "Signal=11\r\nDuration=120\r\n",
    ];
    let (mut ticks, mut sent, mut reported) = (0u64, 0usize, String::new());
    for step in 0..300 {
        loop {
            match session.poll_output() {
                MediaOutput::Transmit {
                    side: Side::Browser,
                    data,
                    ..
                } => browser.receive(now, gw_web, &data),
                MediaOutput::Event(MediaEvent::Digit(Side::Sip, d)) => reported.push(d),
                MediaOutput::Timeout(_) => break,
                _ => {}
            }
        }
        for (_, data) in browser.poll() {
            session
                .handle_browser_datagram(now, browser_addr, gw_web, &data)
                .unwrap();
        }
        if browser.connected {
            browser.send_pcmu(now, ticks, &[0; 160]);
            ticks += 160;
            if step % 20 == 0 && sent < bodies.len() {
                let digit = parse_info_body("application/dtmf-relay", bodies[sent]).unwrap();
                session
                    .handle_sip_info_digit(now, digit, Duration::from_millis(160))
                    .unwrap();
                sent += 1;
            }
        }
        now += Duration::from_millis(20);
        browser.tick(now);
        session.handle_timeout(now).unwrap();
    }
    assert_eq!(reported, "4##");
    assert_eq!(browser.digits, "4##");
}
