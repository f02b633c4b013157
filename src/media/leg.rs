//! One leg of a call's media, whatever its kind: a browser (WebRTC through str0m) or a plain RTP
//! peer (a phone or a trunk). The differences stay here: how a leg's RTP time maps to the call's
//! 8 kHz media time, how a frame or a key press is sent toward it, how its receive quality is read.
//! [`super::call_media::CallMedia`] holds any number of them. Sans-IO.

use super::browser_leg::{AudioCodec, BrowserEvent, BrowserLeg, BrowserLegError, BrowserOutput};
use super::dtmf::{self, DtmfEvent};
use super::rewrite::{OutboundStream, SourceId};
use super::rtcp::ReceiveStats;
use super::rtp_leg::RtpLeg;
use super::sdp::{Format, Negotiated};
use crate::records::cdr::Quality;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A leg to add to a call.
pub enum NewLeg {
    /// An answered browser leg.
    Browser(Box<BrowserLeg>),
    /// A plain RTP leg with what was negotiated (a parked leg until the peer's SDP is known).
    Rtp(Negotiated),
}

impl std::fmt::Debug for NewLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewLeg::Browser(_) => f.write_str("Browser"),
            NewLeg::Rtp(n) => write!(f, "Rtp({:?})", n.remote),
        }
    }
}

/// The browser's side of a leg: str0m plus the state we keep around it.
pub struct BrowserSide {
    /// The peer connection.
    pub leg: BrowserLeg,
    /// Timestamps of what we send (str0m numbers the packets).
    out: OutboundStream,
    /// The first RTP time seen from the browser: its media time counts from it.
    base: Option<u64>,
    /// Browser clock ticks per 8 kHz tick: 1 for G.711, 6 for Opus.
    ratio: u32,
    connected: bool,
    flowing: bool,
    /// str0m's next deadline.
    pub timeout: Option<Instant>,
    /// Set when ICE says the browser is gone (its consent lapsed): the leg is lost at this
    /// instant unless the browser comes back first (an ICE restart after a network change) with a
    /// packet, which clears it. The window is the media timeout (`media.media_timeout_secs`).
    pub recover_until: Option<Instant>,
    rx: ReceiveStats,
    epoch: Option<Instant>,
}

impl BrowserSide {
    fn new(leg: BrowserLeg) -> Self {
        let rate = leg.codec().map_or(8000, AudioCodec::clock_rate);
        BrowserSide {
            leg,
            out: OutboundStream::new(0, rate, rate / 50),
            base: None,
            ratio: rate / 8000,
            connected: false,
            flowing: false,
            timeout: None,
            recover_until: None,
            rx: ReceiveStats::default(),
            epoch: None,
        }
    }

    fn rate(&self) -> u32 {
        self.leg.codec().map_or(8000, AudioCodec::clock_rate)
    }

    /// A browser RTP time as the call's 8 kHz media time, counted from the first one seen.
    pub fn media_time(&mut self, ticks: u64) -> u32 {
        let base = *self.base.get_or_insert(ticks);
        dtmf::rescale(ticks.wrapping_sub(base) as u32, self.rate(), 8000)
    }

    /// DTLS is up.
    pub fn set_connected(&mut self) {
        self.connected = true;
    }

    /// An audio frame arrived: counted for the record. True the first time media really flows.
    pub fn audio_arrived(&mut self, now: Instant, seq: u16, last_seq: u16, ticks: u64) -> bool {
        let epoch = *self.epoch.get_or_insert(now);
        let rate = self.rate();
        self.rx.record(0, seq, ticks as u32, now, epoch, rate);
        if last_seq != seq {
            self.rx.record_untimed(0, seq.wrapping_add(1), last_seq);
        }
        let first = self.connected && !self.flowing;
        self.flowing |= first;
        first
    }

    /// A telephone-event packet arrived: its sequence numbers are counted, or they would read as loss.
    pub fn event_arrived(&mut self, seq: u16, last_seq: u16) {
        self.rx.record_untimed(0, seq, last_seq);
    }
}

