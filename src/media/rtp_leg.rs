//! The SIP side's media leg: plain RTP/AVP toward a phone or trunk, with symmetric-RTP latching, one
//! outgoing stream whose seq/ts survive source switches, RFC 4733 digits, hold, and the media-flow and
//! timeout state. Sans-IO: datagrams and time in, packets and events out.

use super::dtmf::{DtmfEvent, DtmfReceiver};
use super::flow::{FlowEvent, FlowMonitor};
use super::latch::{Latch, LatchVerdict};
use super::rewrite::{OutboundStream, SourceId};
use super::rtp::{self, RtpView};
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
}

impl RtpLeg {
    /// A leg for the negotiated stream, sending with `ssrc`.
    pub fn new(now: Instant, negotiated: Negotiated, ssrc: u32, timers: RtpLegTimers) -> Self {
        let frame = negotiated.codec.rate / 1000 * negotiated.ptime_ms;
        RtpLeg {
            latch: Latch::new(now, negotiated.remote, timers.relatch_grace, 3),
            out: OutboundStream::new(ssrc, negotiated.codec.rate, frame),
            dtmf_rx: DtmfReceiver::new(),
            flow: FlowMonitor::new(now, true, timers.media_timeout, timers.hold_timeout),
            buf: Vec::with_capacity(1500),
            negotiated,
        }
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
        let Ok(p) = RtpView::parse(data) else {
            return RtpIn::Nothing;
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
        Some((to, &self.buf))
    }

    /// When the media timeout would fire.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.flow.poll_timeout()
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
