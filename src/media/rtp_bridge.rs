//! One call's media when the customer is on plain RTP too (an inbound trunk call): the customer's
//! RTP leg bridged to the agent's RTP leg, each with its own outgoing stream (SSRC, sequence and
//! timestamps rewritten), G.711 μ/A-law transcoded when the legs differ, RFC 4733 digits relayed and
//! reported once, and prompts/music played to the customer in place of the agent. Sans-IO, same
//! outputs as [`super::session::MediaSession`]; the customer's side is [`Side::Customer`].

use super::browser_leg::AudioCodec;
use super::flow::FlowEvent;
use super::rewrite::SourceId;
use super::rtp_leg::{RtpIn, RtpLeg};
use super::sdp::Format;
use super::session::{MediaEvent, MediaOutput, Side};
use super::source::{Player, Source, FRAME};
use super::transcode::Transcoder;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const FROM_CUSTOMER: SourceId = 1;
const FROM_AGENT: SourceId = 2;

enum Feed {
    Bridge,
    Play {
        player: Player,
        id: SourceId,
        seq: u16,
        ts: u32,
        next: Instant,
    },
}

/// A customer RTP leg bridged to an agent RTP leg.
pub struct RtpBridge {
    customer: RtpLeg,
    agent: RtpLeg,
    feed: Feed,
    next_source: SourceId,
    frame: [i16; FRAME],
    transcoder: Transcoder,
    out: VecDeque<MediaOutput>,
}

fn codec_of(f: &Format) -> Option<AudioCodec> {
    if f.name.eq_ignore_ascii_case("PCMU") {
        Some(AudioCodec::Pcmu)
    } else if f.name.eq_ignore_ascii_case("PCMA") {
        Some(AudioCodec::Pcma)
    } else {
        None
    }
}

impl RtpBridge {
    /// Bridges `customer` to `agent`.
    pub fn new(customer: RtpLeg, agent: RtpLeg) -> Self {
        RtpBridge {
            customer,
            agent,
            feed: Feed::Bridge,
            next_source: 10,
            frame: [0; FRAME],
            transcoder: Transcoder::new(),
            out: VecDeque::new(),
        }
    }

    /// The agent's leg (re-INVITEs, a new agent's answer).
    pub fn agent_leg(&mut self) -> &mut RtpLeg {
        &mut self.agent
    }

    /// Plays `source` to the customer from `now` on instead of the agent.
    pub fn play_to_customer(&mut self, now: Instant, source: Source) {
        self.next_source += 1;
        self.feed = Feed::Play {
            player: Player::new(source),
            id: self.next_source,
            seq: 0,
            ts: 0,
            next: now,
        };
    }

    /// The customer hears the agent again.
    pub fn bridge(&mut self) {
        self.feed = Feed::Bridge;
    }

