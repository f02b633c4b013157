//! One outgoing RTP stream toward a peer, fed by changing sources (prompt → agent → music on hold →
//! transfer target) while keeping one SSRC and continuous sequence numbers and timestamps. Browsers
//! punish a backwards jump with seconds of silence; a new SSRC mid-call confuses SIP phones. Sans-IO.
//!
//! Within one source, gaps are kept (a lost source packet stays a gap, so the receiver's loss and
//! jitter statistics stay true) and packets of one DTMF event keep sharing a timestamp. At a switch the
//! new source is re-based: its first packet follows the last one sent by one sequence number, by the
//! wall-clock time elapsed (at least one frame) in timestamp, and carries the marker bit.

use std::time::Instant;

/// Identifies a source feeding the stream (a leg, a player); any value, unique per source.
pub type SourceId = u32;

/// A packet as it should be sent: the header fields this stream owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Our SSRC, the same for the life of the stream.
    pub ssrc: u32,
    /// Our sequence number.
    pub seq: u16,
    /// Our timestamp.
    pub timestamp: u32,
    /// Marker bit (set on the first packet after a switch, and where the source set it).
    pub marker: bool,
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    source: SourceId,
    seq_offset: u16,
    ts_offset: u32,
    /// The first source sequence number taken after the switch; anything before it is late.
    first_src_seq: u16,
    /// The source has gone well past the switch point: late packets from before it are long
    /// gone, and 16-bit sequence numbers can no longer tell "before" from "half a wrap later".
    settled: bool,
}

/// Packets after a switch point before the "late packet" check stops (20 s at 50 packets/s);
/// far below half the sequence space, where the comparison would turn (after 32,768 packets: 11
/// minutes of a call, every packet then looked late and was dropped).
const SETTLE_AFTER: u16 = 1000;

/// The rewriting state of one outgoing stream.
#[derive(Debug, Clone)]
pub struct OutboundStream {
    ssrc: u32,
    clock_rate: u32,
    frame_ticks: u32,
    mapping: Option<Mapping>,
    last: Option<(u16, u32, Instant)>,
}

