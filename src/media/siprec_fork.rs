//! The media side of SIPREC: the recording's stereo frames, as they fall due, become two RTP
//! streams to the recorder, stream 1 the customer (left), stream 2 the agents' mix (right), in the
//! G.711 law each stream agreed. Sent from the recording's frames rather than relayed packet by
//! packet: the agents' stream is a mix whenever more than one agent talks, and the frames are
//! already aligned on the recording's clock (a lost packet is silence of the right length), so the
//! recorder's two streams line up the way the WAV's channels do. A paused span sends nothing (the
//! streams are `inactive`) but its time passes: RTP timestamps after a resume say how long the
//! pause was.

use super::engine::PortLease;
use super::g711;
use super::recorder::FRAME;
use super::rtp;
use super::sdp::Format;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::debug;

/// Where the streams go and from which sockets (ours, offered in the SDP).
#[derive(Debug, Clone)]
pub struct ForkTarget {
    /// Stream 1's and stream 2's sockets.
    pub sockets: [Arc<PortLease>; 2],
    /// The recorder's address for each stream.
    pub to: [SocketAddr; 2],
    /// The format each stream agreed (PCMU or PCMA).
    pub formats: [Format; 2],
}

/// Two RTP streams to a recorder; see the module docs.
#[derive(Debug)]
pub struct Fork {
    target: ForkTarget,
    /// Per stream: PCMA (else PCMU), and its payload type.
    alaw: [bool; 2],
    pts: [u8; 2],
    out: Streams,
}

/// The two streams' numbering and buffers.
#[derive(Debug)]
struct Streams {
    seq: [u16; 2],
    ssrc: [u32; 2],
    ts: u32,
    /// The next packet starts a talkspurt (the first, the first after a pause): marker bit.
    mark: bool,
    payload: Vec<u8>,
    mono: Vec<i16>,
    packet: Vec<u8>,
    /// Bytes of RTP sent.
    sent_bytes: u64,
}

impl Fork {
    /// Streams to `target`, numbered from `seed`'s random starting points (RFC 3550 §5.1).
    pub fn new(target: ForkTarget, seed: [u32; 4]) -> Self {
        let f = &target.formats;
        Fork {
            alaw: [0, 1].map(|i| f[i].name.eq_ignore_ascii_case("PCMA")),
            pts: [f[0].pt, f[1].pt],
            target,
            out: Streams {
                seq: [seed[0] as u16, seed[1] as u16],
                ssrc: [seed[2], seed[3] ^ 0x5a5a_5a5a],
                ts: seed[0] ^ seed[3],
                mark: true,
                payload: Vec::with_capacity(FRAME),
                mono: Vec::with_capacity(FRAME),
                packet: Vec::with_capacity(12 + FRAME),
                sent_bytes: 0,
            },
        }
    }

    /// Bytes of RTP sent.
    pub fn sent_bytes(&self) -> u64 {
        self.out.sent_bytes
    }

    /// One 20 ms stereo frame (interleaved left, right): a packet on each stream, handed to
    /// `send(stream index, packet)`; a paused frame sends nothing.
    pub fn frame(&mut self, frame: &[i16], paused: bool, send: impl FnMut(usize, &[u8])) {
        self.out.frame(self.alaw, self.pts, frame, paused, send);
    }

    /// Sends one frame from the fork's sockets (never waits: a full socket buffer drops the packet,
    /// as the network would).
    pub fn send_frame(&mut self, frame: &[i16], paused: bool) {
        let t = &self.target;
        self.out.frame(self.alaw, self.pts, frame, paused, |ch, p| {
            if let Err(e) = t.sockets[ch].send_to(p, t.to[ch]) {
                debug!(to = %t.to[ch], error = %e, "recorder stream: send failed");
            }
        });
    }
}

