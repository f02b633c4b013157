//! One call's media: the browser leg bridged to the SIP leg. Audio is relayed untouched when both legs
//! use the same codec and transcoded (G.711 μ-law ↔ A-law here) when they differ; DTMF is relayed as
//! RFC 4733 with the other leg's payload type and clock, and every digit is reported once. Sans-IO:
//! the shell feeds datagrams and time and drains [`MediaSession::poll_output`].

use super::browser_leg::{AudioCodec, BrowserEvent, BrowserLeg, BrowserLegError, BrowserOutput};
use super::dtmf::{self, DtmfEvent};
use super::flow::FlowEvent;
use super::rewrite::{OutboundStream, SourceId};
use super::rtcp::ReceiveStats;
use super::rtp_leg::{RtpIn, RtpLeg};
use super::sdp::Format;
use super::source::{Due, Playback, Source, FRAME};
use super::transcode::Transcoder;
use crate::records::cdr::Quality;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Which of the session's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The browser leg's socket.
    Browser,
    /// The SIP leg's RTP socket.
    Sip,
    /// The SIP leg's RTCP socket (RTP port + 1).
    SipRtcp,
    /// The customer's own RTP leg, when the customer called in over SIP ([`super::rtp_bridge`]).
    Customer,
    /// That leg's RTCP socket.
    CustomerRtcp,
}

/// What the call controller should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// Media really flows on this side (DTLS up and a packet in, or an RTP packet in).
    Flowing(Side),
    /// A DTMF digit from this side (also relayed to the other), once per key press.
    Digit(Side, char),
    /// This side is gone (ICE consent lost, or media timeout): end the call.
    Lost(Side),
    /// A prompt played to the browser has ended (the browser now hears silence).
    PromptDone,
}

/// What the shell should do next.
#[derive(Debug)]
pub enum MediaOutput {
    /// Send `data` on the socket of `side` to `to`.
    Transmit {
        /// Which socket.
        side: Side,
        /// Destination.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Something happened.
    Event(MediaEvent),
    /// A recording tap: one decoded 8 kHz frame of what `from` said (enabled with
    /// [`MediaSession::set_tap`]).
    Tap {
        /// Whose voice.
        from: Side,
        /// The samples.
        pcm: Vec<i16>,
    },
    /// Nothing to do before this instant.
    Timeout(Instant),
}

/// The source id under which the browser's audio feeds the SIP leg's outgoing stream.
const FROM_BROWSER: SourceId = 1;
/// ... and the SIP leg's audio feeds the browser.
const FROM_SIP: SourceId = 2;

/// One call's bridged media.
pub struct MediaSession {
    /// What the gateway plays to the browser instead of the SIP leg's audio (`None`: the bridge).
    playing: Option<Playback>,
    next_source: SourceId,
    frame: [i16; FRAME],
    browser: BrowserLeg,
    sip: RtpLeg,
    /// The first browser RTP time seen: SIP-side timestamps count from it.
    browser_base: Option<u64>,
    /// Timestamps of what we send to the browser (str0m numbers the packets).
    to_browser: OutboundStream,
    out: VecDeque<MediaOutput>,
    transcoder: Transcoder,
    /// Browser clock ticks per SIP (8 kHz) tick: 1 for G.711, 6 for Opus.
    ratio: u32,
    browser_connected: bool,
    browser_flowing: bool,
    browser_timeout: Option<Instant>,
    /// Timestamp of the last SIP-side DTMF event relayed to the browser (its end comes 3 times).
    relayed_end: Option<u32>,
    /// A second transcoder for the recording tap (decoder state must not mix with the bridge's).
    tap: Option<Transcoder>,
    /// Receive statistics of the browser's audio (after SRTP), for the call record.
    browser_rx: ReceiveStats,
    /// The clock the browser's arrival times are counted from (its first audio packet).
    browser_epoch: Option<Instant>,
}

impl MediaSession {
    /// Bridges an answered browser leg to a SIP leg.
    pub fn new(browser: BrowserLeg, sip: RtpLeg) -> Self {
        let rate = browser.codec().map_or(8000, AudioCodec::clock_rate);
        MediaSession {
            playing: None,
            next_source: 10,
            frame: [0; FRAME],
            browser,
            sip,
            browser_base: None,
            to_browser: OutboundStream::new(0, rate, rate / 50),
            out: VecDeque::new(),
            transcoder: Transcoder::new(),
            ratio: rate / 8000,
            browser_connected: false,
            browser_flowing: false,
            browser_timeout: None,
            relayed_end: None,
            tap: None,
            browser_rx: ReceiveStats::default(),
            browser_epoch: None,
        }
    }

