//! Audio the gateway plays itself: prompts (WAV), music on hold (a looping WAV), tones and silence,
//! as 20 ms frames of 8 kHz PCM. Sans-IO: the session asks for the next frame when one is due.

use super::rewrite::SourceId;
use super::tone::ToneGenerator;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
/// The rate every source produces.
pub const RATE: u32 = 8000;

/// Why a WAV file cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// Unreadable or not WAV.
    #[error("cannot read WAV {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What hound said.
        reason: String,
    },
    /// Not mono 16-bit PCM at 8, 16 or 48 kHz.
    #[error("WAV {path} must be mono 16-bit PCM at 8, 16 or 48 kHz (is {channels} ch, {bits} bit, {rate} Hz)")]
    Format {
        /// The file.
        path: String,
        /// Channels found.
        channels: u16,
        /// Bits per sample found.
        bits: u16,
        /// Sample rate found.
        rate: u32,
    },
}

/// A decoded prompt at 8 kHz, shareable between calls (load once, play many).
#[derive(Debug, Clone)]
pub struct Clip(Arc<[i16]>);

impl Clip {
    /// Loads a mono 16-bit WAV at 8, 16 or 48 kHz, resampled to 8 kHz.
    pub fn load(path: &Path) -> Result<Clip, WavError> {
        let p = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|e| WavError::Read {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        Self::from_reader(reader, &p)
    }

    /// Decodes WAV bytes (for prompts embedded in the binary).
    pub fn from_wav_bytes(bytes: &[u8], name: &str) -> Result<Clip, WavError> {
        let reader =
            hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| WavError::Read {
                path: name.into(),
                reason: e.to_string(),
            })?;
        Self::from_reader(reader, name)
    }

    fn from_reader<R: std::io::Read>(
        reader: hound::WavReader<R>,
        name: &str,
    ) -> Result<Clip, WavError> {
        let spec = reader.spec();
        if spec.channels != 1
            || spec.bits_per_sample != 16
            || spec.sample_format != hound::SampleFormat::Int
            || ![8000, 16000, 48000].contains(&spec.sample_rate)
        {
            return Err(WavError::Format {
                path: name.into(),
                channels: spec.channels,
                bits: spec.bits_per_sample,
                rate: spec.sample_rate,
            });
        }
        let samples: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .map_err(|e| WavError::Read {
                path: name.into(),
                reason: e.to_string(),
            })?;
        Ok(Clip(downsample(&samples, spec.sample_rate / RATE).into()))
    }

    /// A clip from 8 kHz samples.
    pub fn from_samples(samples: Vec<i16>) -> Clip {
        Clip(samples.into())
    }

    /// The 8 kHz samples.
    pub fn samples(&self) -> &[i16] {
        &self.0
    }

    /// Number of 8 kHz samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty clip.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Averages each `factor` samples (a box filter: enough to keep voice prompts free of aliasing
/// above 4 kHz in practice; prompts should be recorded at 8 kHz for best quality).
fn downsample(samples: &[i16], factor: u32) -> Vec<i16> {
    let f = factor.max(1) as usize;
    if f == 1 {
        return samples.to_vec();
    }
    samples
        .chunks(f)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
        .collect()
}

/// What plays.
#[derive(Debug, Clone)]
pub enum Source {
    /// A clip once, then done.
    Prompt(Clip),
    /// A clip over and over (music on hold).
    Loop(Clip),
    /// A continuous tone.
    Tone(ToneGenerator),
    /// Silence.
    Silence,
}

/// Plays a [`Source`] frame by frame.
#[derive(Debug, Clone)]
pub struct Player {
    source: Source,
    pos: usize,
}

impl Player {
    /// Starts `source` from its beginning.
    pub fn new(source: Source) -> Self {
        Player { source, pos: 0 }
    }

