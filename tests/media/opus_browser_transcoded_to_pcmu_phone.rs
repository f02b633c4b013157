//! Issue 4, acceptances 1 and 2 on the transcoding path (feature `opus`): a browser talking Opus is
//! bridged to a PCMU phone. The browser's 440 Hz arrives at the phone and the phone's 1000 Hz at the
//! browser, each checked by frequency; DTMF pressed in the browser at telephone-event/48000 arrives at
//! the phone as telephone-event/8000 with the phone's payload type and 8 kHz durations, and the
//! phone's digits reach the browser at telephone-event/48000; each digit is reported once.
#![cfg(feature = "opus")]

use crate::common;

use clicktocall::media::browser_leg::AudioCodec;
use clicktocall::media::call_media::{MediaEvent, MediaOutput};
use clicktocall::media::dtmf::{DtmfEvent, DtmfReceiver};
use clicktocall::media::g711;
use clicktocall::media::rtp::RtpView;
use clicktocall::media::sdp::Format;
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::media::{Bridged, PhoneSim, BROWSER_LEG, PHONE_LEG};

const DIGITS: &str = "159#*0";

#[test]
fn opus_browser_and_pcmu_phone_hear_each_other_and_digits_convert_48k_to_8k() {
    let media = "m=audio 6000 RTP/AVP 0 100\r\na=rtpmap:100 telephone-event/8000\r\n";
    let mut call = Bridged::new(
        &[AudioCodec::Opus],
        media,
        &[Format::pcmu(), Format::telephone_event()],
        3,
    );
    call.browser.opus_decoder = Some(opus::Decoder::new(8000, opus::Channels::Mono).unwrap());
    let mut enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let (mut to_phone_tone, mut phone_tone) = (
        ToneGenerator::new(440.0, 8000, 0.5),
        ToneGenerator::new(1000.0, 8000, 0.5),
    );
    let (mut phone_heard, mut phone_digits, mut durations) =
        (Vec::new(), String::new(), Vec::new());
    let (mut reported, mut reported_sip) = (String::new(), String::new());
    let mut rx = DtmfReceiver::new();
    let mut phone = PhoneSim::new(0x77);
    let (mut ticks, mut step) = (0u64, 0usize);
    for _ in 0..400 {
        call.exchange(|o| match o {
            MediaOutput::Transmit {
                leg: PHONE_LEG,
                rtcp: false,
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
            MediaOutput::Event(MediaEvent::Digit(BROWSER_LEG, d)) => reported.push(d),
            MediaOutput::Event(MediaEvent::Digit(PHONE_LEG, d)) => reported_sip.push(d),
            _ => {}
        });
        if call.browser.connected {
            let digit =
                (step % 15 == 5 && step / 15 < 6).then(|| DIGITS.as_bytes()[step / 15] as char);
            call.browser.send_opus(
                call.now,
                ticks,
                &to_phone_tone.samples(160),
                &mut enc,
                digit,
            );
            let ts = u32::from(phone.seq) * 160;
            let pkt = phone.audio(ts, &phone_tone.samples(160));
            call.phone_sends(&pkt);
            // After the browser's digits, the phone presses the same ones (RFC 4733, PT 100).
            if step >= 120 && (step - 120) % 15 == 0 && (step - 120) / 15 < DIGITS.len() {
                phone.press(step, DIGITS.as_bytes()[(step - 120) / 15] as char, 100, ts);
            }
            for pkt in phone.due(step) {
                call.phone_sends(&pkt);
            }
            ticks += 960;
            step += 1;
        }
        call.step();
    }
    let heard = &call.browser.heard;
    assert!(
        phone_heard.len() > 16000 && heard.len() > 16000,
        "{} / {}",
        phone_heard.len(),
        heard.len()
    );
    assert_eq!(
        dominant_frequency(&phone_heard[phone_heard.len() - 4000..], 8000),
        440.0,
        "browser (Opus) -> phone (PCMU)"
    );
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        1000.0,
        "phone (PCMU) -> browser (Opus)"
    );
    assert_eq!(
        phone_digits, DIGITS,
        "browser (te/48000) -> phone (te/8000)"
    );
    assert_eq!(reported, DIGITS, "each browser digit reported once");
    assert_eq!(
        call.browser.digits, DIGITS,
        "phone (te/8000) -> browser (te/48000)"
    );
    assert_eq!(reported_sip, DIGITS, "each phone digit reported once");
    assert!(
        durations.iter().all(|d| *d == 800),
        "100 ms at 8 kHz, not 4800 at 48 kHz: {durations:?}"
    );
}
