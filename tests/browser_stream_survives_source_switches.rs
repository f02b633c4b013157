//! Issue 4, acceptance 3: the browser hears a prompt, then the phone, then music on hold, then the
//! phone again, in one stream: one SSRC (str0m's), contiguous sequence numbers and timestamps that only
//! move forward (browsers punish a backwards jump with silence), and each part carries its own tone.

mod common;

use clicktocall::media::browser_leg::{AudioCodec, BrowserLeg};
use clicktocall::media::g711;
use clicktocall::media::rtp;
use clicktocall::media::rtp_leg::{RtpLeg, RtpLegTimers};
use clicktocall::media::sdp::{read_answer, Format};
use clicktocall::media::session::{MediaEvent, MediaOutput, MediaSession, Side};
use clicktocall::media::source::{Clip, Source};
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::browser::TestBrowser;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[test]
fn prompt_phone_music_phone_is_one_monotonic_stream() {
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
    let sdp = "v=0\r\no=- 5 5 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    let negotiated = read_answer(sdp, &[Format::pcmu()]).unwrap();
    let mut session = MediaSession::new(
        leg,
        RtpLeg::new(now, negotiated, 9, RtpLegTimers::default()),
    );

    let prompt = Clip::from_samples(ToneGenerator::new(600.0, 8000, 0.5).samples(4800)); // 0.6 s
    let music = Clip::from_samples(ToneGenerator::new(500.0, 8000, 0.5).samples(1600));
    let mut phone_tone = ToneGenerator::new(1000.0, 8000, 0.5);
    let (mut phone_seq, mut phone_ts) = (40_000u16, 3_000_000_000u32);
    let mut marks: Vec<(&str, usize)> = Vec::new();
    let mut started = false;
    let mut step_after_prompt = None;

    for step in 0..400 {
        let mut prompt_done = false;
        loop {
            match session.poll_output() {
                MediaOutput::Transmit {
                    side: Side::Browser,
                    data,
                    ..
                } => browser.receive(now, gw_web, &data),
                MediaOutput::Event(MediaEvent::PromptDone) => prompt_done = true,
                MediaOutput::Timeout(_) => break,
                _ => {}
            }
        }
        for (_, data) in browser.poll() {
            session
                .handle_browser_datagram(now, browser_addr, gw_web, &data)
                .unwrap();
        }
        if browser.connected && !started {
            started = true;
            marks.push(("prompt", browser.heard.len()));
            session.play_to_browser(now, Source::Prompt(prompt.clone()));
        }
        if prompt_done {
            marks.push(("phone", browser.heard.len()));
            session.bridge_to_browser();
            step_after_prompt = Some(step);
        }
        if let Some(s0) = step_after_prompt {
            match step - s0 {
                50 => {
                    marks.push(("music", browser.heard.len()));
                    session.play_to_browser(now, Source::Loop(music.clone()));
                }
                100 => {
                    marks.push(("phone again", browser.heard.len()));
                    session.bridge_to_browser();
                }
                _ => {}
            }
        }
        if started {
            // The phone talks all along (heard only while bridged).
            let mut payload = Vec::new();
            g711::encode_ulaw(&phone_tone.samples(160), &mut payload);
            let mut pkt = Vec::new();
            rtp::write(&mut pkt, false, 0, phone_seq, phone_ts, 0x55, &payload);
            session.handle_sip_datagram(now, phone, &pkt).unwrap();
            phone_seq = phone_seq.wrapping_add(1);
            phone_ts = phone_ts.wrapping_add(160);
        }
        now += Duration::from_millis(20);
        browser.tick(now);
        session.handle_timeout(now).unwrap();
    }
    marks.push(("end", browser.heard.len()));
    let names: Vec<&str> = marks.iter().map(|m| m.0).collect();
    assert_eq!(names, ["prompt", "phone", "music", "phone again", "end"]);

    // One stream: contiguous sequence numbers, timestamps strictly forward.
    assert!(browser.seqs.len() > 150, "{} frames", browser.seqs.len());
    for w in browser.seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "contiguous sequence numbers");
    }
    for w in browser.times.windows(2) {
        assert!(
            w[1] > w[0],
            "timestamps move forward: {} then {}",
            w[0],
            w[1]
        );
    }
    // Each part carries its own tone (checked in the middle of each part).
    let expect = [
        ("prompt", 600.0),
        ("phone", 1000.0),
        ("music", 500.0),
        ("phone again", 1000.0),
    ];
    for (i, (name, freq)) in expect.iter().enumerate() {
        let (start, end) = (marks[i].1, marks[i + 1].1);
        let mid = (start + end) / 2;
        let part = &browser.heard[mid - 800..mid + 800];
        assert_eq!(dominant_frequency(part, 8000), *freq, "{name}");
    }
}