    /// The next 20 ms frame, or `None` when a prompt has ended (the frame is padded with silence at
    /// the end of a prompt).
    pub fn next_frame(&mut self, out: &mut [i16; FRAME]) -> Option<()> {
        match &mut self.source {
            Source::Silence => out.fill(0),
            Source::Tone(g) => g.fill(out),
            Source::Prompt(clip) => {
                if self.pos >= clip.0.len() {
                    return None;
                }
                let n = FRAME.min(clip.0.len() - self.pos);
                out[..n].copy_from_slice(&clip.0[self.pos..self.pos + n]);
                out[n..].fill(0);
                self.pos += n;
            }
            Source::Loop(clip) => {
                if clip.0.is_empty() {
                    out.fill(0);
                    return Some(());
                }
                for s in out.iter_mut() {
                    *s = clip.0[self.pos];
                    self.pos = (self.pos + 1) % clip.0.len();
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::dominant_frequency;

    fn wav(rate: u32, freq: f64, secs: f64) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        for s in ToneGenerator::new(freq, rate, 0.5).samples((f64::from(rate) * secs) as usize) {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        buf.into_inner()
    }

    #[test]
    fn wav_at_48k_plays_at_8k_with_its_frequency() {
        let clip = Clip::from_wav_bytes(&wav(48000, 440.0, 0.5), "t.wav").unwrap();
        assert_eq!(clip.len(), 4000);
        let mut p = Player::new(Source::Prompt(clip));
        let mut all = Vec::new();
        let mut f = [0i16; FRAME];
        while p.next_frame(&mut f).is_some() {
            all.extend_from_slice(&f);
        }
        assert_eq!(all.len(), 4000);
        assert_eq!(dominant_frequency(&all, 8000), 440.0);
    }

    #[test]
    fn loops_and_rejects_bad_formats() {
        let clip = Clip::from_samples(vec![1, 2, 3]);
        let mut p = Player::new(Source::Loop(clip));
        let mut f = [0i16; FRAME];
        p.next_frame(&mut f).unwrap();
        assert_eq!(&f[..7], &[1, 2, 3, 1, 2, 3, 1]);
        let err = Clip::from_wav_bytes(&wav(44100, 440.0, 0.1), "cd.wav").unwrap_err();
        assert!(err.to_string().contains("44100"), "{err}");
        assert!(Clip::from_wav_bytes(b"RIFF nonsense", "x.wav").is_err());
    }
}

/// A source played in real time into an outgoing stream (a prompt or music to the customer): its
/// own source id and sequence/timestamp numbering for the stream rewriter, one frame every 20 ms.
/// When a prompt ends it goes on with silence, so the stream stays continuous.
#[derive(Debug)]
pub struct Playback {
    player: Player,
    id: SourceId,
    seq: u16,
    ts: u32,
    next: Instant,
}

/// What [`Playback::poll`] has at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A frame (now in the caller's buffer) due at `at`, numbered `seq`/`ts` under source `id`.
    Frame {
        /// When it was due.
        at: Instant,
        /// The playback's source id.
        id: SourceId,
        /// Its sequence number.
        seq: u16,
        /// Its timestamp.
        ts: u32,
    },
    /// The prompt ended (reported once; silence follows): poll again.
    Ended,
    /// Nothing is due before [`Playback::next_due`].
    NotYet,
}

impl Playback {
    /// Plays `source` from `now` on, under source id `id`.
    pub fn new(now: Instant, source: Source, id: SourceId) -> Self {
        Playback {
            player: Player::new(source),
            id,
            seq: 0,
            ts: 0,
            next: now,
        }
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Instant {
        self.next
    }

    /// The next frame due at `now`, written into `frame`; timestamps advance by `ticks` per frame
    /// (the stream's clock: 160 at 8 kHz, 960 at 48 kHz).
    pub fn poll(&mut self, now: Instant, frame: &mut [i16; FRAME], ticks: u32) -> Due {
        if self.next > now {
            return Due::NotYet;
        }
        if self.player.next_frame(frame).is_none() {
            self.player = Player::new(Source::Silence);
            return Due::Ended;
        }
        let due = Due::Frame {
            at: self.next,
            id: self.id,
            seq: self.seq,
            ts: self.ts,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(ticks);
        self.next += Duration::from_millis(20);
        due
    }
}