/// A leg's media, by kind.
pub enum LegMedia {
    /// A browser.
    Browser(Box<BrowserSide>),
    /// A plain RTP peer.
    Rtp(Box<RtpLeg>),
}

/// Datagrams legs produced, (to, bytes, toward the RTCP socket), with spare buffers: a plain RTP
/// leg's packets are copied into buffers the shell gave back after sending them
/// ([`TxQueue::recycle`]), so relaying allocates nothing per packet.
#[derive(Debug, Default)]
pub struct TxQueue {
    items: Vec<(SocketAddr, Vec<u8>, bool)>,
    spare: Vec<Vec<u8>>,
}

/// Spare buffers kept per call (a round sends a few packets per leg).
const SPARE_BUFFERS: usize = 8;

impl TxQueue {
    /// A datagram in a buffer of its own.
    pub fn push(&mut self, to: SocketAddr, data: Vec<u8>, rtcp: bool) {
        self.items.push((to, data, rtcp));
    }

    /// A datagram copied into a spare buffer.
    pub fn push_copy(&mut self, to: SocketAddr, bytes: &[u8], rtcp: bool) {
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(bytes);
        self.items.push((to, v, rtcp));
    }

    /// The datagrams, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (SocketAddr, Vec<u8>, bool)> {
        self.items.drain(..)
    }

    /// A buffer the shell has sent, to be reused.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && buf.capacity() <= 2048 {
            self.spare.push(buf);
        }
    }
}

/// What sending toward a leg produced besides datagrams.
pub type BrowserEvents = VecDeque<BrowserEvent>;

impl LegMedia {
    /// A leg for `new`; an RTP leg sends with `ssrc`.
    pub fn new(now: Instant, new: NewLeg, ssrc: u32, timers: super::rtp_leg::RtpLegTimers) -> Self {
        match new {
            NewLeg::Browser(b) => LegMedia::Browser(Box::new(BrowserSide::new(*b))),
            NewLeg::Rtp(n) => LegMedia::Rtp(Box::new(RtpLeg::new(now, n, ssrc, timers))),
        }
    }

    /// The codec the leg sends and expects.
    pub fn codec(&self) -> Option<AudioCodec> {
        match self {
            LegMedia::Browser(b) => b.leg.codec(),
            LegMedia::Rtp(r) => codec_of(&r.negotiated().codec),
        }
    }

    /// The leg's RTP clock ticks per 8 kHz tick.
    pub fn ratio(&self) -> u32 {
        match self {
            LegMedia::Browser(b) => b.ratio,
            LegMedia::Rtp(_) => 1,
        }
    }

    /// What the gateway received on this leg (for the call record).
    pub fn quality(&self) -> Option<Quality> {
        match self {
            LegMedia::Browser(b) => b.rx.quality(b.rate()),
            LegMedia::Rtp(r) => r.record_quality(),
        }
    }

