//! One call's media with any number of legs (browsers and plain RTP peers alike), sans-IO.
//!
//! A [`RouteMatrix`] says who hears whom. A listener that hears exactly one source is fed packet by
//! packet (relayed untouched when the codecs match, transcoded otherwise: the two-party fast path);
//! one that hears several gets their decoded audio mixed on the call's 20 ms clock
//! ([`super::mixer`]). A source played to a leg (prompt, music, tone) replaces what it hears. Each
//! leg's outgoing stream keeps one SSRC with continuous sequence numbers and timestamps across every
//! switch (relay ⇄ mix ⇄ prompt). RFC 4733 digits reach the legs that hear the sender and are
//! reported once; flow, media timeouts and receive quality are per leg.
//!
//! Drive it with `handle_*` (datagrams, commands, time), then drain [`CallMedia::poll_output`] until
//! [`MediaOutput::Timeout`]. It owns no socket and no task, so one task can drive many calls.

use super::browser_leg::{BrowserEvent, BrowserLegError};
use super::dtmf::{self, DtmfEvent, EventPacket};
use super::flow::FlowEvent;
use super::leg::{BrowserEvents, LegMedia, NewLeg, TxQueue};
use super::mixer::SourceFifo;
use super::rewrite::SourceId;
use super::routes::{Feed, Gain, LegId, RouteMatrix};
use super::rtp_leg::{RtpIn, RtpLeg, RtpLegTimers};
use super::sdp::Negotiated;
use super::source::{Playback, Source, FRAME};
use super::transcode::Transcoder;
use crate::records::cdr::Quality;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the call should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// Media really flows on this leg (DTLS up and a packet in, or an RTP packet in).
    Flowing(LegId),
    /// A DTMF digit from this leg (also relayed to the legs that hear it), once per key press.
    Digit(LegId, char),
    /// This leg is gone (ICE consent lost, a WebRTC failure, or media timeout).
    Lost(LegId),
    /// A prompt played to this leg has ended (it now hears silence until told otherwise).
    PromptDone(LegId),
}

