//! The SIP side's media leg: plain RTP/AVP toward a phone or trunk, with symmetric-RTP latching, one
//! outgoing stream whose seq/ts survive source switches, RFC 4733 digits, hold, and the media-flow and
//! timeout state. Sans-IO: datagrams and time in, packets and events out.

use super::dtmf::{DtmfEvent, DtmfReceiver};
use super::flow::{FlowEvent, FlowMonitor};
use super::latch::{Latch, LatchVerdict};
use super::rewrite::{OutboundStream, SourceId};
use super::rtcp::{self, ReceiveStats, ReportBlock, SendStats};
use super::rtp::{self, RtpError, RtpView};
use super::sdp::{Direction, Negotiated};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Timing rules of a leg.
#[derive(Debug, Clone, Copy)]
pub struct RtpLegTimers {
    /// No packet for this long ends the leg.
    pub media_timeout: Duration,
    /// ... or this long while the peer holds us.
    pub hold_timeout: Duration,
    /// How long another source must wait before it may take over the latch.
    pub relatch_grace: Duration,
}

impl Default for RtpLegTimers {
    fn default() -> Self {
        RtpLegTimers {
            media_timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(3600),
            relatch_grace: Duration::from_secs(2),
        }
    }
}

/// What an incoming datagram carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpIn<'a> {
    /// An audio frame in the negotiated codec.
    Audio {
        /// Its RTP sequence number.
        seq: u16,
        /// Its RTP timestamp.
        timestamp: u32,
        /// The encoded frame.
        payload: &'a [u8],
    },
    /// A telephone-event packet; `digit` is set on the first packet of a key press.
    Dtmf {
        /// The digit, once per press.
        digit: Option<char>,
        /// The event as received.
        event: DtmfEvent,
        /// Its RTP sequence number.
        seq: u16,
        /// Its RTP timestamp (shared by all packets of the event).
        timestamp: u32,
        /// Marker bit (first packet of the event).
        marker: bool,
    },
    /// Nothing usable (wrong source, not RTP, unknown payload type).
    Nothing,
}

/// One SIP-side media leg.
#[derive(Debug)]
pub struct RtpLeg {
    negotiated: Negotiated,
    latch: Latch,
    out: OutboundStream,
    dtmf_rx: DtmfReceiver,
    flow: FlowMonitor,
    buf: Vec<u8>,
    recv_stats: ReceiveStats,
    send_stats: SendStats,
    epoch: Instant,
    next_rtcp: Instant,
    peer_report: Option<ReportBlock>,
}

/// How often we send RTCP reports (RFC 3550 §6.2: 5 s minimum interval for a two-party session).
const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// The media-quality summary of a SIP leg (for call records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegQuality {
    /// Packets we expected from the peer but never got.
    pub lost_by_us: i32,
    /// Interarrival jitter of the peer's stream, in milliseconds.
    pub jitter_ms: u32,
    /// What the peer last reported about our stream, if it sends RTCP.
    pub peer_report: Option<ReportBlock>,
}

impl RtpLeg {
    /// A leg for the negotiated stream, sending with `ssrc`.
    pub fn new(now: Instant, negotiated: Negotiated, ssrc: u32, timers: RtpLegTimers) -> Self {
        let frame = negotiated.codec.rate / 1000 * negotiated.ptime_ms;
        let mut flow = FlowMonitor::new(now, true, timers.media_timeout, timers.hold_timeout);
        // A leg born held or parked (`inactive`: no agent yet) must not time out on the silence
        // it asked for: a caller waiting in the queue past media_timeout_secs stays.
        flow.set_held(now, !negotiated.peer_direction.peer_sends());
        RtpLeg {
            latch: Latch::new(now, negotiated.remote, timers.relatch_grace, 3),
            out: OutboundStream::new(ssrc, negotiated.codec.rate, frame),
            dtmf_rx: DtmfReceiver::new(),
            flow,
            buf: Vec::with_capacity(1500),
            recv_stats: ReceiveStats::default(),
            send_stats: SendStats::default(),
            epoch: now,
            next_rtcp: now + RTCP_INTERVAL,
            peer_report: None,
            negotiated,
        }
    }

