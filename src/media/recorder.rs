//! A call's stereo recording, sans-IO: the legs' decoded frames (the media core's tap) in, 20 ms
//! stereo frames out, left = the customer, right = the mix of every leg put on the right (the
//! agents). Both channels run on one clock, the recording's: a leg's frames are placed by their
//! own media time, anchored once to the recording's clock at the leg's first frame, so a lost
//! packet, silence suppression or a paused span is silence of the right length and second N of
//! the left channel is second N of the right. A leg whose media time jumps (a new stream after a
//! re-INVITE) is anchored again. Frames come out [`DELAY`] behind real time, so late packets
//! still land where they belong. Only what a leg *sends* is tapped: prompts and music the customer
//! hears are never on the agents' channel, and a leg that is on no channel (a supervisor's
//! whisper, later) is never recorded.

use super::routes::LegId;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Samples per second.
pub const RATE: u64 = 8000;
/// Samples per emitted frame (20 ms).
pub const FRAME: usize = 160;
/// How far behind real time frames are emitted (late packets still land in place).
pub const DELAY: Duration = Duration::from_millis(300);
/// A leg's frame this far from where its clock says is a new stream: anchored again.
const REANCHOR: u64 = RATE; // 1 s

/// Which channel a leg's voice is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The customer.
    Left,
    /// The agents.
    Right,
}

/// One call's stereo recording; see the module docs.
#[derive(Debug)]
pub struct StereoRecorder {
    origin: Instant,
    channels: HashMap<LegId, Channel>,
    /// Per leg: (its media time, the recording's sample position) of its anchor frame.
    anchors: HashMap<LegId, (u32, u64)>,
    /// Sample position of the buffers' first sample (everything before it is emitted).
    base: u64,
    left: VecDeque<i32>,
    right: VecDeque<i32>,
    paused_since: Option<u64>,
    /// Paused spans, in sample positions.
    spans: Vec<(u64, u64)>,
}

fn samples(d: Duration) -> u64 {
    (d.as_micros() as u64) * RATE / 1_000_000
}

impl StereoRecorder {
    /// A recording whose time 0 is `origin`.
    pub fn new(origin: Instant) -> Self {
        StereoRecorder {
            origin,
            channels: HashMap::new(),
            anchors: HashMap::new(),
            base: 0,
            left: VecDeque::new(),
            right: VecDeque::new(),
            paused_since: None,
            spans: Vec::new(),
        }
    }

    /// Puts `leg` on `channel` (or on none).
    pub fn set_channel(&mut self, leg: LegId, channel: Option<Channel>) {
        match channel {
            Some(c) => self.channels.insert(leg, c),
            None => self.channels.remove(&leg),
        };
    }

    fn position(&self, now: Instant) -> u64 {
        samples(now.saturating_duration_since(self.origin))
    }

    /// A decoded 8 kHz frame `leg` sent, with its media time `at`, arriving at `now`.
    pub fn tap(&mut self, now: Instant, leg: LegId, at: u32, pcm: &[i16]) {
        let Some(&channel) = self.channels.get(&leg) else {
            return;
        };
        // Where the frame would start if it arrived on time.
        let arrival = self.position(now).saturating_sub(pcm.len() as u64);
        let pos = match self.anchors.get(&leg) {
            Some(&(a_at, a_pos)) => {
                let delta = i64::from(at.wrapping_sub(a_at) as i32);
                let pos = (a_pos as i64 + delta).max(0) as u64;
                if pos.abs_diff(arrival) > REANCHOR {
                    None
                } else {
                    Some(pos)
                }
            }
            None => None,
        };
        let pos = pos.unwrap_or_else(|| {
            self.anchors.insert(leg, (at, arrival));
            arrival
        });
        let buf = match channel {
            Channel::Left => &mut self.left,
            Channel::Right => &mut self.right,
        };
        for (k, &s) in pcm.iter().enumerate() {
            let p = pos + k as u64;
            if p < self.base {
                continue; // too late: already written
            }
            let i = (p - self.base) as usize;
            if i >= buf.len() {
                buf.resize(i + 1, 0);
            }
            buf[i] += i32::from(s);
        }
    }

    /// Pauses (`true`) or resumes the recording at `now`: a paused span is silence.
    pub fn pause(&mut self, now: Instant, paused: bool) {
        let p = self.position(now);
        match (paused, self.paused_since) {
            (true, None) => self.paused_since = Some(p),
            (false, Some(since)) => {
                self.spans.push((since, p));
                self.paused_since = None;
            }
            _ => {}
        }
    }

    fn paused_at(&self, p: u64) -> bool {
        self.paused_since.is_some_and(|s| p >= s)
            || self.spans.iter().any(|&(a, b)| p >= a && p < b)
    }