/// What the shell should do next.
#[derive(Debug)]
pub enum MediaOutput {
    /// Send `data` from `leg`'s socket (its RTCP socket when `rtcp`) to `to`.
    Transmit {
        /// Whose socket.
        leg: LegId,
        /// The leg's RTCP socket (RTP port + 1) rather than its RTP socket.
        rtcp: bool,
        /// Destination.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Something happened.
    Event(MediaEvent),
    /// A recording tap: one decoded 8 kHz frame of what `from` said (see [`CallMedia::set_tap`]).
    Tap {
        /// Whose voice.
        from: LegId,
        /// Its media time: the leg's RTP time of the frame at 8 kHz (a browser's counted from its
        /// first packet), so a recorder can place it and fill what never came with silence.
        at: u32,
        /// The samples.
        pcm: Vec<i16>,
    },
    /// Nothing to do before this instant.
    Timeout(Instant),
}

/// The mixer's source id in the legs' outgoing streams.
const MIX_SOURCE: SourceId = u32::MAX;
/// Source ids of prompts and generated digits start here (legs use their own ids below it).
const FIRST_LOCAL_SOURCE: SourceId = 1 << 24;

/// A key press as heard from a leg.
#[derive(Debug, Clone, Copy)]
struct HeardDtmf {
    digit: Option<char>,
    event: DtmfEvent,
    /// The clock of `event.duration`.
    rate: u32,
    seq: u16,
    ts8: u32,
    marker: bool,
}

/// A generated RFC 4733 packet waiting for its time (a digit that came out of band).
struct Scheduled {
    due: Instant,
    to: LegId,
    source: SourceId,
    seq: u16,
    ts8: u32,
    packet: EventPacket,
}

struct Slot {
    id: LegId,
    media: LegMedia,
    feed: Feed,
    /// Some listener mixes this leg's audio: it is decoded into `fifo`.
    mixed: bool,
    fifo: SourceFifo,
    playing: Option<Playback>,
    /// Decodes this leg's audio (for mixes, taps, other codecs).
    dec: Transcoder,
    /// Encodes toward this leg.
    enc: Transcoder,
    /// The timestamp of the last key press from this leg re-originated toward browsers.
    relayed_end: Option<u32>,
    /// While a generated key press goes out toward this leg, its audio pauses.
    dtmf_until: Option<Instant>,
    /// This leg's key presses are reported but passed on to nobody (an agent's recording code).
    keep_keys: bool,
    lost: bool,
}

/// One call's media. See the module docs for the drive contract.
pub struct CallMedia {
    legs: Vec<Slot>,
    routes: RouteMatrix,
    timers: RtpLegTimers,
    out: VecDeque<MediaOutput>,
    /// Browser events waiting to be handled (events surface while sending, too).
    pending: VecDeque<(LegId, BrowserEvent)>,
    tx: TxQueue,
    events: BrowserEvents,
    scheduled: Vec<Scheduled>,
    tap: bool,
    next_source: SourceId,
    /// The next mix tick, while any listener mixes.
    mix_at: Option<Instant>,
    mix_seq: u16,
    mix_ts: u32,
    pcm: Vec<i16>,
    frames: Vec<[i16; FRAME]>,
    frame: [i16; FRAME],
    /// Receive quality of legs already removed.
    departed: Vec<(LegId, Option<Quality>)>,
}

impl CallMedia {
    /// A call with no legs yet; RTP legs get `timers`.
    pub fn new(timers: RtpLegTimers) -> Self {
        CallMedia {
            legs: Vec::new(),
            routes: RouteMatrix::new(),
            timers,
            out: VecDeque::new(),
            pending: VecDeque::new(),
            tx: TxQueue::default(),
            events: VecDeque::new(),
            scheduled: Vec::new(),
            tap: false,
            next_source: FIRST_LOCAL_SOURCE,
            mix_at: None,
            mix_seq: 0,
            mix_ts: 0,
            pcm: Vec::with_capacity(960),
            frames: Vec::new(),
            frame: [0; FRAME],
            departed: Vec::new(),
        }
    }

    /// Adds a leg (replacing one with the same id). It hears nobody until routed.
    pub fn add_leg(&mut self, now: Instant, id: LegId, new: NewLeg, ssrc: u32) {
        self.remove_leg(now, id);
        let media = LegMedia::new(now, new, ssrc, self.timers);
        self.legs.push(Slot {
            id,
            media,
            feed: Feed::Silent,
            mixed: false,
            fifo: SourceFifo::default(),
            playing: None,
            dec: Transcoder::new(),
            enc: Transcoder::new(),
            relayed_end: None,
            dtmf_until: None,
            keep_keys: false,
            lost: false,
        });
        self.refeed(now);
    }

    /// Removes a leg and its routes; its receive quality is kept for [`CallMedia::qualities`].
    pub fn remove_leg(&mut self, now: Instant, id: LegId) {
        if let Some(i) = self.index(id) {
            let slot = self.legs.remove(i);
            self.departed.push((id, slot.media.quality()));
            self.routes.remove_leg(id);
            self.scheduled.retain(|s| s.to != id);
            self.refeed(now);
        }
    }

    /// The legs, in the order they were added.
    pub fn leg_ids(&self) -> Vec<LegId> {
        self.legs.iter().map(|s| s.id).collect()
    }

    /// `to` hears `from` at `gain` (`None`: not at all).
    pub fn set_route(&mut self, now: Instant, from: LegId, to: LegId, gain: Option<Gain>) {
        self.routes.set(from, to, gain);
        self.refeed(now);
    }

    /// The routes.
    pub fn routes(&self) -> &RouteMatrix {
        &self.routes
    }

    /// Plays `source` to `leg` from `now` on, in place of what it hears.
    pub fn play(&mut self, now: Instant, leg: LegId, source: Source) {
        let id = self.fresh_source();
        if let Some(s) = self.slot_mut(leg) {
            s.playing = Some(Playback::new(now, source, id));
        }
    }