impl Streams {
    fn frame(
        &mut self,
        alaw: [bool; 2],
        pts: [u8; 2],
        frame: &[i16],
        paused: bool,
        mut send: impl FnMut(usize, &[u8]),
    ) {
        if paused {
            self.mark = true;
        } else {
            for ch in 0..2 {
                self.mono.clear();
                self.mono.extend(frame.iter().skip(ch).step_by(2));
                self.payload.clear();
                if alaw[ch] {
                    g711::encode_alaw(&self.mono, &mut self.payload);
                } else {
                    g711::encode_ulaw(&self.mono, &mut self.payload);
                }
                let (seq, ssrc) = (self.seq[ch], self.ssrc[ch]);
                rtp::write(
                    &mut self.packet,
                    self.mark,
                    pts[ch],
                    seq,
                    self.ts,
                    ssrc,
                    &self.payload,
                );
                self.seq[ch] = seq.wrapping_add(1);
                self.sent_bytes += self.packet.len() as u64;
                send(ch, &self.packet);
            }
            self.mark = false;
        }
        self.ts = self.ts.wrapping_add((frame.len() / 2) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpView;
    use crate::media::tone::{dominant_frequency, ToneGenerator};

    async fn fork(formats: [Format; 2]) -> Fork {
        let engine = crate::media::engine::MediaEngine::new(crate::media::engine::MediaConfig {
            bind_ip: "127.0.0.1".parse().unwrap(),
            advertised_ip: None,
            port_min: 41000,
            port_max: 41019,
        });
        let a = Arc::new(engine.lease().await.unwrap());
        let b = Arc::new(engine.lease().await.unwrap());
        let to = [a.local, b.local];
        Fork::new(
            ForkTarget {
                sockets: [a, b],
                to,
                formats,
            },
            [1, 2, 3, 4],
        )
    }

    fn stereo(left: &mut ToneGenerator, right: &mut ToneGenerator) -> Vec<i16> {
        let (l, r) = (left.samples(FRAME), right.samples(FRAME));
        l.iter().zip(&r).flat_map(|(&a, &b)| [a, b]).collect()
    }

    #[tokio::test]
    async fn each_channel_is_its_own_stream_and_a_pause_sends_nothing_but_its_time_passes() {
        let mut f = fork([Format::pcmu(), Format::pcma()]).await;
        let (mut l, mut r) = (
            ToneGenerator::new(440.0, 8000, 0.3),
            ToneGenerator::new(1000.0, 8000, 0.3),
        );
        let mut got: [Vec<Vec<u8>>; 2] = Default::default();
        for k in 0..100 {
            let frame = stereo(&mut l, &mut r);
            f.frame(&frame, (40..60).contains(&k), |ch, p| {
                got[ch].push(p.to_vec())
            });
        }
        assert_eq!((got[0].len(), got[1].len()), (80, 80));
        let mut pcm: [Vec<i16>; 2] = Default::default();
        for ch in 0..2 {
            let first = RtpView::parse(&got[ch][0]).unwrap();
            assert_eq!(first.pt, [0, 8][ch]);
            assert!(first.marker);
            let after = RtpView::parse(&got[ch][40]).unwrap();
            assert!(after.marker, "a resume starts a talkspurt");
            let before = RtpView::parse(&got[ch][39]).unwrap();
            assert_eq!(after.seq, before.seq.wrapping_add(1), "no sequence gap");
            assert_eq!(
                after.timestamp.wrapping_sub(before.timestamp),
                21 * 160,
                "the pause's 20 frames passed"
            );
            for p in &got[ch] {
                let v = RtpView::parse(p).unwrap();
                if ch == 0 {
                    g711::decode_ulaw(v.payload, &mut pcm[ch]);
                } else {
                    g711::decode_alaw(v.payload, &mut pcm[ch]);
                }
            }
        }
        assert!((dominant_frequency(&pcm[0], 8000) - 440.0).abs() < 10.0);
        assert!((dominant_frequency(&pcm[1], 8000) - 1000.0).abs() < 10.0);
        assert_eq!(f.sent_bytes(), 160 * 172);
    }
}