    /// The leg's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            LegMedia::Browser(b) => match (b.timeout, b.recover_until) {
                (Some(a), Some(d)) => Some(a.min(d)),
                (a, d) => a.or(d),
            },
            LegMedia::Rtp(r) => r.poll_timeout(),
        }
    }

    /// Sends one encoded frame from `source` (its seq, and its timestamp in this leg's clock).
    /// Datagrams go to `out` as (to, bytes, rtcp); a browser's events to `events`.
    #[allow(clippy::too_many_arguments)]
    pub fn send_audio(
        &mut self,
        now: Instant,
        source: SourceId,
        seq: u16,
        ts: u32,
        frame: &[u8],
        out: &mut TxQueue,
        events: &mut BrowserEvents,
    ) -> Result<(), BrowserLegError> {
        match self {
            LegMedia::Rtp(r) => {
                if let Some((to, bytes)) = r.audio_packet(now, source, seq, ts, false, frame) {
                    out.push_copy(to, bytes, false);
                }
                Ok(())
            }
            LegMedia::Browser(b) => {
                if let Some(h) = b.out.rewrite(now, source, seq, ts, false) {
                    b.leg.send_audio(now, u64::from(h.timestamp), frame)?;
                }
                drain_browser(b, out, events)
            }
        }
    }

    /// Sends one RFC 4733 packet of a key press from `source` (its seq; `ts8` in 8 kHz media time;
    /// the duration in `rate` ticks). A browser gets the whole press once, at its end.
    #[allow(clippy::too_many_arguments)]
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        source: SourceId,
        seq: u16,
        ts8: u32,
        marker: bool,
        event: DtmfEvent,
        rate: u32,
        out: &mut TxQueue,
        events: &mut BrowserEvents,
    ) -> Result<(), BrowserLegError> {
        match self {
            LegMedia::Rtp(r) => {
                let to_rate = r.negotiated().dtmf.as_ref().map_or(8000, |f| f.rate);
                let ev = event.rescaled(rate, to_rate);
                let ts = dtmf::rescale(ts8, 8000, r.negotiated().codec.rate);
                if let Some((to, bytes)) = r.dtmf_packet(now, source, seq, ts, marker, ev) {
                    out.push_copy(to, bytes, false);
                }
                Ok(())
            }
            LegMedia::Browser(b) => {
                if !event.end {
                    return Ok(());
                }
                let ms = u64::from(event.duration) * 1000 / u64::from(rate.max(1));
                let ticks = u64::from(b.out.current_timestamp(now));
                b.leg
                    .send_dtmf(now, ticks, event.code, Duration::from_millis(ms))?;
                drain_browser(b, out, events)
            }
        }
    }
}

/// Moves a browser's queued datagrams to `out` and its events to `events`, up to its next deadline.
pub fn drain_browser(
    b: &mut BrowserSide,
    out: &mut TxQueue,
    events: &mut BrowserEvents,
) -> Result<(), BrowserLegError> {
    // str0m asks for its timeout "now" after most writes (its send queue moves on a timeout):
    // served here at once, rather than by a round of the worker's timer for the whole call.
    let mut due_now = 0;
    loop {
        match b.leg.poll_output()? {
            BrowserOutput::Timeout(t) if t <= b.leg.now() && due_now < 4 => {
                due_now += 1;
                let now = b.leg.now();
                b.leg.handle_timeout(now)?;
            }
            BrowserOutput::Timeout(t) => {
                b.timeout = Some(t);
                return Ok(());
            }
            BrowserOutput::Transmit { to, data, .. } => out.push(to, data, false),
            BrowserOutput::Event(e) => events.push_back(e),
        }
    }
}

/// The browser-leg codec matching a SIP-side format.
/// Called for every packet: compares without allocating.
pub fn codec_of(f: &Format) -> Option<AudioCodec> {
    if f.name.eq_ignore_ascii_case("PCMU") {
        Some(AudioCodec::Pcmu)
    } else if f.name.eq_ignore_ascii_case("PCMA") {
        Some(AudioCodec::Pcma)
    } else {
        None
    }
}

#[cfg(test)]
mod tx_tests {
    use super::TxQueue;
    use std::net::SocketAddr;

    #[test]
    fn a_sent_buffer_carries_the_next_packet() {
        let to = SocketAddr::from(([127, 0, 0, 1], 4000));
        let mut q = TxQueue::default();
        q.push_copy(to, &[1; 172], false);
        let (_, first, _) = q.drain().next().unwrap();
        let at = first.as_ptr();
        q.recycle(first);
        q.push_copy(to, &[2; 100], false);
        let sent: Vec<_> = q.drain().collect();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1, vec![2u8; 100]);
        assert_eq!(sent[0].1.as_ptr(), at, "the same buffer, no new allocation");
        // Oversized buffers are not kept.
        q.recycle(vec![0; 4096]);
        q.push_copy(to, &[3], false);
        assert!(q.drain().next().unwrap().1.capacity() < 4096);
    }
}
