//! Mixing on a clock. Each source's decoded audio (8 kHz) waits in a short FIFO; every 20 ms the call
//! takes one frame from each source (silence where a source has nothing: loss, DTX, a late packet)
//! and sums, per listener, the frames of the sources it hears, saturating at 16 bits. Because the
//! clock drives the mix, not the arrival of packets, a listener hears a quiet source as clearly as a
//! busy one, and a source that stops leaves silence rather than stalling the others. Sans-IO.

use super::routes::Gain;
use super::source::FRAME;
use std::collections::VecDeque;

/// At most this much audio waits per source (80 ms): more means the source runs fast (or came in a
/// burst) and the oldest samples are dropped, so the mix never drifts into delay.
const MAX_BUFFERED: usize = FRAME * 4;

/// One source's decoded audio waiting for the mix.
#[derive(Debug, Default)]
pub struct SourceFifo {
    samples: VecDeque<i16>,
    /// The FIFO has started: it waits for a first full frame, then gives one per tick.
    primed: bool,
}

impl SourceFifo {
    /// Decoded samples arrived.
    pub fn push(&mut self, pcm: &[i16]) {
        self.samples.extend(pcm.iter().copied());
        let over = self.samples.len().saturating_sub(MAX_BUFFERED);
        self.samples.drain(..over);
        if self.samples.len() >= FRAME {
            self.primed = true;
        }
    }

    /// The next 20 ms frame into `out`: silence where nothing is buffered. Returns whether it held
    /// any audio.
    pub fn pop_frame(&mut self, out: &mut [i16; FRAME]) -> bool {
        if !self.primed {
            out.fill(0);
            return false;
        }
        let n = self.samples.len().min(FRAME);
        for (o, s) in out.iter_mut().zip(self.samples.drain(..n)) {
            *o = s;
        }
        out[n..].fill(0);
        if self.samples.is_empty() {
            self.primed = false;
        }
        n > 0
    }

    /// Forgets what is buffered.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.primed = false;
    }
}

/// Sums `frames` (each with its gain) into `out`, saturating.
pub fn mix<'a>(frames: impl Iterator<Item = (&'a [i16; FRAME], Gain)>, out: &mut [i16; FRAME]) {
    let mut acc = [0i32; FRAME];
    for (frame, gain) in frames {
        if gain == 1.0 {
            for (a, s) in acc.iter_mut().zip(frame.iter()) {
                *a += i32::from(*s);
            }
        } else {
            for (a, s) in acc.iter_mut().zip(frame.iter()) {
                *a += (f32::from(*s) * gain) as i32;
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = (*a).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_primes_on_a_full_frame_and_pads_with_silence() {
        let mut f = SourceFifo::default();
        let mut out = [7i16; FRAME];
        f.push(&[1; 100]);
        assert!(!f.pop_frame(&mut out), "not primed before a whole frame");
        assert_eq!(out, [0; FRAME]);
        f.push(&[2; 100]);
        assert!(f.pop_frame(&mut out));
        assert_eq!(out[0], 1);
        assert_eq!(out[159], 2);
        assert!(f.pop_frame(&mut out), "40 samples left");
        assert_eq!(&out[..40], &[2; 40]);
        assert_eq!(&out[40..], &[0; 120]);
        assert!(!f.pop_frame(&mut out), "ran dry: waits for a frame again");
    }

    #[test]
    fn fifo_drops_the_oldest_beyond_80_ms() {
        let mut f = SourceFifo::default();
        for i in 0..10 {
            f.push(&[i; FRAME]);
        }
        let mut out = [0i16; FRAME];
        f.pop_frame(&mut out);
        assert_eq!(out[0], 6, "only the last four frames are kept");
    }

    #[test]
    fn mix_sums_with_gain_and_saturates() {
        let a = [1000i16; FRAME];
        let b = [30000i16; FRAME];
        let mut out = [0i16; FRAME];
        mix([(&a, 1.0), (&a, 0.5)].into_iter(), &mut out);
        assert_eq!(out[0], 1500);
        mix([(&b, 1.0), (&b, 1.0)].into_iter(), &mut out);
        assert_eq!(out[0], i16::MAX);
        mix(std::iter::empty(), &mut out);
        assert_eq!(out, [0; FRAME]);
    }
}