    /// What the gateway received on this leg so far (for the call record).
    pub fn record_quality(&self) -> Option<crate::records::cdr::Quality> {
        self.recv_stats.quality(self.negotiated.codec.rate)
    }

    /// What was negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// A new offer/answer (re-INVITE): new address, codec or direction.
    pub fn update(&mut self, now: Instant, negotiated: Negotiated) {
        if negotiated.remote != self.negotiated.remote {
            self.latch.reset(now, negotiated.remote);
        }
        let held = !negotiated.peer_direction.peer_sends();
        self.flow.set_held(now, held);
        self.negotiated = negotiated;
    }

    /// The peer signals from `ip`: its media from that host is its own from the first packet
    /// (see [`super::latch`]).
    pub fn trust(&mut self, ip: std::net::IpAddr) {
        self.latch.trust(ip);
    }

    /// True when the peer wants our media (not holding us with sendonly/inactive).
    pub fn may_send(&self) -> bool {
        matches!(
            self.negotiated.peer_direction,
            Direction::SendRecv | Direction::RecvOnly
        ) && self.latch.target().is_some()
    }

    /// Judges a datagram from `from`.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &'a [u8],
    ) -> RtpIn<'a> {
        let p = match RtpView::parse(data) {
            Ok(p) => p,
            Err(RtpError::Rtcp) => {
                self.handle_rtcp(now, from, data);
                return RtpIn::Nothing;
            }
            Err(_) => return RtpIn::Nothing,
        };
        let known = p.pt == self.negotiated.codec.pt
            || self.negotiated.dtmf.as_ref().is_some_and(|d| d.pt == p.pt);
        if !known {
            return RtpIn::Nothing;
        }
        if self.latch.handle_packet(now, from, p.ssrc) == LatchVerdict::Ignore {
            return RtpIn::Nothing;
        }
        self.flow.handle_packet(now);
        if p.pt == self.negotiated.codec.pt {
            let rate = self.negotiated.codec.rate;
            self.recv_stats
                .record(p.ssrc, p.seq, p.timestamp, now, self.epoch, rate);
        } else {
            // RFC 4733 events share the stream's sequence numbers (not its timing).
            self.recv_stats.record_untimed(p.ssrc, p.seq, p.seq);
        }
        if p.pt == self.negotiated.codec.pt {
            return RtpIn::Audio {
                seq: p.seq,
                timestamp: p.timestamp,
                payload: p.payload,
            };
        }
        match DtmfEvent::parse(p.payload) {
            Ok(event) => RtpIn::Dtmf {
                digit: self.dtmf_rx.handle_packet(p.timestamp, p.payload),
                event,
                seq: p.seq,
                timestamp: p.timestamp,
                marker: p.marker,
            },
            Err(_) => RtpIn::Nothing,
        }
    }

    /// Builds an audio packet from `source` (its own seq/ts numbering); `None` while we must not send.
    pub fn audio_packet(
        &mut self,
        now: Instant,
        source: SourceId,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<(SocketAddr, &[u8])> {
        let pt = self.negotiated.codec.pt;
        self.packet(now, source, seq, ts, marker, pt, payload)
    }

    /// Builds a telephone-event packet (already at this leg's clock rate); `None` without telephone-event.
    pub fn dtmf_packet(
        &mut self,
        now: Instant,
        source: SourceId,
        seq: u16,
        ts: u32,
        marker: bool,
        event: DtmfEvent,
    ) -> Option<(SocketAddr, &[u8])> {
        let pt = self.negotiated.dtmf.as_ref()?.pt;
        self.packet(now, source, seq, ts, marker, pt, &event.to_bytes())
    }

    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        now: Instant,
        source: SourceId,
        seq: u16,
        ts: u32,
        marker: bool,
        pt: u8,
        payload: &[u8],
    ) -> Option<(SocketAddr, &[u8])> {
        if !self.may_send() {
            return None;
        }
        let to = self.latch.target()?;
        let h = self.out.rewrite(now, source, seq, ts, marker)?;
        rtp::write(
            &mut self.buf,
            h.marker,
            pt,
            h.seq,
            h.timestamp,
            h.ssrc,
            payload,
        );
        self.send_stats.packets = self.send_stats.packets.wrapping_add(1);
        self.send_stats.octets = self.send_stats.octets.wrapping_add(payload.len() as u32);
        self.send_stats.last_timestamp = h.timestamp;
        self.send_stats.last_sent = Some(now);
        Some((to, &self.buf))
    }

    /// An RTCP datagram (on the RTCP port, or multiplexed on the RTP port): reports from the latched
    /// peer are kept for the quality summary; anything else is ignored.
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if self.latch.target().is_none_or(|t| t.ip() != from.ip()) {
            return;
        }
        let our_ssrc = self.out.ssrc();
        for report in rtcp::parse(data) {
            if let Some(ntp) = report.sr_ntp_middle {
                self.recv_stats.record_sr(ntp, now);
            }
            if let Some(b) = report.blocks.into_iter().find(|b| b.ssrc == our_ssrc) {
                self.peer_report = Some(b);
            }
        }
    }

    /// Our RTCP report when one is due: where to send it (the peer's RTP port + 1, RFC 3550 §11) and
    /// the bytes.
    pub fn poll_rtcp(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if now < self.next_rtcp {
            return None;
        }
        self.next_rtcp = now + RTCP_INTERVAL;
        let target = self.latch.target()?;
        let to = SocketAddr::new(target.ip(), target.port().wrapping_add(1));
        let block = self.recv_stats.report_block(now);
        let rate = self.negotiated.codec.rate;
        Some((
            to,
            rtcp::write_report(self.out.ssrc(), &self.send_stats, block, now, rate),
        ))
    }

    /// Loss and jitter so far.
    pub fn quality(&mut self, now: Instant) -> LegQuality {
        let mut stats = self.recv_stats.clone();
        let block = stats.report_block(now).unwrap_or_default();
        let rate = self.negotiated.codec.rate.max(1);
        LegQuality {
            lost_by_us: block.cumulative_lost,
            jitter_ms: block.jitter * 1000 / rate,
            peer_report: self.peer_report,
        }
    }

    /// When something is next due: the media timeout or our next RTCP report.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.flow.poll_timeout(), Some(self.next_rtcp)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flow.handle_timeout(now);
    }

    /// Flow events (media flows / timed out), until `None`.
    pub fn poll_event(&mut self) -> Option<FlowEvent> {
        self.flow.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sdp::Format;

    fn negotiated(remote: &str, dir: Direction) -> Negotiated {
        Negotiated {
            remote: Some(remote.parse().unwrap()),
            codec: Format::pcmu(),
            dtmf: Some(Format {
                pt: 101,
                ..Format::telephone_event()
            }),
            ptime_ms: 20,
            peer_direction: dir,
        }
    }

    fn pkt(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        rtp::write(&mut b, false, pt, seq, ts, 77, payload);
        b
    }

    #[test]
    fn audio_and_digits_in_latched_packets_out() {
        let t0 = Instant::now();
        let phone: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let mut leg = RtpLeg::new(
            t0,
            negotiated("127.0.0.1:6000", Direction::SendRecv),
            5,
            RtpLegTimers::default(),
        );
        assert_eq!(
            leg.handle_datagram(t0, phone, &pkt(0, 1, 160, &[0xff; 160])),
            RtpIn::Audio {
                seq: 1,
                timestamp: 160,
                payload: &[0xff; 160]
            }
        );
        assert_eq!(leg.poll_event(), Some(FlowEvent::Flowing));
        let ev = DtmfEvent {
            code: 5,
            end: false,
            volume: 10,
            duration: 160,
        };
        let RtpIn::Dtmf { digit, .. } =
            leg.handle_datagram(t0, phone, &pkt(101, 2, 320, &ev.to_bytes()))
        else {
            panic!()
        };
        assert_eq!(digit, Some('5'));
        assert_eq!(
            leg.handle_datagram(t0, phone, &pkt(96, 3, 480, &[0; 10])),
            RtpIn::Nothing,
            "unknown payload type"
        );
        assert_eq!(
            leg.handle_datagram(
                t0,
                "127.0.0.9:1".parse().unwrap(),
                &pkt(0, 4, 640, &[0; 160])
            ),
            RtpIn::Nothing,
            "stranger"
        );
        let (to, bytes) = leg
            .audio_packet(t0, 1, 100, 16000, false, &[1, 2, 3])
            .unwrap();
        assert_eq!(to, phone);
        let v = RtpView::parse(bytes).unwrap();
        assert_eq!((v.pt, v.ssrc, v.payload), (0, 5, &[1u8, 2, 3][..]));
    }

    #[test]
    fn record_quality_counts_the_packets_that_never_came() {
        let t0 = Instant::now();
        let phone: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let mut leg = RtpLeg::new(
            t0,
            negotiated("127.0.0.1:6000", Direction::SendRecv),
            5,
            RtpLegTimers::default(),
        );
        assert_eq!(leg.record_quality(), None, "nothing received yet");
        for seq in [1u16, 2, 3, 5, 6] {
            let at = t0 + Duration::from_millis(20 * u64::from(seq));
            leg.handle_datagram(at, phone, &pkt(0, seq, 160 * u32::from(seq), &[0xff; 160]));
        }
        let q = leg.record_quality().unwrap();
        assert_eq!((q.expected, q.lost), (6, 1));
        assert!(q.jitter_ms < 1.0, "{q:?}");
    }

    #[test]
    fn a_leg_born_parked_waits_without_timing_out() {
        // Found by the interop fault test: the agent side starts `inactive` while the caller is
        // in the IVR or the queue; it must not time out on that silence.
        let t0 = Instant::now();
        let timers = RtpLegTimers {
            media_timeout: Duration::from_secs(3),
            ..RtpLegTimers::default()
        };
        let mut parked = RtpLeg::new(
            t0,
            negotiated("127.0.0.1:9", Direction::Inactive),
            5,
            timers,
        );
        let mut live = RtpLeg::new(
            t0,
            negotiated("127.0.0.1:9", Direction::SendRecv),
            6,
            timers,
        );
        let later = t0 + Duration::from_secs(60);
        parked.handle_timeout(later);
        live.handle_timeout(later);
        assert_eq!(parked.poll_event(), None, "a parked leg is not lost");
        assert_eq!(
            live.poll_event(),
            Some(FlowEvent::TimedOut),
            "a silent live leg is"
        );
    }

    #[test]
    fn nothing_is_sent_while_the_peer_holds_us() {
        let t0 = Instant::now();
        let mut leg = RtpLeg::new(
            t0,
            negotiated("127.0.0.1:6000", Direction::SendRecv),
            5,
            RtpLegTimers::default(),
        );
        assert!(leg.audio_packet(t0, 1, 1, 160, false, &[0]).is_some());
        leg.update(t0, negotiated("127.0.0.1:6000", Direction::SendOnly));
        assert!(leg.audio_packet(t0, 1, 2, 320, false, &[0]).is_none());
        leg.update(t0, negotiated("127.0.0.1:6000", Direction::SendRecv));
        let (_, b) = leg.audio_packet(t0, 1, 3, 480, false, &[0]).unwrap();
        assert_eq!(
            RtpView::parse(b).unwrap().seq.wrapping_sub(1),
            2,
            "gap from the held packet kept"
        );
    }
}
