//! A stereo 16-bit 8 kHz WAV file that is valid while it grows: its header's sizes are rewritten
//! on request ([`WavFile::sync_header`]) and at the end.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

const RATE: u32 = 8000;
const CHANNELS: u16 = 2;

/// The 44-byte header of a PCM WAV with `data` bytes of samples.
pub fn header(data: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let block = CHANNELS * 2;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data.saturating_add(36).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(RATE * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// A WAV file being written.
#[derive(Debug)]
pub struct WavFile {
    file: File,
    data: u64,
    bytes: Vec<u8>,
}

impl WavFile {
    /// Creates `path` (and its directory) with an empty header.
    pub fn create(path: &Path) -> io::Result<WavFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = File::create(path)?;
        file.write_all(&header(0))?;
        Ok(WavFile {
            file,
            data: 0,
            bytes: Vec::new(),
        })
    }

    /// Appends interleaved samples (one write).
    pub fn write_frame(&mut self, samples: &[i16]) -> io::Result<()> {
        self.bytes.clear();
        self.bytes
            .extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        self.file.write_all(&self.bytes)?;
        self.data += self.bytes.len() as u64;
        Ok(())
    }

    /// Rewrites the header's sizes for what was written so far.
    pub fn sync_header(&mut self) -> io::Result<()> {
        let data = u32::try_from(self.data).unwrap_or(u32::MAX - 36);
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&header(data))?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// The final header, flushed to disk.
    pub fn close(&mut self) -> io::Result<()> {
        self.sync_header()?;
        self.file.sync_all()
    }

    /// Samples per channel written.
    pub fn samples_per_channel(&self) -> u64 {
        self.data / u64::from(CHANNELS * 2)
    }

    /// Bytes in the file.
    pub fn bytes(&self) -> u64 {
        self.data + 44
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_file_is_a_valid_wav_at_every_sync_and_at_the_end() {
        let dir = std::env::temp_dir().join(format!("c2c-wav-{}", std::process::id()));
        let path = dir.join("a/b/1.wav");
        let mut w = WavFile::create(&path).unwrap();
        let frame: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 100 } else { -100 })
            .collect();
        for _ in 0..50 {
            w.write_frame(&frame).unwrap();
        }
        w.sync_header().unwrap();
        // As a crash would leave it: readable, one second long.
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().channels, 2);
        assert_eq!(r.spec().sample_rate, 8000);
        assert_eq!(r.duration(), 8000);
        w.write_frame(&frame).unwrap();
        w.close().unwrap();
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.duration(), 8160);
        assert_eq!(w.samples_per_channel(), 8160);
        let samples: Vec<i16> = r.into_samples().map(Result::unwrap).take(4).collect();
        assert_eq!(samples, [100, -100, 100, -100], "left, right interleaved");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_not_a_panic() {
        let e = WavFile::create(Path::new("/proc/c2c-no/1.wav")).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}