    /// A datagram on the customer's RTP socket.
    pub fn handle_customer_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let from_codec = codec_of(&self.customer.negotiated().codec);
        let to_codec = codec_of(&self.agent.negotiated().codec);
        match self.customer.handle_datagram(now, from, data) {
            RtpIn::Audio {
                seq,
                timestamp,
                payload,
            } => {
                if let (Some(f), Some(t)) = (from_codec, to_codec) {
                    if let Ok(frame) = self.transcoder.convert(payload, f, t) {
                        if let Some((to, bytes)) = self.agent.audio_packet(
                            now,
                            FROM_CUSTOMER,
                            seq,
                            timestamp,
                            false,
                            frame,
                        ) {
                            self.out.push_back(MediaOutput::Transmit {
                                side: Side::Sip,
                                to,
                                data: bytes.to_vec(),
                            });
                        }
                    }
                }
            }
            RtpIn::Dtmf {
                digit,
                event,
                seq,
                timestamp,
                marker,
            } => {
                if let Some(d) = digit {
                    self.out
                        .push_back(MediaOutput::Event(MediaEvent::Digit(Side::Customer, d)));
                }
                if let Some((to, bytes)) =
                    self.agent
                        .dtmf_packet(now, FROM_CUSTOMER, seq, timestamp, marker, event)
                {
                    self.out.push_back(MediaOutput::Transmit {
                        side: Side::Sip,
                        to,
                        data: bytes.to_vec(),
                    });
                }
            }
            RtpIn::Nothing => {}
        }
        self.drain_flow();
    }

    /// A datagram on the agent's RTP socket.
    pub fn handle_agent_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let from_codec = codec_of(&self.agent.negotiated().codec);
        let to_codec = codec_of(&self.customer.negotiated().codec);
        let bridged = matches!(self.feed, Feed::Bridge);
        match self.agent.handle_datagram(now, from, data) {
            RtpIn::Audio {
                seq,
                timestamp,
                payload,
            } if bridged => {
                if let (Some(f), Some(t)) = (from_codec, to_codec) {
                    if let Ok(frame) = self.transcoder.convert(payload, f, t) {
                        if let Some((to, bytes)) = self
                            .customer
                            .audio_packet(now, FROM_AGENT, seq, timestamp, false, frame)
                        {
                            self.out.push_back(MediaOutput::Transmit {
                                side: Side::Customer,
                                to,
                                data: bytes.to_vec(),
                            });
                        }
                    }
                }
            }
            RtpIn::Dtmf {
                digit,
                event,
                seq,
                timestamp,
                marker,
            } => {
                if let Some(d) = digit {
                    self.out
                        .push_back(MediaOutput::Event(MediaEvent::Digit(Side::Sip, d)));
                }
                if let Some((to, bytes)) = self
                    .customer
                    .dtmf_packet(now, FROM_AGENT, seq, timestamp, marker, event)
                {
                    self.out.push_back(MediaOutput::Transmit {
                        side: Side::Customer,
                        to,
                        data: bytes.to_vec(),
                    });
                }
            }
            _ => {}
        }
        self.drain_flow();
    }

    /// RTCP on the customer's RTCP socket.
    pub fn handle_customer_rtcp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.customer.handle_rtcp(now, from, data);
    }

    /// RTCP on the agent's RTCP socket.
    pub fn handle_agent_rtcp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.agent.handle_rtcp(now, from, data);
    }

    /// Time passed: prompt frames due, RTCP reports, media timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.play_due(now);
        self.customer.handle_timeout(now);
        self.agent.handle_timeout(now);
        if let Some((to, data)) = self.customer.poll_rtcp(now) {
            self.out.push_back(MediaOutput::Transmit {
                side: Side::CustomerRtcp,
                to,
                data,
            });
        }
        if let Some((to, data)) = self.agent.poll_rtcp(now) {
            self.out.push_back(MediaOutput::Transmit {
                side: Side::SipRtcp,
                to,
                data,
            });
        }
        self.drain_flow();
    }

    /// The next thing to do, until [`MediaOutput::Timeout`].
    pub fn poll_output(&mut self) -> MediaOutput {
        self.out.pop_front().unwrap_or_else(|| {
            let playing = match &self.feed {
                Feed::Play { next, .. } => Some(*next),
                Feed::Bridge => None,
            };
            let t = [
                self.customer.poll_timeout(),
                self.agent.poll_timeout(),
                playing,
            ]
            .into_iter()
            .flatten()
            .min();
            MediaOutput::Timeout(t.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)))
        })
    }

    fn play_due(&mut self, now: Instant) {
        let Some(codec) = codec_of(&self.customer.negotiated().codec) else {
            return;
        };
        loop {
            let Feed::Play {
                player,
                id,
                seq,
                ts,
                next,
            } = &mut self.feed
            else {
                return;
            };
            if *next > now {
                return;
            }
            let at = *next;
            if player.next_frame(&mut self.frame).is_none() {
                *player = Player::new(Source::Silence);
                self.out
                    .push_back(MediaOutput::Event(MediaEvent::PromptDone));
                continue;
            }
            let (id, s, t) = (*id, *seq, *ts);
            *seq = seq.wrapping_add(1);
            *ts = ts.wrapping_add(FRAME as u32);
            *next += Duration::from_millis(20);
            let Ok(frame) = self.transcoder.encode_pcm(&self.frame, codec) else {
                continue;
            };
            if let Some((to, bytes)) = self.customer.audio_packet(at, id, s, t, false, frame) {
                self.out.push_back(MediaOutput::Transmit {
                    side: Side::Customer,
                    to,
                    data: bytes.to_vec(),
                });
            }
        }
    }

    fn drain_flow(&mut self) {
        while let Some(e) = self.customer.poll_event() {
            self.out.push_back(MediaOutput::Event(match e {
                FlowEvent::Flowing => MediaEvent::Flowing(Side::Customer),
                FlowEvent::TimedOut => MediaEvent::Lost(Side::Customer),
            }));
        }
        while let Some(e) = self.agent.poll_event() {
            self.out.push_back(MediaOutput::Event(match e {
                FlowEvent::Flowing => MediaEvent::Flowing(Side::Sip),
                FlowEvent::TimedOut => MediaEvent::Lost(Side::Sip),
            }));
        }
    }
}
