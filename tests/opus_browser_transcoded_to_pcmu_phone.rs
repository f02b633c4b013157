//! Issue 4, acceptances 1 and 2 on the transcoding path (feature `opus`): a browser talking Opus is
//! bridged to a PCMU phone. The browser's 440 Hz arrives at the phone and the phone's 1000 Hz at the
//! browser, each checked by frequency; DTMF pressed in the browser at telephone-event/48000 arrives at
//! the phone as telephone-event/8000 with the phone's payload type and 8 kHz durations, and the
//! phone's digits reach the browser at telephone-event/48000; each digit is reported once.
#![cfg(feature = "opus")]

mod common;

use clicktocall::media::browser_leg::{AudioCodec, BrowserLeg};
use clicktocall::media::dtmf::{event_packets, DtmfEvent, DtmfReceiver};
use clicktocall::media::g711;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::rtp_leg::{RtpLeg, RtpLegTimers};
use clicktocall::media::sdp::{read_answer, Format};
use clicktocall::media::session::{MediaEvent, MediaOutput, MediaSession, Side};
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::browser::TestBrowser;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DIGITS: &str = "159#*0";

#[test]
fn opus_browser_and_pcmu_phone_hear_each_other_and_digits_convert_48k_to_8k() {
    let mut now = Instant::now();
    let browser_addr: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let gw_web: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let phone: SocketAddr = "10.0.0.3:6000".parse().unwrap();
    let (mut browser, offer) = TestBrowser::offer(now, browser_addr);
    browser.opus_decoder = Some(opus::Decoder::new(8000, opus::Channels::Mono).unwrap());
    let (leg, answer) =
        BrowserLeg::answer(now, &offer, &[(gw_web, gw_web)], &[AudioCodec::Opus]).unwrap();
    assert_eq!(leg.codec(), Some(AudioCodec::Opus));
    browser.accept(&answer);
    let sdp = "v=0\r\no=- 5 5 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 0 100\r\na=rtpmap:100 telephone-event/8000\r\n";
    let negotiated = read_answer(sdp, &[Format::pcmu(), Format::telephone_event()]).unwrap();
    let mut session = MediaSession::new(
        leg,
        RtpLeg::new(now, negotiated, 3, RtpLegTimers::default()),
    );

    let mut enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let (mut to_phone_tone, mut phone_tone) = (
        ToneGenerator::new(440.0, 8000, 0.5),
        ToneGenerator::new(1000.0, 8000, 0.5),
    );
    let (mut phone_heard, mut phone_digits, mut durations) =
        (Vec::new(), String::new(), Vec::new());
    let mut rx = DtmfReceiver::new();
    let (mut reported, mut reported_sip) = (String::new(), String::new());
    let mut phone_pending: Vec<(usize, Vec<u8>)> = Vec::new();
    let (mut ticks, mut seq, mut step) = (0u64, 1u16, 0usize);
    for _ in 0..400 {
        loop {
            match session.poll_output() {
                MediaOutput::Transmit {
                    side: Side::Browser,
                    data,
                    ..
                } => browser.receive(now, gw_web, &data),
                MediaOutput::Transmit {
                    side: Side::Sip,
                    data,
                    ..
                } => {
                    let p = RtpView::parse(&data).unwrap();
                    match p.pt {
                        0 => g711::decode_ulaw(p.payload, &mut phone_heard),
                        100 => {
                            phone_digits.extend(rx.handle_packet(p.timestamp, p.payload));
                            let ev = DtmfEvent::parse(p.payload).unwrap();
                            if ev.end {
                                durations.push(ev.duration);
                            }
                        }
                        other => panic!("unexpected payload type {other}"),
                    }
                }
                MediaOutput::Event(MediaEvent::Digit(Side::Browser, d)) => reported.push(d),
                MediaOutput::Event(MediaEvent::Digit(Side::Sip, d)) => reported_sip.push(d),
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
            let digit =
                (step % 15 == 5 && step / 15 < 6).then(|| DIGITS.as_bytes()[step / 15] as char);
            browser.send_opus(now, ticks, &to_phone_tone.samples(160), &mut enc, digit);
            let mut payload = Vec::new();
            g711::encode_ulaw(&phone_tone.samples(160), &mut payload);
            let mut pkt = Vec::new();
            rtp::write(
                &mut pkt,
                false,
                0,
                seq,
                u32::from(seq) * 160,
                0x77,
                &payload,
            );
            session.handle_sip_datagram(now, phone, &pkt).unwrap();
            seq += 1;
            // After the browser's digits, the phone presses the same ones (RFC 4733, PT 100).
            if step >= 120 && (step - 120) % 15 == 0 && (step - 120) / 15 < DIGITS.len() {
                let d = DIGITS.as_bytes()[(step - 120) / 15] as char;
                let ev_ts = u32::from(seq) * 160;
                for p in event_packets(d, 100, 20, 8000).unwrap() {
                    let mut pkt = Vec::new();
                    rtp::write(
                        &mut pkt,
                        p.marker,
                        100,
                        seq,
                        ev_ts,
                        0x77,
                        &p.event.to_bytes(),
                    );
                    seq += 1;
                    phone_pending.push((step + p.offset_ms as usize / 20, pkt));
                }
            }
            let (due, later): (Vec<_>, Vec<_>) =
                phone_pending.drain(..).partition(|(at, _)| *at <= step);
            phone_pending = later;
            for (_, pkt) in due {
                session.handle_sip_datagram(now, phone, &pkt).unwrap();
            }
            ticks += 960;
            step += 1;
        }
        now += Duration::from_millis(20);
        browser.tick(now);
        session.handle_timeout(now).unwrap();
    }
    assert!(
        phone_heard.len() > 16000 && browser.heard.len() > 16000,
        "{} / {}",
        phone_heard.len(),
        browser.heard.len()
    );
    assert_eq!(
        dominant_frequency(&phone_heard[phone_heard.len() - 4000..], 8000),
        440.0,
        "browser (Opus) -> phone (PCMU)"
    );
    assert_eq!(
        dominant_frequency(&browser.heard[browser.heard.len() - 4000..], 8000),
        1000.0,
        "phone (PCMU) -> browser (Opus)"
    );
    assert_eq!(
        phone_digits, DIGITS,
        "browser (te/48000) -> phone (te/8000)"
    );
    assert_eq!(reported, DIGITS, "each browser digit reported once");
    assert_eq!(
        browser.digits, DIGITS,
        "phone (te/8000) -> browser (te/48000)"
    );
    assert_eq!(reported_sip, DIGITS, "each phone digit reported once");
    assert!(
        durations.iter().all(|d| *d == 800),
        "100 ms at 8 kHz, not 4800 at 48 kHz: {durations:?}"
    );
}
