//! Issue 4, acceptance 1 (G.711 passthrough) in-process: a str0m browser and a plain RTP phone are
//! bridged through the gateway's media session. The browser's 440 Hz tone arrives at the phone, the
//! phone's 1000 Hz tone arrives at the browser (each checked by frequency), and what the phone
//! receives is one SSRC with continuous sequence numbers and forward-moving timestamps.
//! Simulated time over an in-memory network.

mod common;

use clicktocall::media::browser_leg::{AudioCodec, BrowserLeg};
use clicktocall::media::g711;
use clicktocall::media::rtcp;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::rtp_leg::{RtpLeg, RtpLegTimers};
use clicktocall::media::sdp::{read_answer, Direction, Format, SdpSession};
use clicktocall::media::session::{MediaEvent, MediaOutput, MediaSession, Side};
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::browser::TestBrowser;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[test]
fn tones_cross_the_bridge_both_ways_with_pcmu_passthrough() {
    let mut now = Instant::now();
    let browser_addr: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let gw_web: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let gw_rtp: SocketAddr = "10.0.0.1:30000".parse().unwrap();
    let phone_addr: SocketAddr = "10.0.0.3:6000".parse().unwrap();

    // Browser leg.
    let (mut browser, offer) = TestBrowser::offer(now, browser_addr);
    let (leg, answer) = BrowserLeg::answer(
        now,
        &offer,
        &[(gw_web, gw_web)],
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
    )
    .unwrap();
    browser.accept(&answer);

    // SIP leg: the gateway offers PCMU + telephone-event to the phone; the phone answers.
    let mut sdp = SdpSession::new(1);
    let gw_offer = sdp.offer(
        gw_rtp,
        &[Format::pcmu(), Format::pcma()],
        true,
        20,
        Direction::SendRecv,
    );
    assert!(
        gw_offer.contains("m=audio 30000 RTP/AVP 0 8 101"),
        "{gw_offer}"
    );
    let phone_answer = "v=0\r\no=- 5 5 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
    let negotiated = read_answer(
        phone_answer,
        &[Format::pcmu(), Format::pcma(), Format::telephone_event()],
    )
    .unwrap();
    let sip = RtpLeg::new(now, negotiated, 0x1234_5678, RtpLegTimers::default());
    let mut session = MediaSession::new(leg, sip);
    session.set_tap(true);
    let (mut tap_customer, mut tap_agent) = (Vec::new(), Vec::new());
    let mut rtcp_reports = Vec::new();

    let mut phone_tone = ToneGenerator::new(1000.0, 8000, 0.5);
    let mut browser_tone = ToneGenerator::new(440.0, 8000, 0.5);
    let mut phone_heard: Vec<i16> = Vec::new();
    let mut phone_packets: Vec<(u16, u32, u32)> = Vec::new();
    let mut events = Vec::new();
    let (mut ticks, mut phone_seq) = (0u64, 100u16);

    for _ in 0..300 {
        loop {
            match session.poll_output() {
                MediaOutput::Transmit {
                    side: Side::Browser,
                    to,
                    data,
                } => {
                    assert_eq!(to, browser_addr);
                    browser.receive(now, gw_web, &data);
                }
                MediaOutput::Transmit {
                    side: Side::Sip,
                    to,
                    data,
                } => {
                    assert_eq!(to, phone_addr);
                    let p = RtpView::parse(&data).unwrap();
                    assert_eq!(p.pt, 0);
                    phone_packets.push((p.seq, p.timestamp, p.ssrc));
                    g711::decode_ulaw(p.payload, &mut phone_heard);
                }
                MediaOutput::Event(e) => events.push(e),
                MediaOutput::Transmit {
                    side: Side::SipRtcp,
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
                    from: Side::Browser,
                    pcm,
                } => tap_customer.extend(pcm),
                MediaOutput::Tap {
                    from: Side::Sip,
                    pcm,
                } => tap_agent.extend(pcm),
                MediaOutput::Tap { .. } => {}
                MediaOutput::Timeout(_) => break,
            }
        }
        for (to, data) in browser.poll() {
            assert_eq!(to, gw_web);
            session
                .handle_browser_datagram(now, browser_addr, gw_web, &data)
                .unwrap();
        }
        if browser.connected {
            browser.send_pcmu(now, ticks, &browser_tone.samples(160));
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
            session.handle_sip_datagram(now, phone_addr, &pkt).unwrap();
            phone_seq = phone_seq.wrapping_add(1);
            ticks += 160;
        }
        now += Duration::from_millis(20);
        browser.tick(now);
        session.handle_timeout(now).unwrap();
    }

    assert!(
        events.contains(&MediaEvent::Flowing(Side::Browser)),
        "{events:?}"
    );
    assert!(
        events.contains(&MediaEvent::Flowing(Side::Sip)),
        "{events:?}"
    );
    assert!(
        phone_heard.len() >= 16000,
        "phone heard {} samples",
        phone_heard.len()
    );
    assert!(
        browser.heard.len() >= 16000,
        "browser heard {} samples",
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