    /// Plays `source` to every leg from `now` on, each in place of what it hears.
    pub fn play_all(&mut self, now: Instant, source: Source) {
        for leg in self.leg_ids() {
            self.play(now, leg, source.clone());
        }
    }

    /// `leg` hears its routes again.
    pub fn stop_playing(&mut self, leg: LegId) {
        if let Some(s) = self.slot_mut(leg) {
            s.playing = None;
        }
    }

    /// Starts or stops the recording tap: every audio frame a leg sends is also handed out decoded,
    /// as [`MediaOutput::Tap`].
    pub fn set_tap(&mut self, on: bool) {
        self.tap = on;
    }

    /// A new offer/answer for an RTP leg (re-INVITE, or the peer's answer).
    pub fn update_rtp(&mut self, now: Instant, leg: LegId, negotiated: Negotiated) {
        if let Some(r) = self.rtp_mut(leg) {
            r.update(now, negotiated);
        }
    }

    /// The peer of an RTP leg signals from `ip`: media from that host latches at once.
    pub fn trust(&mut self, leg: LegId, ip: std::net::IpAddr) {
        if let Some(r) = self.rtp_mut(leg) {
            r.trust(ip);
        }
    }

    /// An RTP leg (for tests and re-INVITEs).
    pub fn rtp_mut(&mut self, leg: LegId) -> Option<&mut RtpLeg> {
        match self.slot_mut(leg).map(|s| &mut s.media) {
            Some(LegMedia::Rtp(r)) => Some(r),
            _ => None,
        }
    }

    /// A trickled ICE candidate for a browser leg.
    pub fn add_remote_candidate(&mut self, leg: LegId, c: &str) -> Result<(), BrowserLegError> {
        match self.slot_mut(leg).map(|s| &mut s.media) {
            Some(LegMedia::Browser(b)) => b.leg.add_remote_candidate(c),
            _ => Ok(()),
        }
    }

    /// Whether `leg`'s key presses are passed on (they are always reported).
    pub fn keep_keys(&mut self, leg: LegId, keep: bool) {
        if let Some(s) = self.slot_mut(leg) {
            s.keep_keys = keep;
        }
    }

    /// A new offer from a browser leg (an ICE restart): its answer. The leg's streams go on.
    pub fn reoffer(&mut self, leg: LegId, offer: &str) -> Result<String, BrowserLegError> {
        match self.slot_mut(leg).map(|s| &mut s.media) {
            Some(LegMedia::Browser(b)) => b.leg.reoffer(offer),
            _ => Err(BrowserLegError::Refused(
                "not a browser leg of this call".into(),
            )),
        }
    }

    /// A datagram's buffer the shell has sent: reused for the next packet a plain RTP leg sends.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.tx.recycle(buf);
    }

    /// A browser leg's ICE ufrag (it changes with an ICE restart).
    pub fn browser_ufrag(&self, leg: LegId) -> Option<&str> {
        match &self.legs[self.index(leg)?].media {
            LegMedia::Browser(b) => Some(b.leg.ice_ufrag()),
            LegMedia::Rtp(_) => None,
        }
    }

    /// Receive quality of every leg the call had, present and removed.
    pub fn qualities(&self) -> Vec<(LegId, Option<Quality>)> {
        let mut q = self.departed.clone();
        q.extend(self.legs.iter().map(|s| (s.id, s.media.quality())));
        q
    }

