//! The browser leg: a str0m peer answering the widget's WebRTC offer (audio only), as ICE-lite with
//! host candidates on our advertised addresses, DTLS-SRTP as the answerer (RFC 5763). Sans-IO like
//! str0m itself: the shell hands in datagrams and time, and drains [`BrowserLeg::poll_output`].

use super::follow::{is_media, Follow};
use crate::media::dtmf::code_to_digit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::format::{Codec, CodecExtra, FormatParams};
use str0m::media::{Frequency, MediaTime, Mid, Pt, TelephoneEvent};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

/// Why a browser leg could not be set up or failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowserLegError {
    /// The offer is not SDP str0m can read.
    #[error("bad SDP offer: {0}")]
    BadOffer(String),
    /// The offer has no audio we can use (no PCMU/PCMA/Opus m-line, or no fingerprint).
    #[error("offer refused: {0}")]
    Refused(String),
    /// A trickled ICE candidate could not be parsed.
    #[error("bad ICE candidate: {0}")]
    BadCandidate(String),
    /// str0m reported an error while running.
    #[error("WebRTC: {0}")]
    Rtc(String),
}

/// Audio codecs the browser leg can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711 μ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// Opus, 48 kHz.
    Opus,
}

impl AudioCodec {
    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48_000,
            _ => 8_000,
        }
    }

    fn from_str0m(c: Codec) -> Option<Self> {
        match c {
            Codec::PCMU => Some(AudioCodec::Pcmu),
            Codec::PCMA => Some(AudioCodec::Pcma),
            Codec::Opus => Some(AudioCodec::Opus),
            _ => None,
        }
    }
}

/// What the browser leg reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserEvent {
    /// ICE and DTLS are up: SRTP can flow.
    Connected,
    /// ICE consent failed or the peer went away (RFC 7675): end the leg.
    Disconnected,
    /// One audio frame from the browser.
    Audio {
        /// Its codec.
        codec: AudioCodec,
        /// RTP timestamp in the codec's clock.
        ticks: u64,
        /// RTP sequence number of the (first) packet.
        seq: u16,
        /// ... and of the last one that made up the frame (the same for one packet).
        last_seq: u16,
        /// The encoded frame.
        payload: Arc<[u8]>,
    },
    /// One RFC 4733 telephone-event packet.
    Dtmf {
        /// The digit, on the first packet of a key press only.
        digit: Option<char>,
        /// Event code.
        code: u8,
        /// End bit.
        end: bool,
        /// Volume (0-63, -dBm0).
        volume: u8,
        /// Duration so far.
        duration: Duration,
        /// The event's RTP timestamp, in the audio codec's clock.
        ticks: u64,
        /// RTP sequence number.
        seq: u16,
        /// The last sequence number it stands for (repeated end packets may be merged).
        last_seq: u16,
    },
}

/// What the shell should do next.
#[derive(Debug)]
pub enum BrowserOutput {
    /// Send `data` from our socket `from` to `to`.
    Transmit {
        /// Our local address to send from.
        from: SocketAddr,
        /// The browser's address.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Something happened.
    Event(BrowserEvent),
    /// Nothing more to do before this instant: call [`BrowserLeg::handle_timeout`] then.
    Timeout(Instant),
}

/// The `a=mid` of the first accepted (port not 0) audio m-line of our answer.
fn accepted_audio_mid(answer: &str) -> Option<String> {
    let mut in_audio = false;
    for line in answer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split(' ');
            in_audio = parts.next() == Some("audio") && parts.next() != Some("0");
        } else if in_audio {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                return Some(mid.trim().to_string());
            }
        }
    }
    None
}

/// str0m's input for a UDP datagram, or `None` for bytes that are neither STUN, DTLS nor RTP.
fn receive_input(now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) -> Option<Input<'_>> {
    let contents = data.try_into().ok()?;
    Some(Input::Receive(
        now,
        Receive {
            proto: Protocol::Udp,
            source: from,
            destination: to,
            contents,
        },
    ))
}

/// The `a=ice-ufrag` of an SDP.
fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_string())
}