    /// True when the next frame falls in a paused span (it is silence the recorder is not sent).
    pub fn next_frame_paused(&self) -> bool {
        self.paused_at(self.base)
    }

    /// The next frame due at `now`: interleaved stereo (left, right), [`FRAME`] samples a channel.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Vec<i16>> {
        let until = self.position(now).saturating_sub(samples(DELAY));
        (self.base + FRAME as u64 <= until).then(|| self.take_frame())
    }

    /// Every frame up to `now`, the end of the recording (no delay left to wait for).
    pub fn finish(&mut self, now: Instant) -> Vec<Vec<i16>> {
        self.pause(now, false);
        std::iter::from_fn(|| self.poll_final(now)).collect()
    }

    /// At the end (after `pause(now, false)`): the next frame up to `now`, no delay left to wait.
    pub fn poll_final(&mut self, now: Instant) -> Option<Vec<i16>> {
        (self.base + FRAME as u64 <= self.position(now)).then(|| self.take_frame())
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Instant {
        let at = self.base + FRAME as u64 + samples(DELAY);
        self.origin + Duration::from_micros(at * 1_000_000 / RATE)
    }

    fn take_frame(&mut self) -> Vec<i16> {
        let mut out = Vec::with_capacity(2 * FRAME);
        for k in 0..FRAME as u64 {
            let paused = self.paused_at(self.base + k);
            for buf in [&mut self.left, &mut self.right] {
                let s = buf.pop_front().unwrap_or(0);
                let s = if paused { 0 } else { s };
                out.push(s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
            }
        }
        self.base += FRAME as u64;
        out
    }

    /// The paused spans so far, as (start, end) milliseconds from the recording's start.
    pub fn paused_spans_ms(&self) -> Vec<(u64, u64)> {
        let ms = |p: u64| p * 1000 / RATE;
        let mut spans: Vec<_> = self.spans.iter().map(|&(a, b)| (ms(a), ms(b))).collect();
        if let Some(s) = self.paused_since {
            spans.push((ms(s), ms(self.base.max(s))));
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{dominant_frequency, ToneGenerator};

    const CUSTOMER: LegId = LegId(0);
    const AGENT: LegId = LegId(1);
    const AGENT2: LegId = LegId(2);
    const MS: Duration = Duration::from_millis(1);

    fn recorder(t0: Instant) -> StereoRecorder {
        let mut r = StereoRecorder::new(t0);
        r.set_channel(CUSTOMER, Some(Channel::Left));
        r.set_channel(AGENT, Some(Channel::Right));
        r
    }

    /// Runs `secs` of a call: every 20 ms each leg sends a frame (its tone), unless `drop` says
    /// that leg's packet n is lost; returns the file (left, right).
    fn run(
        r: &mut StereoRecorder,
        t0: Instant,
        secs: u64,
        drop: impl Fn(LegId, u64) -> bool,
    ) -> (Vec<i16>, Vec<i16>) {
        let mut tones = [
            ToneGenerator::new(440.0, 8000, 0.4),
            ToneGenerator::new(1000.0, 8000, 0.4),
        ];
        let mut frames = Vec::new();
        for n in 0..secs * 50 {
            let now = t0 + 20 * MS * (n as u32 + 1);
            for (leg, tone) in [CUSTOMER, AGENT].into_iter().zip(tones.iter_mut()) {
                let pcm = tone.samples(160);
                // Media times of their own: the agent's RTP clock starts elsewhere.
                let at = (n * 160) as u32 + if leg == AGENT { 90_000 } else { 7 };
                if !drop(leg, n) {
                    r.tap(now, leg, at, &pcm);
                }
            }
            while let Some(f) = r.poll_frame(now) {
                frames.push(f);
            }
        }
        frames.extend(r.finish(t0 + 20 * MS * (secs as u32 * 50)));
        let all: Vec<i16> = frames.concat();
        let left = all.iter().step_by(2).copied().collect();
        let right = all.iter().skip(1).step_by(2).copied().collect();
        (left, right)
    }

    #[test]
    fn customer_left_agents_right_as_long_as_the_call() {
        let t0 = Instant::now();
        let mut r = recorder(t0);
        let (left, right) = run(&mut r, t0, 3, |_, _| false);
        assert_eq!(left.len(), 3 * 8000, "three seconds on each channel");
        assert_eq!(dominant_frequency(&left[8000..16000], 8000), 440.0);
        assert_eq!(dominant_frequency(&right[8000..16000], 8000), 1000.0);
    }

    #[test]
    fn lost_packets_are_silence_in_place_and_the_channels_stay_aligned() {
        let t0 = Instant::now();
        let mut r = recorder(t0);
        // Every 20th packet of each leg lost (5 %), at different places.
        let (left, right) = run(&mut r, t0, 4, |leg, n| {
            (n + leg.0 as u64 * 7).is_multiple_of(20)
        });
        assert_eq!(left.len(), right.len());
        assert_eq!(left.len(), 4 * 8000);
        // The customer's packet 40 (0.80 s to 0.82 s) was lost: silence exactly there.
        let lost = &left[40 * 160..41 * 160];
        assert!(lost.iter().all(|&s| s == 0), "a lost packet is silence");
        assert!(left[41 * 160..42 * 160].iter().any(|&s| s != 0));
        // And what came after it is where it was sent, not shifted by the loss.
        let mut tone = ToneGenerator::new(440.0, 8000, 0.4);
        let expected: Vec<i16> = (0..50).flat_map(|_| tone.samples(160)).collect();
        assert_eq!(&left[45 * 160..46 * 160], &expected[45 * 160..46 * 160]);
    }

    #[test]
    fn a_paused_span_is_silent_on_both_channels_and_listed() {
        let t0 = Instant::now();
        let mut r = recorder(t0);
        let mut frames = Vec::new();
        let mut tone = ToneGenerator::new(440.0, 8000, 0.4);
        for n in 0..150u64 {
            let now = t0 + 20 * MS * (n as u32 + 1);
            if n == 50 {
                r.pause(now, true);
            }
            if n == 100 {
                r.pause(now, false);
            }
            let pcm = tone.samples(160);
            r.tap(now, CUSTOMER, (n * 160) as u32, &pcm);
            r.tap(now, AGENT, (n * 160) as u32, &pcm);
            while let Some(f) = r.poll_frame(now) {
                frames.push(f);
            }
        }
        frames.extend(r.finish(t0 + 3000 * MS));
        let all = frames.concat();
        assert_eq!(
            all.len(),
            2 * 3 * 8000,
            "the pause keeps the file as long as the call"
        );
        let paused = &all[2 * 8000 * 105 / 100..2 * 8000 * 195 / 100];
        assert!(paused.iter().all(|&s| s == 0), "paused: silence on both");
        assert!(all[2 * 8000 * 21 / 10..].iter().any(|&s| s != 0), "resumed");
        assert_eq!(r.paused_spans_ms(), vec![(1020, 2020)]);
    }

    #[test]
    fn two_agents_are_mixed_on_the_right_and_an_unassigned_leg_is_never_recorded() {
        let t0 = Instant::now();
        let mut r = recorder(t0);
        r.set_channel(AGENT2, Some(Channel::Right));
        let whisper = LegId(9);
        let mut a = ToneGenerator::new(1000.0, 8000, 0.2);
        let mut b = ToneGenerator::new(2000.0, 8000, 0.2);
        let mut w = ToneGenerator::new(3000.0, 8000, 0.4);
        let mut frames = Vec::new();
        for n in 0..100u64 {
            let now = t0 + 20 * MS * (n as u32 + 1);
            r.tap(now, AGENT, (n * 160) as u32, &a.samples(160));
            r.tap(now, AGENT2, (n * 160 + 5) as u32, &b.samples(160));
            r.tap(now, whisper, (n * 160) as u32, &w.samples(160));
            while let Some(f) = r.poll_frame(now) {
                frames.push(f);
            }
        }
        let right: Vec<i16> = frames.concat().iter().skip(1).step_by(2).copied().collect();
        let seg = &right[2000..6000];
        let power = |hz: f64| crate::media::tone::goertzel(seg, hz, 8000);
        assert!(power(1000.0) > 1e3 * power(3000.0), "no whisper");
        assert!(power(2000.0) > 1e3 * power(3000.0), "both agents");
    }

    #[test]
    fn a_stream_that_jumps_is_anchored_again() {
        let t0 = Instant::now();
        let mut r = recorder(t0);
        let mut tone = ToneGenerator::new(440.0, 8000, 0.4);
        let mut frames = Vec::new();
        for n in 0..100u64 {
            let now = t0 + 20 * MS * (n as u32 + 1);
            // A re-INVITE at 1 s: the phone's new stream starts at another timestamp.
            let at = if n < 50 { n * 160 } else { 3_000_000 + n * 160 };
            r.tap(now, CUSTOMER, at as u32, &tone.samples(160));
            while let Some(f) = r.poll_frame(now) {
                frames.push(f);
            }
        }
        frames.extend(r.finish(t0 + 2000 * MS));
        let left: Vec<i16> = frames.concat().iter().step_by(2).copied().collect();
        assert_eq!(left.len(), 16000);
        let heard = left[8000..].iter().filter(|&&s| s != 0).count();
        assert!(heard > 7000, "the new stream is recorded in place: {heard}");
    }
}