    /// A datagram on `leg`'s RTP socket (`local`: the socket's own address, for ICE).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        leg: LegId,
        from: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) {
        let Some(i) = self.index(leg) else { return };
        match &mut self.legs[i].media {
            LegMedia::Rtp(r) => {
                let codec = super::leg::codec_of(&r.negotiated().codec);
                let dtmf_rate = r.negotiated().dtmf.as_ref().map_or(8000, |f| f.rate);
                match r.handle_datagram(now, from, data) {
                    RtpIn::Audio {
                        seq,
                        timestamp,
                        payload,
                    } => {
                        if let Some(c) = codec {
                            self.hear_audio(now, i, c, seq, timestamp, payload);
                        }
                    }
                    RtpIn::Dtmf {
                        digit,
                        event,
                        seq,
                        timestamp,
                        marker,
                    } => {
                        let heard = HeardDtmf {
                            digit,
                            event,
                            rate: dtmf_rate,
                            seq,
                            ts8: timestamp,
                            marker,
                        };
                        self.hear_dtmf(now, i, heard);
                    }
                    RtpIn::Nothing => {}
                }
                self.drain_flow(i);
            }
            LegMedia::Browser(b) => {
                let r = b.leg.handle_receive(now, from, local, data);
                let r =
                    r.and_then(|_| super::leg::drain_browser(b, &mut self.tx, &mut self.events));
                self.after_send(i, r);
            }
        }
        self.handle_pending(now);
    }

    /// A datagram on `leg`'s RTCP socket.
    pub fn handle_rtcp(&mut self, now: Instant, leg: LegId, from: SocketAddr, data: &[u8]) {
        if let Some(r) = self.rtp_mut(leg) {
            r.handle_rtcp(now, from, data);
        }
    }

    /// A digit that arrived out of band on `leg` (SIP INFO): reported like any other, and sent as
    /// RFC 4733 to the legs that hear `leg`.
    pub fn handle_info_digit(&mut self, now: Instant, leg: LegId, digit: char, length: Duration) {
        let Some(code) = dtmf::digit_to_code(digit) else {
            return;
        };
        self.event(MediaEvent::Digit(leg, digit));
        if self.slot_mut(leg).is_some_and(|s| s.keep_keys) {
            return;
        }
        let ms = length.as_millis().clamp(40, 6000) as u32;
        let listeners: Vec<LegId> = self.routes.listeners(leg).collect();
        for to in listeners {
            let Some(j) = self.index(to) else { continue };
            let source = self.fresh_source();
            if let LegMedia::Browser(_) = self.legs[j].media {
                // A browser is given the whole press at once (str0m sends its packet series).
                let event = DtmfEvent {
                    code,
                    end: true,
                    volume: 10,
                    duration: (ms * 8) as u16,
                };
                let (tx, events) = (&mut self.tx, &mut self.events);
                let r = self.legs[j]
                    .media
                    .send_dtmf(now, source, 0, 0, true, event, 8000, tx, events);
                self.after_send(j, r);
                continue;
            }
            let Some(packets) = dtmf::event_packets(digit, ms, 50, 8000) else {
                continue;
            };
            let end = packets.last().map_or(0, |p| p.offset_ms);
            self.legs[j].dtmf_until = Some(now + Duration::from_millis(u64::from(end) + 20));
            for (n, packet) in packets.into_iter().enumerate() {
                self.scheduled.push(Scheduled {
                    due: now + Duration::from_millis(u64::from(packet.offset_ms)),
                    to,
                    source,
                    seq: n as u16,
                    ts8: 0,
                    packet,
                });
            }
        }
        self.send_scheduled(now);
        self.handle_pending(now);
    }

    /// Time passed: prompt frames and mixes due, generated digits, RTCP reports, str0m's timers,
    /// media timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.send_scheduled(now);
        for i in 0..self.legs.len() {
            self.play_due(now, i);
        }
        self.mix_due(now);
        for i in 0..self.legs.len() {
            match &mut self.legs[i].media {
                LegMedia::Rtp(r) => {
                    r.handle_timeout(now);
                    if let Some((to, data)) = r.poll_rtcp(now) {
                        self.tx.push(to, data, true);
                    }
                    self.flush_tx(i);
                    self.drain_flow(i);
                }
                LegMedia::Browser(b) => {
                    if b.recover_until.is_some_and(|t| t <= now) {
                        b.recover_until = None;
                        self.lose(i);
                        continue;
                    }
                    if b.timeout.is_some_and(|t| t > now) {
                        continue;
                    }
                    let r = b
                        .leg
                        .handle_timeout(now)
                        .and_then(|_| super::leg::drain_browser(b, &mut self.tx, &mut self.events));
                    self.after_send(i, r);
                }
            }
        }
        self.handle_pending(now);
    }

    /// The next thing to do, until [`MediaOutput::Timeout`].
    pub fn poll_output(&mut self) -> MediaOutput {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        let legs = self.legs.iter().flat_map(|s| {
            [
                s.media.poll_timeout(),
                s.playing.as_ref().map(Playback::next_due),
            ]
        });
        let t = legs
            .chain([self.mix_at])
            .chain(self.scheduled.iter().map(|s| Some(s.due)))
            .flatten()
            .min();
        MediaOutput::Timeout(t.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)))
    }

    /// A source id for a prompt or a generated digit, never a leg's.
    fn fresh_source(&mut self) -> SourceId {
        self.next_source = self.next_source.wrapping_add(1).max(FIRST_LOCAL_SOURCE);
        self.next_source
    }

    fn index(&self, id: LegId) -> Option<usize> {
        self.legs.iter().position(|s| s.id == id)
    }

    fn slot_mut(&mut self, id: LegId) -> Option<&mut Slot> {
        self.legs.iter_mut().find(|s| s.id == id)
    }

    fn event(&mut self, e: MediaEvent) {
        self.out.push_back(MediaOutput::Event(e));
    }

    /// Recomputes how every listener is fed and which sources are mixed, after a change.
    fn refeed(&mut self, now: Instant) {
        let present: Vec<LegId> = self.legs.iter().map(|s| s.id).collect();
        for s in &mut self.legs {
            s.feed = match self.routes.feed(s.id) {
                Feed::Relay(from) if !present.contains(&from) => Feed::Silent,
                f => f,
            };
        }
        let mixers: Vec<LegId> = self
            .legs
            .iter()
            .filter(|s| s.feed == Feed::Mix)
            .map(|s| s.id)
            .collect();
        for s in &mut self.legs {
            let mixed = mixers.iter().any(|&m| self.routes.gain(s.id, m).is_some());
            if !mixed {
                s.fifo.clear();
            }
            s.mixed = mixed;
        }
        if mixers.is_empty() {
            self.mix_at = None;
        } else if self.mix_at.is_none() {
            self.mix_at = Some(now + Duration::from_millis(20));
        }
    }

    /// Sends what a leg's send produced from its socket.
    fn flush_tx(&mut self, i: usize) {
        let leg = self.legs[i].id;
        for (to, data, rtcp) in self.tx.drain() {
            self.out.push_back(MediaOutput::Transmit {
                leg,
                rtcp,
                to,
                data,
            });
        }
    }

    /// After a leg was driven or sent to: its datagrams out, a browser's events queued, its
    /// failure reported.
    fn after_send(&mut self, i: usize, r: Result<(), BrowserLegError>) {
        self.flush_tx(i);
        let id = self.legs[i].id;
        for e in self.events.drain(..) {
            self.pending.push_back((id, e));
        }
        if let Err(e) = r {
            tracing::debug!(leg = %id, error = %e, "browser leg failed");
            self.lose(i);
        }
    }

    fn lose(&mut self, i: usize) {
        if !self.legs[i].lost {
            self.legs[i].lost = true;
            self.event(MediaEvent::Lost(self.legs[i].id));
        }
    }

    fn drain_flow(&mut self, i: usize) {
        let Slot {
            id, media, lost, ..
        } = &mut self.legs[i];
        let LegMedia::Rtp(r) = media else {
            return;
        };
        while let Some(e) = r.poll_event() {
            match e {
                FlowEvent::Flowing => {
                    self.out
                        .push_back(MediaOutput::Event(MediaEvent::Flowing(*id)));
                }
                FlowEvent::TimedOut if !*lost => {
                    *lost = true;
                    self.out
                        .push_back(MediaOutput::Event(MediaEvent::Lost(*id)));
                }
                FlowEvent::TimedOut => {}
            }
        }
    }
}

mod deliver;

#[cfg(test)]
mod tests;
