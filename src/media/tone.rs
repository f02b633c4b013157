//! Tones: a sine generator (ringback, beeps, test signals) and a Goertzel detector that tells which
//! frequency a block of samples carries (used by tests to assert "the 440 Hz tone arrived").

use std::f64::consts::PI;

/// A continuous sine wave, sample by sample; phase carries over between calls.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    step: f64,
    phase: f64,
    amplitude: f64,
}

impl ToneGenerator {
    /// `freq` Hz at `rate` samples/s; `amplitude` in 0..=1 of full scale.
    pub fn new(freq: f64, rate: u32, amplitude: f64) -> Self {
        ToneGenerator {
            step: 2.0 * PI * freq / f64::from(rate),
            phase: 0.0,
            amplitude: amplitude.clamp(0.0, 1.0) * 32767.0,
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = (self.phase.sin() * self.amplitude) as i16;
            self.phase += self.step;
            if self.phase > 2.0 * PI {
                self.phase -= 2.0 * PI;
            }
        }
    }

    /// The next `n` samples.
    pub fn samples(&mut self, n: usize) -> Vec<i16> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

/// Power of `freq` in `samples` (Goertzel), normalised by the block length.
pub fn goertzel(samples: &[i16], freq: f64, rate: u32) -> f64 {
    let coeff = 2.0 * (2.0 * PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len().max(1) as f64).powi(2)
}

/// Root-mean-square level of `samples`, 0..=32767.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// The strongest frequency among 10 Hz steps from 100 to `rate/2 - 100` Hz.
pub fn dominant_frequency(samples: &[i16], rate: u32) -> f64 {
    let top = f64::from(rate) / 2.0 - 100.0;
    let mut best = (0.0, 0.0);
    let mut f = 100.0;
    while f <= top {
        let p = goertzel(samples, f, rate);
        if p > best.1 {
            best = (f, p);
        }
        f += 10.0;
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_tone_it_generates() {
        for (freq, rate) in [
            (440.0, 8000),
            (1000.0, 8000),
            (440.0, 48000),
            (1000.0, 16000),
        ] {
            let s = ToneGenerator::new(freq, rate, 0.5).samples(rate as usize / 5);
            assert_eq!(dominant_frequency(&s, rate), freq, "{freq} Hz at {rate}");
            assert!(rms(&s) > 10000.0);
        }
        assert_eq!(rms(&[0; 160]), 0.0);
    }
}
