//! Codec conversion between the legs: G.711 μ-law ↔ A-law in our own tables, and Opus ↔ G.711
//! through libopus (feature `opus`). Opus is decoded and encoded at 8 kHz directly (libopus
//! resamples internally), so no resampler of ours sits in the path. One per call and direction pair:
//! the Opus encoder and decoder carry state between frames.

use super::browser_leg::AudioCodec;
use super::g711;

/// Why a frame could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// This build has no Opus support (built without the `opus` feature).
    #[error("Opus support is not built in (cargo feature `opus`)")]
    NoOpus,
    /// libopus refused the frame.
    #[error("Opus: {0}")]
    Opus(String),
}

/// Converts frames between the codecs of a call's two legs.
pub struct Transcoder {
    pcm: Vec<i16>,
    out: Vec<u8>,
    #[cfg(feature = "opus")]
    opus: Option<(opus::Decoder, opus::Encoder)>,
}

impl Default for Transcoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Transcoder {
    /// A transcoder with empty state.
    pub fn new() -> Self {
        Transcoder {
            pcm: Vec::with_capacity(960),
            out: Vec::with_capacity(960),
            #[cfg(feature = "opus")]
            opus: None,
        }
    }

    /// True when this build can carry `codec`.
    pub fn supports(codec: AudioCodec) -> bool {
        codec != AudioCodec::Opus || cfg!(feature = "opus")
    }

    /// `payload` in `from`, as `to`: the same bytes when the codecs match (relay), else converted.
    pub fn convert<'a>(
        &'a mut self,
        payload: &'a [u8],
        from: AudioCodec,
        to: AudioCodec,
    ) -> Result<&'a [u8], TranscodeError> {
        if from == to {
            return Ok(payload);
        }
        self.pcm.clear();
        match from {
            AudioCodec::Pcmu => g711::decode_ulaw(payload, &mut self.pcm),
            AudioCodec::Pcma => g711::decode_alaw(payload, &mut self.pcm),
            AudioCodec::Opus => self.decode_opus(payload)?,
        }
        let pcm = std::mem::take(&mut self.pcm);
        let r = self.encode(&pcm, to);
        self.pcm = pcm;
        r.map(|_| self.out.as_slice())
    }

    /// Decodes a frame to 8 kHz PCM (for recording taps).
    pub fn decode(&mut self, payload: &[u8], from: AudioCodec) -> Result<&[i16], TranscodeError> {
        self.pcm.clear();
        match from {
            AudioCodec::Pcmu => g711::decode_ulaw(payload, &mut self.pcm),
            AudioCodec::Pcma => g711::decode_alaw(payload, &mut self.pcm),
            AudioCodec::Opus => self.decode_opus(payload)?,
        }
        Ok(&self.pcm)
    }

    /// Encodes 8 kHz PCM (20 ms frames) as `to`.
    pub fn encode_pcm(&mut self, pcm: &[i16], to: AudioCodec) -> Result<&[u8], TranscodeError> {
        self.encode(pcm, to).map(|_| self.out.as_slice())
    }

    fn encode(&mut self, pcm: &[i16], to: AudioCodec) -> Result<(), TranscodeError> {
        self.out.clear();
        match to {
            AudioCodec::Pcmu => g711::encode_ulaw(pcm, &mut self.out),
            AudioCodec::Pcma => g711::encode_alaw(pcm, &mut self.out),
            AudioCodec::Opus => self.encode_opus(pcm)?,
        }
        Ok(())
    }

    #[cfg(feature = "opus")]
    fn opus_state(&mut self) -> Result<&mut (opus::Decoder, opus::Encoder), TranscodeError> {
        if self.opus.is_none() {
            let err = |e: opus::Error| TranscodeError::Opus(e.to_string());
            let dec = opus::Decoder::new(8000, opus::Channels::Mono).map_err(err)?;
            let enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip)
                .map_err(err)?;
            self.opus = Some((dec, enc));
        }
        // Just set above when it was missing.
        self.opus.as_mut().ok_or(TranscodeError::NoOpus)
    }

    #[cfg(feature = "opus")]
    fn decode_opus(&mut self, payload: &[u8]) -> Result<(), TranscodeError> {
        let mut buf = [0i16; 960]; // 120 ms at 8 kHz: the longest Opus packet
        let (dec, _) = self.opus_state()?;
        let n = dec
            .decode(payload, &mut buf, false)
            .map_err(|e| TranscodeError::Opus(e.to_string()))?;
        self.pcm.extend_from_slice(&buf[..n]);
        Ok(())
    }

    #[cfg(feature = "opus")]
    fn encode_opus(&mut self, pcm: &[i16]) -> Result<(), TranscodeError> {
        let mut buf = [0u8; 400];
        let (_, enc) = self.opus_state()?;
        let n = enc
            .encode(pcm, &mut buf)
            .map_err(|e| TranscodeError::Opus(e.to_string()))?;
        self.out.extend_from_slice(&buf[..n]);
        Ok(())
    }

    #[cfg(not(feature = "opus"))]
    fn decode_opus(&mut self, _payload: &[u8]) -> Result<(), TranscodeError> {
        Err(TranscodeError::NoOpus)
    }

    #[cfg(not(feature = "opus"))]
    fn encode_opus(&mut self, _pcm: &[i16]) -> Result<(), TranscodeError> {
        Err(TranscodeError::NoOpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{dominant_frequency, ToneGenerator};

    #[test]
    fn ulaw_to_alaw_keeps_the_tone() {
        let mut t = Transcoder::new();
        let mut ulaw = Vec::new();
        g711::encode_ulaw(
            &ToneGenerator::new(1000.0, 8000, 0.5).samples(1600),
            &mut ulaw,
        );
        let alaw = t
            .convert(&ulaw, AudioCodec::Pcmu, AudioCodec::Pcma)
            .unwrap()
            .to_vec();
        let mut pcm = Vec::new();
        g711::decode_alaw(&alaw, &mut pcm);
        assert_eq!(dominant_frequency(&pcm, 8000), 1000.0);
        assert_eq!(
            t.convert(&ulaw, AudioCodec::Pcmu, AudioCodec::Pcmu)
                .unwrap(),
            &ulaw[..]
        );
    }

    #[cfg(feature = "opus")]
    #[test]
    fn opus_round_trip_keeps_the_tone() {
        let mut t = Transcoder::new();
        let mut back = Vec::new();
        let mut tone = ToneGenerator::new(440.0, 8000, 0.5);
        let mut other = Transcoder::new();
        for _ in 0..50 {
            let mut ulaw = Vec::new();
            g711::encode_ulaw(&tone.samples(160), &mut ulaw);
            let packet = t
                .convert(&ulaw, AudioCodec::Pcmu, AudioCodec::Opus)
                .unwrap()
                .to_vec();
            assert!(!packet.is_empty() && packet.len() < 200);
            let ulaw_back = other
                .convert(&packet, AudioCodec::Opus, AudioCodec::Pcmu)
                .unwrap()
                .to_vec();
            assert_eq!(ulaw_back.len(), 160);
            g711::decode_ulaw(&ulaw_back, &mut back);
        }
        assert_eq!(dominant_frequency(&back[4000..], 8000), 440.0);
    }

    #[cfg(not(feature = "opus"))]
    #[test]
    fn without_the_feature_opus_is_refused_clearly() {
        assert!(!Transcoder::supports(AudioCodec::Opus));
        let err = Transcoder::new()
            .convert(&[1, 2, 3], AudioCodec::Opus, AudioCodec::Pcmu)
            .unwrap_err();
        assert!(err.to_string().contains("feature"));
    }
}
