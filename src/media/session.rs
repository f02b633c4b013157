//! One call's media: the browser leg bridged to the SIP leg. Audio is relayed untouched when both legs
//! use the same codec and transcoded (G.711 μ-law ↔ A-law here) when they differ; DTMF is relayed as
//! RFC 4733 with the other leg's payload type and clock, and every digit is reported once. Sans-IO:
//! the shell feeds datagrams and time and drains [`MediaSession::poll_output`].

use super::browser_leg::{AudioCodec, BrowserEvent, BrowserLeg, BrowserLegError, BrowserOutput};
use super::flow::FlowEvent;
use super::g711;
use super::rewrite::SourceId;
use super::rtp_leg::{RtpIn, RtpLeg};
use super::sdp::Format;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// Which of the session's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The browser leg's socket.
    Browser,
    /// The SIP leg's RTP socket.
    Sip,
}

/// What the call controller should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// Media really flows on this side (DTLS up and a packet in, or an RTP packet in).
    Flowing(Side),
    /// A DTMF digit from this side (also relayed to the other).
    Digit(Side, char),
    /// This side is gone (ICE consent lost, or media timeout): end the call.
    Lost(Side),
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
    /// Nothing to do before this instant.
    Timeout(Instant),
}

/// The source id under which the browser's audio feeds the SIP leg's outgoing stream.
const FROM_BROWSER: SourceId = 1;
/// ... and the SIP leg's audio feeds the browser.
const FROM_SIP: SourceId = 2;

/// One call's bridged media.
pub struct MediaSession {
    browser: BrowserLeg,
    sip: RtpLeg,
    browser_to_sip_ts: Option<u64>,
    to_browser: super::rewrite::OutboundStream,
    out: VecDeque<MediaOutput>,
    pcm: Vec<i16>,
    scratch: Vec<u8>,
    browser_flowing: bool,
    browser_connected_seen: bool,
    browser_timeout: Option<Instant>,
}

impl MediaSession {
    /// Bridges an answered browser leg to a SIP leg.
    pub fn new(browser: BrowserLeg, sip: RtpLeg) -> Self {
        let rate = browser.codec().map_or(8000, AudioCodec::clock_rate);
        MediaSession {
            browser,
            sip,
            browser_to_sip_ts: None,
            to_browser: super::rewrite::OutboundStream::new(0, rate, rate / 50),
            out: VecDeque::new(),
            pcm: Vec::with_capacity(960),
            scratch: Vec::with_capacity(960),
            browser_flowing: false,
            browser_connected_seen: false,
            browser_timeout: None,
        }
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
                let browser_codec = self.browser.codec();
                let sip_codec = codec_of(&self.sip.negotiated().codec);
                if let (Some(bc), Some(sc)) = (browser_codec, sip_codec) {
                    if let Some(h) = self
                        .to_browser
                        .rewrite(now, FROM_SIP, seq, timestamp, false)
                    {
                        let frame = adapt(payload, sc, bc, &mut self.pcm, &mut self.scratch);
                        let ticks = u64::from(h.timestamp);
                        self.browser.send_audio(now, ticks, frame)?;
                    }
                }
            }
            RtpIn::Dtmf { digit: Some(d), .. } => self
                .out
                .push_back(MediaOutput::Event(MediaEvent::Digit(Side::Sip, d))),
            _ => {}
        }
        self.drain_sip_flow();
        self.drain_browser(now)
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), BrowserLegError> {
        self.browser.handle_timeout(now)?;
        self.sip.handle_timeout(now);
        self.drain_sip_flow();
        self.drain_browser(now)
    }

    /// The next thing to do, until [`MediaOutput::Timeout`].
    pub fn poll_output(&mut self) -> MediaOutput {
        self.out.pop_front().unwrap_or_else(|| {
            let t = [self.browser_timeout, self.sip.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            MediaOutput::Timeout(
                t.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600)),
            )
        })
    }

    fn drain_sip_flow(&mut self) {
        while let Some(e) = self.sip.poll_event() {
            let ev = match e {
                FlowEvent::Flowing => MediaEvent::Flowing(Side::Sip),
                FlowEvent::TimedOut => MediaEvent::Lost(Side::Sip),
            };
            self.out.push_back(MediaOutput::Event(ev));
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
            BrowserEvent::Connected => self.browser_connected_seen = true,
            BrowserEvent::Disconnected => self
                .out
                .push_back(MediaOutput::Event(MediaEvent::Lost(Side::Browser))),
            BrowserEvent::Digit(d) => self
                .out
                .push_back(MediaOutput::Event(MediaEvent::Digit(Side::Browser, d))),
            BrowserEvent::Audio {
                codec,
                ticks,
                seq,
                payload,
            } => {
                if self.browser_connected_seen && !self.browser_flowing {
                    self.browser_flowing = true;
                    self.out
                        .push_back(MediaOutput::Event(MediaEvent::Flowing(Side::Browser)));
                }
                let Some(sc) = codec_of(&self.sip.negotiated().codec) else {
                    return;
                };
                let base = *self.browser_to_sip_ts.get_or_insert(ticks);
                let ts =
                    super::dtmf::rescale(ticks.wrapping_sub(base) as u32, codec.clock_rate(), 8000);
                let frame = adapt(&payload, codec, sc, &mut self.pcm, &mut self.scratch).to_vec();
                if let Some((to, bytes)) =
                    self.sip
                        .audio_packet(now, FROM_BROWSER, seq, ts, false, &frame)
                {
                    self.out.push_back(MediaOutput::Transmit {
                        side: Side::Sip,
                        to,
                        data: bytes.to_vec(),
                    });
                }
            }
        }
    }
}

/// The browser-leg codec matching a SIP-side format.
fn codec_of(f: &Format) -> Option<AudioCodec> {
    match f.name.to_ascii_uppercase().as_str() {
        "PCMU" => Some(AudioCodec::Pcmu),
        "PCMA" => Some(AudioCodec::Pcma),
        _ => None,
    }
}

/// `payload` in `from`, as `to`: the same bytes when the codecs match, else transcoded through PCM.
fn adapt<'a>(
    payload: &'a [u8],
    from: AudioCodec,
    to: AudioCodec,
    pcm: &mut Vec<i16>,
    out: &'a mut Vec<u8>,
) -> &'a [u8] {
    if from == to {
        return payload;
    }
    pcm.clear();
    match from {
        AudioCodec::Pcmu => g711::decode_ulaw(payload, pcm),
        AudioCodec::Pcma => g711::decode_alaw(payload, pcm),
        AudioCodec::Opus => return &[], // refused at setup until the Opus transcoder lands
    }
    out.clear();
    match to {
        AudioCodec::Pcmu => g711::encode_ulaw(pcm, out),
        AudioCodec::Pcma => g711::encode_alaw(pcm, out),
        AudioCodec::Opus => return &[],
    }
    out
}
