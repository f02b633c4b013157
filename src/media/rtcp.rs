//! RTCP basics for the SIP side (RFC 3550 §6): reception statistics of the stream we receive (loss,
//! extended highest sequence number, interarrival jitter), sender and receiver reports we send, and the
//! report blocks the peer sends us, which give the call's media-quality summary. Sans-IO.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Packets lost in all (24-bit, signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time (0 if none).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// Statistics of the stream we receive (RFC 3550 Appendix A.1, A.3, A.8).
#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    ssrc: u32,
    started: bool,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<i64>,
    jitter: f64,
    last_sr: Option<(u32, Instant)>,
}

impl ReceiveStats {
    /// Records a packet (`seq`, RTP `timestamp`) that arrived at `arrival`; `clock_rate` of its codec.
    pub fn record(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        arrival: Instant,
        epoch: Instant,
        clock_rate: u32,
    ) {
        self.count(ssrc, seq);
        // Jitter (A.8): transit-time differences in timestamp units, smoothed by 1/16.
        let arrival_ts =
            (arrival.saturating_duration_since(epoch).as_secs_f64() * f64::from(clock_rate)) as i64;
        let transit = arrival_ts - i64::from(timestamp);
        if let Some(prev) = self.transit {
            let d = (transit - prev).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Records packets `first..=last` (sequence numbers) of a payload that shares the stream's
    /// numbering but not its timing, such as RFC 4733 events: counted for loss, not for jitter.
    pub fn record_untimed(&mut self, ssrc: u32, first: u16, last: u16) {
        let n = last.wrapping_sub(first).min(64);
        for i in 0..=n {
            self.count(ssrc, first.wrapping_add(i));
        }
    }

    fn count(&mut self, ssrc: u32, seq: u16) {
        if !self.started || ssrc != self.ssrc {
            *self = ReceiveStats {
                ssrc,
                started: true,
                base_seq: u32::from(seq),
                max_seq: seq,
                ..Default::default()
            };
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta < 0x8000 {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
        }
        self.received += 1;
    }

    /// Notes a sender report from the peer (for LSR/DLSR in our next report).
    pub fn record_sr(&mut self, ntp_middle: u32, now: Instant) {
        self.last_sr = Some((ntp_middle, now));
    }

    /// Since the first packet: packets expected (from sequence numbers), packets lost, and the
    /// interarrival jitter in timestamp units; `None` before any packet. Does not advance anything.
    pub fn totals(&self) -> Option<(u32, i64, f64)> {
        if !self.started {
            return None;
        }
        let ext_max = self.cycles + u32::from(self.max_seq);
        let expected = ext_max.wrapping_sub(self.base_seq).wrapping_add(1);
        Some((
            expected,
            i64::from(expected) - i64::from(self.received),
            self.jitter,
        ))
    }

    /// [`Self::totals`] for a call record: jitter in milliseconds (one decimal), for a stream
    /// whose RTP clock runs at `clock_rate`.
    pub fn quality(&self, clock_rate: u32) -> Option<crate::records::cdr::Quality> {
        let (expected, lost, jitter) = self.totals()?;
        let per_ms = f64::from(clock_rate.max(1000)) / 1000.0;
        Some(crate::records::cdr::Quality {
            expected,
            lost,
            jitter_ms: (jitter / per_ms * 10.0).round() / 10.0,
        })
    }

    /// The report block for our next report, or `None` before any packet. Advances the interval.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        if !self.started {
            return None;
        }
        let ext_max = self.cycles + u32::from(self.max_seq);
        let expected = ext_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => (
                lsr,
                (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32,
            ),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: ext_max,
            jitter: self.jitter as u32,
            lsr,
            dlsr,
        })
    }
}

/// What we sent, for our sender reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendStats {
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
    /// RTP timestamp of the last packet sent.
    pub last_timestamp: u32,
    /// When it was sent.
    pub last_sent: Option<Instant>,
}