    /// What the gateway received from the browser so far (for the call record): packets expected
    /// from the sequence numbers, lost, and interarrival jitter in milliseconds.
    pub fn browser_quality(&self) -> Option<Quality> {
        self.browser_rx
            .quality(self.browser.codec().map_or(8000, AudioCodec::clock_rate))
    }

    /// Starts or stops the recording tap: every audio frame either side sends is also handed out
    /// decoded, as [`MediaOutput::Tap`].
    pub fn set_tap(&mut self, on: bool) {
        self.tap = on.then(Transcoder::new);
    }

    fn tap_frame(&mut self, from: Side, payload: &[u8], codec: AudioCodec) {
        if let Some(t) = self.tap.as_mut() {
            if let Ok(pcm) = t.decode(payload, codec) {
                let pcm = pcm.to_vec();
                self.out.push_back(MediaOutput::Tap { from, pcm });
            }
        }
    }

    /// A trickled ICE candidate from the browser.
    pub fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), BrowserLegError> {
        self.browser.add_remote_candidate(candidate)
    }

    /// The SIP leg (for re-INVITEs).
    pub fn sip_leg(&mut self) -> &mut RtpLeg {
        &mut self.sip
    }

    /// A datagram on the browser socket.
    pub fn handle_browser_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> Result<(), BrowserLegError> {
        self.browser.handle_receive(now, from, to, data)?;
        self.drain_browser(now)
    }