/// str0m set up for one audio stream and nothing else: no TWCC (no transport-wide sequence
/// numbers, no feedback), no video extensions, a send buffer of a few packets (every write is one
/// packet, drained at once; audio is never resent), a small reordering window.
fn lean_config() -> RtcConfig {
    let mut exts = ExtensionMap::empty();
    exts.set(1, Extension::AudioLevel);
    exts.set(4, Extension::RtpMid);
    RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .set_extension_map(exts)
        .set_send_buffer_audio(4)
        .set_send_buffer_video(1)
        .set_reordering_size_audio(5)
}

/// Checks a browser's offer (bounded before any parsing: a few kilobytes with a handful of
/// m-lines) and parses it.
fn parse_offer(offer: &str) -> Result<SdpOffer, BrowserLegError> {
    // Bounded before any parsing: a browser offer is a few kilobytes with a handful of m-lines.
    if offer.len() > 64 * 1024 {
        return Err(BrowserLegError::BadOffer("larger than 64 KiB".into()));
    }
    let m_lines = offer.lines().filter(|l| l.starts_with("m=")).count();
    if m_lines > 16 {
        return Err(BrowserLegError::BadOffer(format!(
            "{m_lines} media lines (at most 16)"
        )));
    }
    if !offer.contains("a=fingerprint:") {
        return Err(BrowserLegError::Refused(
            "no DTLS fingerprint (RFC 8122): not a WebRTC offer".into(),
        ));
    }
    SdpOffer::from_sdp_string(offer).map_err(|e| BrowserLegError::BadOffer(e.to_string()))
}

/// One browser's peer connection.
pub struct BrowserLeg {
    rtc: Rtc,
    /// Our ICE ufrag (from our answer; an ICE restart changes it).
    ufrag: String,
    mid: Option<Mid>,
    audio: Option<(Pt, AudioCodec)>,
    connected: bool,
    /// Our media follows the browser's while ICE catches up after a move (see `media::follow`).
    follow: Follow,
    /// The latest time we were given.
    now: Instant,
    /// Media goes where the browser's comes from, not where ICE says (logged once per switch).
    following: bool,
}

impl BrowserLeg {
    /// Answers `offer` at `now`. `candidates` are (advertised, bound) pairs: the address the browser
    /// should send to and the socket it arrives on (equal without NAT 1:1). `codecs` are the audio
    /// codecs to accept, most preferred first (G.711 first avoids transcoding toward SIP).
    pub fn answer(
        now: Instant,
        offer: &str,
        candidates: &[(SocketAddr, SocketAddr)],
        codecs: &[AudioCodec],
    ) -> Result<(Self, String), BrowserLegError> {
        Self::answer_with(now, offer, candidates, codecs, None)
    }

    /// [`BrowserLeg::answer`] with a DTLS certificate shared by many legs (generating one per leg
    /// costs a key pair per call); `None` generates one.
    pub fn answer_with(
        now: Instant,
        offer: &str,
        candidates: &[(SocketAddr, SocketAddr)],
        codecs: &[AudioCodec],
        cert: Option<&DtlsCert>,
    ) -> Result<(Self, String), BrowserLegError> {
        let offer = parse_offer(offer)?;
        let mut config = lean_config();
        if let Some(cert) = cert {
            config = config.set_dtls_cert(cert.clone());
        }
        for c in codecs {
            config = match c {
                AudioCodec::Pcmu => config.enable_pcmu(true, false),
                AudioCodec::Pcma => config.enable_pcma(true, false),
                AudioCodec::Opus => config.enable_opus(true, false),
            };
        }
        // telephone-event at both audio clocks (RFC 4733): browsers send it at their send codec's rate.
        for (pt, rate) in [
            (101, Frequency::EIGHT_KHZ),
            (110, Frequency::FORTY_EIGHT_KHZ),
        ] {
            let format = FormatParams {
                telephone_event_max: Some(15),
                ..Default::default()
            };
            config
                .codec_config()
                .add_config(pt.into(), None, Codec::Tele, rate, None, format);
        }
        let mut rtc = config.build(now);
        for &(advertised, bound) in candidates {
            let cand = if advertised == bound {
                Candidate::host(bound, "udp")
            } else {
                Candidate::server_reflexive(advertised, bound, "udp")
            }
            .map_err(|e| BrowserLegError::Rtc(e.to_string()))?;
            rtc.add_local_candidate(cand);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| BrowserLegError::Refused(e.to_string()))?;
        let answer = answer.to_sdp_string();
        let mut leg = BrowserLeg {
            rtc,
            ufrag: ice_ufrag(&answer).unwrap_or_default(),
            mid: None,
            audio: None,
            connected: false,
            follow: Follow::default(),
            now,
            following: false,
        };
        if let Some(mid) = accepted_audio_mid(&answer) {
            leg.pick_audio(Mid::from(mid.as_str()), codecs);
        }
        if leg.audio.is_none() {
            return Err(BrowserLegError::Refused("no common audio codec".into()));
        }
        Ok((leg, answer))
    }

