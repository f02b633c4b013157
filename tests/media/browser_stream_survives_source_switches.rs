//! Issue 4, acceptance 3: the browser hears a prompt, then the phone, then music on hold, then the
//! phone again, in one stream: one SSRC (str0m's), contiguous sequence numbers and timestamps that only
//! move forward (browsers punish a backwards jump with silence), and each part carries its own tone.

use crate::common;

use clicktocall::media::browser_leg::AudioCodec;
use clicktocall::media::call_media::{MediaEvent, MediaOutput};
use clicktocall::media::g711;
use clicktocall::media::rtp;
use clicktocall::media::sdp::Format;
use clicktocall::media::source::{Clip, Source};
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::media::{Bridged, BROWSER_LEG};

#[test]
fn prompt_phone_music_phone_is_one_monotonic_stream() {
    let mut call = Bridged::new(
        &[AudioCodec::Pcmu],
        "m=audio 6000 RTP/AVP 0\r\n",
        &[Format::pcmu()],
        9,
    );
    let prompt = Clip::from_samples(ToneGenerator::new(600.0, 8000, 0.5).samples(4800)); // 0.6 s
    let music = Clip::from_samples(ToneGenerator::new(500.0, 8000, 0.5).samples(1600));
    let mut phone_tone = ToneGenerator::new(1000.0, 8000, 0.5);
    let (mut phone_seq, mut phone_ts) = (40_000u16, 3_000_000_000u32);
    let mut marks: Vec<(&str, usize)> = Vec::new();
    let (mut started, mut step_after_prompt) = (false, None);

    for step in 0..400 {
        let mut prompt_done = false;
        call.exchange(|o| {
            prompt_done |= matches!(o, MediaOutput::Event(MediaEvent::PromptDone(_)))
        });
        let heard = call.browser.heard.len();
        if call.browser.connected && !started {
            started = true;
            marks.push(("prompt", heard));
            call.session
                .play(call.now, BROWSER_LEG, Source::Prompt(prompt.clone()));
        }
        if prompt_done {
            marks.push(("phone", heard));
            call.session.stop_playing(BROWSER_LEG);
            step_after_prompt = Some(step);
        }
        match step_after_prompt.map(|s0| step - s0) {
            Some(50) => {
                marks.push(("music", heard));
                call.session
                    .play(call.now, BROWSER_LEG, Source::Loop(music.clone()));
            }
            Some(100) => {
                marks.push(("phone again", heard));
                call.session.stop_playing(BROWSER_LEG);
            }
            _ => {}
        }
        if started {
            // The phone talks all along (heard only while bridged).
            let mut payload = Vec::new();
            g711::encode_ulaw(&phone_tone.samples(160), &mut payload);
            let mut pkt = Vec::new();
            rtp::write(&mut pkt, false, 0, phone_seq, phone_ts, 0x55, &payload);
            call.phone_sends(&pkt);
            phone_seq = phone_seq.wrapping_add(1);
            phone_ts = phone_ts.wrapping_add(160);
        }
        call.step();
    }
    marks.push(("end", call.browser.heard.len()));
    let names: Vec<&str> = marks.iter().map(|m| m.0).collect();
    assert_eq!(names, ["prompt", "phone", "music", "phone again", "end"]);

    // One stream: contiguous sequence numbers, timestamps strictly forward.
    let b = &call.browser;
    assert!(b.seqs.len() > 150, "{} frames", b.seqs.len());
    for w in b.seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "contiguous sequence numbers");
    }
    for w in b.times.windows(2) {
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
        let mid = (marks[i].1 + marks[i + 1].1) / 2;
        assert_eq!(
            dominant_frequency(&b.heard[mid - 800..mid + 800], 8000),
            *freq,
            "{name}"
        );
    }
}