/// NTP time (RFC 3550 §4) for `now`, from the wall clock.
fn ntp_now() -> (u32, u32) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since.as_secs() + 2_208_988_800;
    let frac = ((u64::from(since.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    (secs as u32, frac)
}

fn push_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    out.push(b.fraction_lost);
    out.extend_from_slice(&(b.cumulative_lost as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.lsr.to_be_bytes());
    out.extend_from_slice(&b.dlsr.to_be_bytes());
}

/// A sender report (when we have sent media since the last report) or a receiver report, with at
/// most one report block. `clock_rate` converts the elapsed time since the last packet into RTP units.
pub fn write_report(
    our_ssrc: u32,
    sent: &SendStats,
    block: Option<ReportBlock>,
    now: Instant,
    clock_rate: u32,
) -> Vec<u8> {
    let rc = u8::from(block.is_some());
    let mut out = Vec::with_capacity(52);
    if let Some(at) = sent.last_sent {
        let words = 6 + 6 * u16::from(rc);
        out.extend_from_slice(&[0x80 | rc, 200]);
        out.extend_from_slice(&words.to_be_bytes());
        out.extend_from_slice(&our_ssrc.to_be_bytes());
        let (s, f) = ntp_now();
        out.extend_from_slice(&s.to_be_bytes());
        out.extend_from_slice(&f.to_be_bytes());
        let since = now.saturating_duration_since(at).as_secs_f64() * f64::from(clock_rate);
        out.extend_from_slice(&sent.last_timestamp.wrapping_add(since as u32).to_be_bytes());
        out.extend_from_slice(&sent.packets.to_be_bytes());
        out.extend_from_slice(&sent.octets.to_be_bytes());
    } else {
        let words = 1 + 6 * u16::from(rc);
        out.extend_from_slice(&[0x80 | rc, 201]);
        out.extend_from_slice(&words.to_be_bytes());
        out.extend_from_slice(&our_ssrc.to_be_bytes());
    }
    if let Some(b) = block {
        push_block(&mut out, &b);
    }
    out
}

/// A report from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Its SSRC.
    pub ssrc: u32,
    /// Middle 32 bits of its NTP time, for a sender report.
    pub sr_ntp_middle: Option<u32>,
    /// Its report blocks (about what it receives from us).
    pub blocks: Vec<ReportBlock>,
}

/// Reads the SR and RR packets of a compound RTCP datagram; other packet types are skipped.
/// Malformed input yields what could be read before the fault, never a panic.
pub fn parse(buf: &[u8]) -> Vec<PeerReport> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() >= at + 8 {
        let b = &buf[at..];
        if b[0] >> 6 != 2 {
            break;
        }
        let len = (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4;
        // A length below the 8-byte header (length field 0) is malformed, not a tiny packet.
        if len > b.len() || len < 8 {
            break;
        }
        let pkt = &b[..len];
        let rc = usize::from(pkt[0] & 0x1f);
        let ssrc = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let (ntp, blocks_at) = match pkt[1] {
            200 if len >= 28 => (
                Some(u32::from_be_bytes([pkt[10], pkt[11], pkt[12], pkt[13]])),
                28,
            ),
            201 => (None, 8),
            _ => {
                at += len;
                continue;
            }
        };
        let blocks = (0..rc)
            .filter_map(|i| {
                let o = blocks_at + 24 * i;
                let r = pkt.get(o..o + 24)?;
                let word = |k: usize| u32::from_be_bytes([r[k], r[k + 1], r[k + 2], r[k + 3]]);
                let lost = (i32::from(r[5]) << 16) | (i32::from(r[6]) << 8) | i32::from(r[7]);
                Some(ReportBlock {
                    ssrc: word(0),
                    fraction_lost: r[4],
                    cumulative_lost: (lost << 8) >> 8, // sign-extend 24 bits
                    highest_seq: word(8),
                    jitter: word(12),
                    lsr: word(16),
                    dlsr: word(20),
                })
            })
            .collect();
        out.push(PeerReport {
            ssrc,
            sr_ntp_middle: ntp,
            blocks,
        });
        at += len;
    }
    out
}

#[cfg(test)]
mod fuzz_found {
    use super::*;

    #[test]
    fn a_zero_length_field_is_malformed_not_a_panic() {
        // Found by clicktocall-fuzz: length 0 means a 4-byte packet, shorter than its own header.
        let pkt = [0x81, 201, 0, 0, 0, 0, 0, 1, 0x80, 200, 0, 0];
        assert!(parse(&pkt).is_empty());
        // Truncated report blocks yield what is whole.
        let mut rr = vec![0x82, 201, 0, 7, 0, 0, 0, 3];
        rr.extend([0u8; 24]);
        assert_eq!(parse(&rr).len(), 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_jitter_of_a_stream_with_gaps() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::default();
        // 100 packets every 20 ms, except 10 lost, with a sequence wrap in the middle.
        for i in 0..100u16 {
            if (40..50).contains(&i) {
                continue;
            }
            let seq = 65500u16.wrapping_add(i);
            s.record(
                7,
                seq,
                u32::from(i) * 160,
                t0 + Duration::from_millis(20 * u64::from(i)),
                t0,
                8000,
            );
        }
        let b = s.report_block(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(b.cumulative_lost, 10);
        assert_eq!(b.fraction_lost, (10 * 256 / 100) as u8);
        assert_eq!(b.highest_seq, 65536 + u32::from(65500u16.wrapping_add(99)));
        assert!(b.jitter < 2, "perfectly paced: {}", b.jitter);
        // Next interval: nothing new, nothing lost.
        assert_eq!(s.report_block(t0).unwrap().fraction_lost, 0);
    }

    #[test]
    fn telephone_events_in_the_stream_are_not_loss_and_not_jitter() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::default();
        let at = |i: u64| t0 + Duration::from_millis(20 * i);
        // Audio 1-2, a key press as events 3-7 (the three end packets merged into one), audio 8.
        s.record(5, 1, 0, at(0), t0, 8000);
        s.record(5, 2, 160, at(1), t0, 8000);
        s.record_untimed(5, 3, 3);
        s.record_untimed(5, 4, 4);
        s.record_untimed(5, 5, 7);
        s.record(5, 8, 1120, at(7), t0, 8000);
        let (expected, lost, jitter) = s.totals().unwrap();
        assert_eq!((expected, lost), (8, 0));
        assert!(jitter < 1.0, "{jitter}");
        // A real gap is still loss.
        s.record(5, 10, 1440, at(9), t0, 8000);
        assert_eq!(s.totals().unwrap().1, 1);
    }

    #[test]
    fn reports_round_trip_and_garbage_is_harmless() {
        let t0 = Instant::now();
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 70000,
            jitter: 80,
            lsr: 5,
            dlsr: 6,
        };
        let sent = SendStats {
            packets: 500,
            octets: 80000,
            last_timestamp: 1234,
            last_sent: Some(t0),
        };
        let sr = write_report(42, &sent, Some(block), t0, 8000);
        assert_eq!(sr.len(), 52);
        let rr = write_report(42, &SendStats::default(), None, t0, 8000);
        assert_eq!(rr.len(), 8);
        let mut compound = sr.clone();
        compound.extend_from_slice(&rr);
        let got = parse(&compound);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].ssrc, 42);
        assert!(got[0].sr_ntp_middle.is_some());
        assert_eq!(got[0].blocks, vec![block]);
        assert_eq!(got[1].blocks, vec![]);
        for n in 0..sr.len() {
            let _ = parse(&sr[..n]);
        }
        assert!(parse(&[0xff; 40]).is_empty());
    }
}