    /// Answers a new offer on the running connection: an ICE restart (new credentials: str0m
    /// answers with new ones of its own and keeps its candidates) or a renegotiation. The audio
    /// stream stays what it was (same m-line, codec, SSRC and timestamps), so the other parties
    /// notice nothing.
    pub fn reoffer(&mut self, offer: &str) -> Result<String, BrowserLegError> {
        let offer = parse_offer(offer)?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| BrowserLegError::Refused(e.to_string()))?
            .to_sdp_string();
        if accepted_audio_mid(&answer).map(|m| Mid::from(m.as_str())) != self.mid {
            return Err(BrowserLegError::Refused(
                "the new offer dropped or moved the audio".into(),
            ));
        }
        if let Some(u) = ice_ufrag(&answer) {
            self.ufrag = u;
        }
        Ok(answer)
    }

    /// Takes the audio m-line and the first of `codecs` it negotiated.
    fn pick_audio(&mut self, mid: Mid, codecs: &[AudioCodec]) {
        if self.mid.is_some() {
            return;
        }
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let params: Vec<(Pt, Codec)> = writer
            .payload_params()
            .map(|p| (p.pt(), p.spec().codec))
            .collect();
        let choice = codecs.iter().copied().find_map(|want| {
            params
                .iter()
                .find(|(_, c)| AudioCodec::from_str0m(*c) == Some(want))
                .map(|(pt, _)| (*pt, want))
        });
        if let Some(choice) = choice {
            self.mid = Some(mid);
            self.audio = Some(choice);
        }
    }

    /// Our ICE username fragment (a shared port's demultiplexer routes the browser's checks by it).
    pub fn ice_ufrag(&self) -> &str {
        &self.ufrag
    }

    /// The codec we send and expect.
    pub fn codec(&self) -> Option<AudioCodec> {
        self.audio.map(|(_, c)| c)
    }

    /// The latest time the leg was given.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// True once ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Adds a trickled candidate from the browser (`candidate:...` line).
    pub fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), BrowserLegError> {
        let line = candidate.trim().trim_start_matches("a=");
        let c = Candidate::from_sdp_string(line)
            .map_err(|e| BrowserLegError::BadCandidate(e.to_string()))?;
        self.rtc.add_remote_candidate(c);
        Ok(())
    }

    /// A datagram arrived on our socket `to` from `from`. Datagrams that are not for this leg are
    /// ignored (check with [`BrowserLeg::accepts`] first when sockets are shared).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> Result<(), BrowserLegError> {
        let Some(input) = receive_input(now, from, to, data) else {
            return Ok(()); // not STUN/DTLS/RTP: nothing for us
        };
        self.now = now;
        if is_media(data) && self.rtc.accepts(&input) {
            self.follow.media_from(from, now);
        }
        self.rtc
            .handle_input(input)
            .map_err(|e| BrowserLegError::Rtc(e.to_string()))
    }

    /// True when a datagram from `from` to `to` belongs to this leg (for one shared port).
    pub fn accepts(&self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) -> bool {
        receive_input(now, from, to, data).is_some_and(|input| self.rtc.accepts(&input))
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), BrowserLegError> {
        self.now = now;
        self.rtc
            .handle_input(Input::Timeout(now))
            .map_err(|e| BrowserLegError::Rtc(e.to_string()))
    }

    /// Sends one encoded audio frame with RTP timestamp `ticks` (in the codec's clock). str0m owns the
    /// SSRC and sequence numbers; `ticks` must move forward (see [`crate::media::rewrite`]).
    pub fn send_audio(
        &mut self,
        now: Instant,
        ticks: u64,
        payload: &[u8],
    ) -> Result<(), BrowserLegError> {
        self.write(now, ticks, payload.to_vec(), None)
    }

    /// Sends a whole DTMF key press (RFC 4733) starting at RTP time `ticks` (audio clock); str0m
    /// sends its packet series, at the telephone-event payload type of the audio's clock rate.
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        ticks: u64,
        code: u8,
        duration: Duration,
    ) -> Result<(), BrowserLegError> {
        let event = TelephoneEvent {
            event: code.min(15),
            end: true,
            volume: 10,
            duration: duration.clamp(Duration::from_millis(40), Duration::from_secs(6)),
        };
        // An empty frame with an event: str0m sends only the event's packets.
        self.write(now, ticks, Vec::new(), Some(event))
    }

    /// One write on the audio m-line at `ticks` in the codec's clock; nothing before the answer chose
    /// a codec.
    fn write(
        &mut self,
        now: Instant,
        ticks: u64,
        data: Vec<u8>,
        event: Option<TelephoneEvent>,
    ) -> Result<(), BrowserLegError> {
        self.now = now;
        let (Some(mid), Some((pt, codec))) = (self.mid, self.audio) else {
            return Ok(());
        };
        let Some(mut writer) = self.rtc.writer(mid) else {
            return Ok(());
        };
        if let Some(ev) = event {
            writer = writer.telephone_event(ev);
        }
        let rate = Frequency::new(codec.clock_rate()).unwrap_or(Frequency::EIGHT_KHZ);
        writer
            .write(pt, now, MediaTime::new(ticks, rate), data)
            .map_err(|e| BrowserLegError::Rtc(e.to_string()))
    }

    /// The next thing to do; drain until [`BrowserOutput::Timeout`].
    pub fn poll_output(&mut self) -> Result<BrowserOutput, BrowserLegError> {
        loop {
            match self
                .rtc
                .poll_output()
                .map_err(|e| BrowserLegError::Rtc(e.to_string()))?
            {
                Output::Timeout(t) => return Ok(BrowserOutput::Timeout(t)),
                Output::Transmit(t) => {
                    let to = if is_media(&t.contents) {
                        self.follow.destination(t.destination, self.now)
                    } else {
                        t.destination
                    };
                    if to != t.destination && !self.following {
                        tracing::info!(ice = %t.destination, browser = %to, "media follows the browser until ICE nominates its new path");
                    }
                    self.following = to != t.destination;
                    return Ok(BrowserOutput::Transmit {
                        from: t.source,
                        to,
                        data: t.contents.into(),
                    });
                }
                Output::Event(e) => {
                    if let Some(ev) = self.translate(e) {
                        return Ok(BrowserOutput::Event(ev));
                    }
                }
            }
        }
    }

    fn translate(&mut self, e: Event) -> Option<BrowserEvent> {
        match e {
            Event::Connected => {
                self.connected = true;
                Some(BrowserEvent::Connected)
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                Some(BrowserEvent::Disconnected)
            }
            Event::MediaData(d) => {
                if let CodecExtra::Tele(ev) = d.codec_extra {
                    let tele_rate = d.params.spec().clock_rate.get();
                    let audio_rate = self.codec().map_or(8000, AudioCodec::clock_rate);
                    let ticks = u64::from(crate::media::dtmf::rescale(
                        d.time.numer() as u32,
                        tele_rate,
                        audio_rate,
                    ));
                    return Some(BrowserEvent::Dtmf {
                        digit: d
                            .audio_start_of_talk_spurt
                            .then(|| code_to_digit(ev.event))
                            .flatten(),
                        code: ev.event,
                        end: ev.end,
                        volume: ev.volume,
                        duration: ev.duration,
                        ticks,
                        seq: d.seq_range.start().as_u16(),
                        last_seq: d.seq_range.end().as_u16(),
                    });
                }
                let codec = AudioCodec::from_str0m(d.params.spec().codec)?;
                Some(BrowserEvent::Audio {
                    codec,
                    ticks: d.time.numer(),
                    seq: d.seq_range.start().as_u16(),
                    last_seq: d.seq_range.end().as_u16(),
                    payload: d.data,
                })
            }
            _ => None,
        }
    }
}