impl OutboundStream {
    /// A stream with this SSRC, clock rate and packetisation (`frame_ticks`: 160 for 20 ms at 8 kHz).
    pub fn new(ssrc: u32, clock_rate: u32, frame_ticks: u32) -> Self {
        OutboundStream {
            ssrc,
            clock_rate,
            frame_ticks: frame_ticks.max(1),
            mapping: None,
            last: None,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Where the stream's timestamp stands at `now`: the last one sent plus the time since (for a
    /// packet we originate, such as a DTMF event, between the packets of the current source).
    pub fn current_timestamp(&self, now: Instant) -> u32 {
        match self.last {
            None => 0,
            Some((_, ts, at)) => {
                let elapsed = now.saturating_duration_since(at);
                ts.wrapping_add(
                    (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000) as u32,
                )
            }
        }
    }

    /// Rewrites one packet from `source` (its own sequence number, timestamp and marker) sent at
    /// `now`. A packet from a source other than the current one makes it current (a switch). Returns
    /// `None` for a late packet from before the switch point, which would go backwards.
    pub fn rewrite(
        &mut self,
        now: Instant,
        source: SourceId,
        seq: u16,
        timestamp: u32,
        marker: bool,
    ) -> Option<Rewritten> {
        let switched = self.mapping.is_none_or(|m| m.source != source);
        if switched {
            self.rebase(now, source, seq, timestamp);
        }
        let m = self.mapping.as_mut()?;
        if !m.settled {
            let since = seq.wrapping_sub(m.first_src_seq);
            if (since as i16) < 0 {
                return None;
            }
            m.settled = since > SETTLE_AFTER;
        }
        let m = *m;
        let out = Rewritten {
            ssrc: self.ssrc,
            seq: seq.wrapping_add(m.seq_offset),
            timestamp: timestamp.wrapping_add(m.ts_offset),
            marker: marker || switched,
        };
        if self
            .last
            .is_none_or(|(s, _, _)| (out.seq.wrapping_sub(s) as i16) > 0)
        {
            self.last = Some((out.seq, out.timestamp, now));
        }
        Some(out)
    }

    /// Maps `source` so its packet (`first_seq`, `first_ts`) follows the last one sent: one sequence
    /// number later and the elapsed wall-clock time (at least one frame) later.
    fn rebase(&mut self, now: Instant, source: SourceId, first_seq: u16, first_ts: u32) {
        let (seq, ts) = match self.last {
            None => (first_seq, first_ts),
            Some((last_seq, last_ts, at)) => {
                let elapsed = now.saturating_duration_since(at);
                let ticks =
                    (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000) as u32;
                (
                    last_seq.wrapping_add(1),
                    last_ts.wrapping_add(ticks.max(self.frame_ticks)),
                )
            }
        };
        self.mapping = Some(Mapping {
            source,
            seq_offset: seq.wrapping_sub(first_seq),
            ts_offset: ts.wrapping_sub(first_ts),
            first_src_seq: first_seq,
            settled: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Feeds `n` 20 ms packets from `source` starting at its own (seq, ts); returns what was sent.
    fn feed(
        s: &mut OutboundStream,
        t: &mut Instant,
        source: SourceId,
        seq: u16,
        ts: u32,
        n: u16,
    ) -> Vec<Rewritten> {
        (0..n)
            .filter_map(|i| {
                *t += Duration::from_millis(20);
                s.rewrite(
                    *t,
                    source,
                    seq.wrapping_add(i),
                    ts.wrapping_add(u32::from(i) * 160),
                    false,
                )
            })
            .collect()
    }

    fn assert_monotonic(all: &[Rewritten]) {
        for w in all.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "seq continuity {w:?}");
            let dt = w[1].timestamp.wrapping_sub(w[0].timestamp) as i32;
            assert!(dt > 0, "timestamp must move forward: {w:?}");
        }
        assert!(all.iter().all(|p| p.ssrc == all[0].ssrc));
    }

    #[test]
    fn prompt_agent_music_agent_stays_one_monotonic_stream() {
        let mut s = OutboundStream::new(0xdead_beef, 8000, 160);
        let mut t = Instant::now();
        let mut all = feed(&mut s, &mut t, 1, 100, 5000, 50); // prompt
        all.extend(feed(&mut s, &mut t, 2, 60000, 4_000_000_000, 50)); // agent, wrapping ts
        t += Duration::from_millis(300); // a short silence while switching
        all.extend(feed(&mut s, &mut t, 3, 7, 1, 50)); // music on hold
        all.extend(feed(&mut s, &mut t, 2, 60050, 4_000_008_000, 50)); // agent again
        assert_eq!(all.len(), 200);
        assert_monotonic(&all);
        // Markers exactly at the switches.
        let markers: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, p)| p.marker)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(markers, vec![0, 50, 100, 150]);
        // The 300 ms pause shows up as elapsed time in the timestamp (2400 ticks + the 20 ms frame).
        assert_eq!(all[100].timestamp.wrapping_sub(all[99].timestamp), 2560);
    }

    #[test]
    fn gaps_within_a_source_are_kept_and_late_packets_from_before_a_switch_dropped() {
        let mut s = OutboundStream::new(1, 8000, 160);
        let t = Instant::now();
        let a = s.rewrite(t, 1, 10, 1600, false).unwrap();
        let b = s.rewrite(t, 1, 12, 1920, false).unwrap(); // 11 lost upstream
        assert_eq!(b.seq.wrapping_sub(a.seq), 2);
        let c = s.rewrite(t, 2, 500, 0, false).unwrap(); // switch
        assert_eq!(c.seq, b.seq.wrapping_add(1));
        assert!(
            s.rewrite(t, 2, 499, 0, false).is_none(),
            "older than the switch point"
        );
        let d = s.rewrite(t, 2, 501, 160, false).unwrap();
        assert_eq!(d.seq, c.seq.wrapping_add(1));
    }

    #[test]
    fn a_long_call_keeps_every_packet_past_half_the_sequence_space_and_a_wrap() {
        // 70,000 packets (23 minutes at 50 packets/s) from one source, starting near the top of
        // the sequence space so it wraps too: none may be taken for a late one.
        let t0 = Instant::now();
        let mut s = OutboundStream::new(7, 8000, 160);
        let mut prev: Option<Rewritten> = None;
        for i in 0..70_000u32 {
            let seq = 60_000u16.wrapping_add(i as u16);
            let now = t0 + Duration::from_millis(20 * u64::from(i));
            let out = s
                .rewrite(now, 1, seq, i.wrapping_mul(160), false)
                .unwrap_or_else(|| panic!("packet {i} (seq {seq}) dropped"));
            if let Some(p) = prev {
                assert_eq!(out.seq, p.seq.wrapping_add(1));
                assert_eq!(out.timestamp, p.timestamp.wrapping_add(160));
            }
            prev = Some(out);
        }
    }

    #[test]
    fn dtmf_packets_of_one_event_keep_sharing_a_timestamp() {
        let mut s = OutboundStream::new(1, 8000, 160);
        let t = Instant::now();
        let p1 = s.rewrite(t, 1, 1, 8000, true).unwrap();
        let p2 = s.rewrite(t, 1, 2, 8000, false).unwrap();
        assert_eq!(p1.timestamp, p2.timestamp);
    }
}
