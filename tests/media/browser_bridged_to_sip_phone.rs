//! Issue 4, acceptance 1 (G.711 passthrough) in-process: a str0m browser and a plain RTP phone are
//! bridged through the gateway's media session. The browser's 440 Hz tone arrives at the phone, the
//! phone's 1000 Hz tone arrives at the browser (each checked by frequency), what the phone receives
//! is one SSRC with continuous sequence numbers and forward-moving timestamps, the phone gets an RTCP
//! sender report about its stream, and the recording tap carries both voices.
//! Simulated time over an in-memory network.

use crate::common;

use clicktocall::media::browser_leg::AudioCodec;
use clicktocall::media::call_media::{MediaEvent, MediaOutput};
use clicktocall::media::g711;
use clicktocall::media::rtcp;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::sdp::{Direction, Format, SdpSession};
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::media::{Bridged, BROWSER_LEG, PHONE_LEG};

#[test]
fn tones_cross_the_bridge_both_ways_with_pcmu_passthrough() {
    // The gateway offers PCMU + PCMA + telephone-event to the phone; the phone answers PCMU.
    let gw_offer = SdpSession::new(1).offer(
        "10.0.0.1:30000".parse().unwrap(),
        &[Format::pcmu(), Format::pcma()],
        true,
        20,
        Direction::SendRecv,
    );
    assert!(
        gw_offer.contains("m=audio 30000 RTP/AVP 0 8 101"),
        "{gw_offer}"
    );
    let phone_media = "m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
    let offered = [Format::pcmu(), Format::pcma(), Format::telephone_event()];
    let mut call = Bridged::new(
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
        phone_media,
        &offered,
        0x1234_5678,
    );
    call.session.set_tap(true);

    let (mut phone_tone, mut browser_tone) = (
        ToneGenerator::new(1000.0, 8000, 0.5),
        ToneGenerator::new(440.0, 8000, 0.5),
    );
    let (mut phone_heard, mut phone_packets, mut events) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tap_customer, mut tap_agent, mut rtcp_reports) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ticks, mut phone_seq) = (0u64, 100u16);
    let phone = call.phone;

    for _ in 0..300 {
        call.exchange(|o| match o {
            MediaOutput::Transmit {
                leg: PHONE_LEG,
                rtcp: false,
                to,
                data,
            } => {
                assert_eq!(to, phone);
                let p = RtpView::parse(&data).unwrap();
                assert_eq!(p.pt, 0);
                phone_packets.push((p.seq, p.timestamp, p.ssrc));
                g711::decode_ulaw(p.payload, &mut phone_heard);
            }
            MediaOutput::Transmit {
                leg: PHONE_LEG,
                rtcp: true,
                to,
                data,
            } => {
                assert_eq!(
                    to,
                    "10.0.0.3:6001".parse().unwrap(),
                    "RTCP to the RTP port + 1"
                );
                rtcp_reports.extend(rtcp::parse(&data));
            }
            MediaOutput::Tap {
                from: BROWSER_LEG,
                pcm,
                ..
            } => tap_customer.extend(pcm),
            MediaOutput::Tap { from: _, pcm, .. } => tap_agent.extend(pcm),
            MediaOutput::Event(e) => events.push(e),
            other => panic!("unexpected {other:?}"),
        });
        if call.browser.connected {
            call.browser
                .send_pcmu(call.now, ticks, &browser_tone.samples(160));
            // The phone talks too (from the address in its SDP).
            let mut payload = Vec::new();
            g711::encode_ulaw(&phone_tone.samples(160), &mut payload);
            let mut pkt = Vec::new();
            rtp::write(
                &mut pkt,
                false,
                0,
                phone_seq,
                8000 + ticks as u32,
                0xabcd,
                &payload,
            );
            call.phone_sends(&pkt);
            phone_seq = phone_seq.wrapping_add(1);
            ticks += 160;
        }
        call.step();
    }

    assert!(
        events.contains(&MediaEvent::Flowing(BROWSER_LEG)),
        "{events:?}"
    );
    assert!(
        events.contains(&MediaEvent::Flowing(PHONE_LEG)),
        "{events:?}"
    );
    let heard = &call.browser.heard;
    assert!(
        phone_heard.len() >= 16000,
        "phone heard {} samples",
        phone_heard.len()
    );
    assert!(
        heard.len() >= 16000,
        "browser heard {} samples",
        heard.len()
    );
    assert_eq!(
        dominant_frequency(&phone_heard[phone_heard.len() - 4000..], 8000),
        440.0
    );
    assert_eq!(
        dominant_frequency(&heard[heard.len() - 4000..], 8000),
        1000.0
    );
    // After 5 s the phone got a sender report about its stream: nothing lost.
    let sr = rtcp_reports.first().expect("an RTCP report within 6 s");
    assert_eq!(sr.ssrc, 0x1234_5678);
    assert!(
        sr.sr_ntp_middle.is_some(),
        "we send media, so a sender report"
    );
    assert_eq!(sr.blocks.len(), 1);
    assert_eq!(
        (sr.blocks[0].ssrc, sr.blocks[0].cumulative_lost),
        (0xabcd, 0)
    );
    // The recording tap has both voices, each on its own channel.
    assert!(tap_customer.len() > 16000 && tap_agent.len() > 16000);
    assert_eq!(
        dominant_frequency(&tap_customer[tap_customer.len() - 4000..], 8000),
        440.0
    );
    assert_eq!(
        dominant_frequency(&tap_agent[tap_agent.len() - 4000..], 8000),
        1000.0
    );
    // One SSRC, continuous seq, forward timestamps toward the phone.
    assert!(phone_packets.iter().all(|p| p.2 == 0x1234_5678));
    for w in phone_packets.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1), "seq continuity");
        assert!(
            (w[1].1.wrapping_sub(w[0].1) as i32) > 0,
            "timestamps move forward"
        );
    }
}
