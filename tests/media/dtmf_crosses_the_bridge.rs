//! Issue 4, acceptance 2 (G.711 leg): DTMF `159#*0` pressed in the browser arrives at the phone as
//! RFC 4733 with the phone's payload type and 8 kHz durations, the phone's digits arrive at the
//! browser, SIP INFO digits reach the browser too, and the controller hears every digit exactly once.
//! Simulated time over an in-memory network.

use crate::common;

use clicktocall::media::browser_leg::AudioCodec;
use clicktocall::media::call_media::{MediaEvent, MediaOutput};
use clicktocall::media::dtmf::{parse_info_body, DtmfEvent, DtmfReceiver};
use clicktocall::media::routes::LegId;
use clicktocall::media::rtp::RtpView;
use clicktocall::media::sdp::Format;
use common::media::{Bridged, PhoneSim, BROWSER_LEG, PHONE_LEG};
use std::time::Duration;

const DIGITS: &str = "159#*0";

#[test]
fn digits_cross_both_ways_and_are_reported_once() {
    // The phone uses payload type 96 for telephone-event: the relay must map to it.
    let media =
        "m=audio 6000 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\n";
    let mut call = Bridged::new(
        &[AudioCodec::Pcmu],
        media,
        &[Format::pcmu(), Format::telephone_event()],
        7,
    );
    assert_eq!(
        call.session
            .rtp_mut(PHONE_LEG)
            .unwrap()
            .negotiated()
            .dtmf
            .as_ref()
            .unwrap()
            .pt,
        96
    );
    let mut phone = PhoneSim::new(0xabc);
    let mut phone_rx = DtmfReceiver::new();
    let (mut phone_digits, mut phone_end_durations, mut events) =
        (String::new(), Vec::new(), Vec::new());
    let silence = vec![0i16; 160];
    let (mut ticks, mut step) = (0u64, 0usize);

    for _ in 0..600 {
        call.exchange(|o| match o {
            MediaOutput::Transmit {
                leg: PHONE_LEG,
                rtcp: false,
                data,
                ..
            } => {
                let p = RtpView::parse(&data).unwrap();
                if p.pt == 96 {
                    phone_digits.extend(phone_rx.handle_packet(p.timestamp, p.payload));
                    let ev = DtmfEvent::parse(p.payload).unwrap();
                    if ev.end {
                        phone_end_durations.push(ev.duration);
                    }
                } else {
                    assert_eq!(p.pt, 0);
                }
            }
            MediaOutput::Event(e) => events.push(e),
            _ => {}
        });
        if call.browser.connected {
            // Browser: a digit every 15 frames (300 ms) for the first 6 digits, else silence.
            let n = step / 15;
            if step % 15 == 0 && n < DIGITS.len() {
                call.browser.send_pcmu_with_dtmf(
                    call.now,
                    ticks,
                    &silence,
                    DIGITS.as_bytes()[n] as char,
                );
            } else {
                call.browser.send_pcmu(call.now, ticks, &silence);
            }
            // Phone: after the browser's digits, presses the same ones (RFC 4733, PT 96).
            if step >= 120 && (step - 120) % 15 == 0 && (step - 120) / 15 < DIGITS.len() {
                phone.press(
                    step,
                    DIGITS.as_bytes()[(step - 120) / 15] as char,
                    96,
                    50_000 + ticks as u32,
                );
            }
            for pkt in phone.due(step) {
                call.phone_sends(&pkt);
            }
            ticks += 160;
            step += 1;
        }
        call.step();
    }

    assert_eq!(phone_digits, DIGITS, "browser -> phone");
    assert!(
        phone_end_durations.iter().all(|d| *d == 800),
        "100 ms at 8 kHz: {phone_end_durations:?}"
    );
    assert_eq!(call.browser.digits, DIGITS, "phone -> browser");
    let reported: Vec<(LegId, char)> = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Digit(s, d) => Some((*s, *d)),
            _ => None,
        })
        .collect();
    let expect: Vec<(LegId, char)> = DIGITS
        .chars()
        .map(|d| (BROWSER_LEG, d))
        .chain(DIGITS.chars().map(|d| (PHONE_LEG, d)))
        .collect();
    assert_eq!(reported, expect, "each digit reported exactly once");
}

#[test]
fn sip_info_digits_reach_the_browser_as_rfc4733() {
    let mut call = Bridged::new(
        &[AudioCodec::Pcmu],
        "m=audio 6000 RTP/AVP 0\r\n",
        &[Format::pcmu()],
        7,
    );
    let bodies = [
        "Signal=4\r\nDuration=160\r\n",
        "Signal=#\r\nDuration=200\r\n",
        "Signal=11\r\nDuration=120\r\n",
    ];
    let (mut ticks, mut sent, mut reported) = (0u64, 0usize, String::new());
    for step in 0..300 {
        call.exchange(|o| {
            if let MediaOutput::Event(MediaEvent::Digit(PHONE_LEG, d)) = o {
                reported.push(d);
            }
        });
        if call.browser.connected {
            call.browser.send_pcmu(call.now, ticks, &[0; 160]);
            ticks += 160;
            if step % 20 == 0 && sent < bodies.len() {
                let digit = parse_info_body("application/dtmf-relay", bodies[sent]).unwrap();
                call.session.handle_info_digit(
                    call.now,
                    PHONE_LEG,
                    digit,
                    Duration::from_millis(160),
                );
                sent += 1;
            }
        }
        call.step();
    }
    assert_eq!(reported, "4##");
    assert_eq!(call.browser.digits, "4##");
}