    /// A datagram on the SIP RTP socket.
    pub fn handle_sip_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), BrowserLegError> {
        match self.sip.handle_datagram(now, from, data) {
            RtpIn::Audio {
                seq,
                timestamp,
                payload,
            } => {
                let to = self.browser.codec();
                let from_codec = codec_of(&self.sip.negotiated().codec);
                if let Some(c) = from_codec {
                    self.tap_frame(Side::Sip, payload, c);
                }
                let bridged = self.playing.is_none();
                if let (Some(to), Some(from_codec), true) = (to, from_codec, bridged) {
                    // In the browser's clock (48 kHz for Opus): deltas stay exact across u32 wraps.
                    let ts = timestamp.wrapping_mul(self.ratio);
                    if let Some(h) = self.to_browser.rewrite(now, FROM_SIP, seq, ts, false) {
                        match self.transcoder.convert(payload, from_codec, to) {
                            Ok(frame) => {
                                self.browser
                                    .send_audio(now, u64::from(h.timestamp), frame)?
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "frame toward the browser dropped")
                            }
                        }
                    }
                }
            }
            RtpIn::Dtmf {
                digit,
                event,
                timestamp,
                ..
            } => {
                if let Some(d) = digit {
                    self.event(MediaEvent::Digit(Side::Sip, d));
                }
                // Re-originated toward the browser once the press is complete and its length known.
                if event.end && self.relayed_end != Some(timestamp) {
                    self.relayed_end = Some(timestamp);
                    let rate = self.sip.negotiated().dtmf.as_ref().map_or(8000, |f| f.rate);
                    let ms = u64::from(event.duration) * 1000 / u64::from(rate.max(1));
                    self.dtmf_to_browser(now, event.code, Duration::from_millis(ms))?;
                }
            }
            RtpIn::Nothing => {}
        }
        self.drain_sip_flow();
        self.drain_browser(now)
    }

    /// A digit that arrived out of band (SIP INFO `application/dtmf-relay`): sent to the browser as
    /// RFC 4733 and reported like any other digit.
    pub fn handle_sip_info_digit(
        &mut self,
        now: Instant,
        digit: char,
        duration: Duration,
    ) -> Result<(), BrowserLegError> {
        let Some(code) = dtmf::digit_to_code(digit) else {
            return Ok(());
        };
        self.event(MediaEvent::Digit(Side::Sip, digit));
        self.dtmf_to_browser(now, code, duration)
    }

    /// Plays `source` to the browser from `now` on, instead of the SIP leg's audio. The browser's
    /// stream stays one SSRC with continuous sequence numbers and timestamps across the switch.
    pub fn play_to_browser(&mut self, now: Instant, source: Source) {
        self.next_source += 1;
        self.playing = Some(Playback::new(now, source, self.next_source));
    }

    /// The browser hears the SIP leg again.
    pub fn bridge_to_browser(&mut self) {
        self.playing = None;
    }

    /// Sends the frames of the playing source that are due at `now` (20 ms apart).
    fn play_due(&mut self, now: Instant) -> Result<(), BrowserLegError> {
        let Some(codec) = self.browser.codec() else {
            return Ok(());
        };
        loop {
            let Some(playing) = self.playing.as_mut() else {
                return Ok(());
            };
            match playing.poll(now, &mut self.frame, FRAME as u32 * self.ratio) {
                Due::NotYet => return Ok(()),
                Due::Ended => self.event(MediaEvent::PromptDone),
                Due::Frame { at, id, seq, ts } => {
                    if let Some(h) = self.to_browser.rewrite(at, id, seq, ts, false) {
                        match self.transcoder.encode_pcm(&self.frame, codec) {
                            Ok(frame) => {
                                self.browser.send_audio(at, u64::from(h.timestamp), frame)?
                            }
                            Err(e) => tracing::debug!(error = %e, "prompt frame dropped"),
                        }
                    }
                }
            }
        }
    }

    /// A datagram on the SIP leg's RTCP socket (RTP port + 1).
    pub fn handle_sip_rtcp_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.sip.handle_rtcp(now, from, data);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), BrowserLegError> {
        self.play_due(now)?;
        self.browser.handle_timeout(now)?;
        self.sip.handle_timeout(now);
        if let Some((to, data)) = self.sip.poll_rtcp(now) {
            self.out.push_back(MediaOutput::Transmit {
                side: Side::SipRtcp,
                to,
                data,
            });
        }
        self.drain_sip_flow();
        self.drain_browser(now)
    }

    /// The next thing to do, until [`MediaOutput::Timeout`].
    pub fn poll_output(&mut self) -> MediaOutput {
        self.out.pop_front().unwrap_or_else(|| {
            let playing = self.playing.as_ref().map(Playback::next_due);
            let t = [self.browser_timeout, self.sip.poll_timeout(), playing]
                .into_iter()
                .flatten()
                .min();
            MediaOutput::Timeout(t.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)))
        })
    }

    fn event(&mut self, e: MediaEvent) {
        self.out.push_back(MediaOutput::Event(e));
    }

    fn dtmf_to_browser(
        &mut self,
        now: Instant,
        code: u8,
        duration: Duration,
    ) -> Result<(), BrowserLegError> {
        let ticks = u64::from(self.to_browser.current_timestamp(now));
        self.browser.send_dtmf(now, ticks, code, duration)?;
        self.drain_browser(now)
    }

    fn drain_sip_flow(&mut self) {
        while let Some(e) = self.sip.poll_event() {
            self.event(match e {
                FlowEvent::Flowing => MediaEvent::Flowing(Side::Sip),
                FlowEvent::TimedOut => MediaEvent::Lost(Side::Sip),
            });
        }
    }

    fn drain_browser(&mut self, now: Instant) -> Result<(), BrowserLegError> {
        loop {
            match self.browser.poll_output()? {
                BrowserOutput::Timeout(t) => {
                    self.browser_timeout = Some(t);
                    return Ok(());
                }
                BrowserOutput::Transmit { to, data, .. } => {
                    self.out.push_back(MediaOutput::Transmit {
                        side: Side::Browser,
                        to,
                        data,
                    })
                }
                BrowserOutput::Event(e) => self.on_browser_event(now, e),
            }
        }
    }

    fn on_browser_event(&mut self, now: Instant, e: BrowserEvent) {
        match e {
            BrowserEvent::Connected => self.browser_connected = true,
            BrowserEvent::Disconnected => self.event(MediaEvent::Lost(Side::Browser)),
            BrowserEvent::Dtmf {
                digit,
                code,
                end,
                volume,
                duration,
                ticks,
                seq,
                last_seq,
            } => {
                // Events share the audio's sequence numbers: counted, or they would read as loss.
                self.browser_rx.record_untimed(0, seq, last_seq);
                if let Some(d) = digit {
                    self.event(MediaEvent::Digit(Side::Browser, d));
                }
                let rate = self.sip.negotiated().dtmf.as_ref().map_or(8000, |f| f.rate);
                let duration =
                    (duration.as_millis() as u64 * u64::from(rate) / 1000).min(0xffff) as u16;
                let ev = DtmfEvent {
                    code,
                    end,
                    volume,
                    duration,
                };
                let ts = self.sip_timestamp(ticks);
                if let Some((to, bytes)) =
                    self.sip
                        .dtmf_packet(now, FROM_BROWSER, seq, ts, digit.is_some(), ev)
                {
                    self.out.push_back(MediaOutput::Transmit {
                        side: Side::Sip,
                        to,
                        data: bytes.to_vec(),
                    });
                }
            }
            BrowserEvent::Audio {
                codec,
                ticks,
                seq,
                last_seq,
                payload,
            } => {
                if self.browser_connected && !self.browser_flowing {
                    self.browser_flowing = true;
                    self.event(MediaEvent::Flowing(Side::Browser));
                }
                let epoch = *self.browser_epoch.get_or_insert(now);
                self.browser_rx
                    .record(0, seq, ticks as u32, now, epoch, codec.clock_rate());
                if last_seq != seq {
                    self.browser_rx
                        .record_untimed(0, seq.wrapping_add(1), last_seq);
                }
                self.tap_frame(Side::Browser, &payload, codec);
                let Some(to) = codec_of(&self.sip.negotiated().codec) else {
                    return;
                };
                let ts = self.sip_timestamp(ticks);
                let frame = match self.transcoder.convert(&payload, codec, to) {
                    Ok(frame) => frame,
                    Err(e) => return tracing::debug!(error = %e, "frame toward SIP dropped"),
                };
                if let Some((dest, bytes)) =
                    self.sip
                        .audio_packet(now, FROM_BROWSER, seq, ts, false, frame)
                {
                    self.out.push_back(MediaOutput::Transmit {
                        side: Side::Sip,
                        to: dest,
                        data: bytes.to_vec(),
                    });
                }
            }
        }
    }

    /// A browser RTP time (audio clock) as a SIP-side timestamp: counted from the first one seen and
    /// rescaled to the SIP codec's clock.
    fn sip_timestamp(&mut self, ticks: u64) -> u32 {
        let base = *self.browser_base.get_or_insert(ticks);
        let from = self.browser.codec().map_or(8000, AudioCodec::clock_rate);
        dtmf::rescale(
            ticks.wrapping_sub(base) as u32,
            from,
            self.sip.negotiated().codec.rate,
        )
    }
}

/// The browser-leg codec matching a SIP-side format.
/// Called for every packet: compares without allocating.
pub(super) fn codec_of(f: &Format) -> Option<AudioCodec> {
    if f.name.eq_ignore_ascii_case("PCMU") {
        Some(AudioCodec::Pcmu)
    } else if f.name.eq_ignore_ascii_case("PCMA") {
        Some(AudioCodec::Pcma)
    } else {
        None
    }
}
