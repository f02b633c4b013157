//! One call's media when the customer is on plain RTP too (an inbound trunk call): the customer's
//! RTP leg bridged to the agent's RTP leg, each with its own outgoing stream (SSRC, sequence and
//! timestamps rewritten), G.711 μ/A-law transcoded when the legs differ, RFC 4733 digits relayed and
//! reported once, and prompts/music played to the customer in place of the agent. Sans-IO, same
//! outputs as [`super::session::MediaSession`]; the customer's side is [`Side::Customer`].

use super::flow::FlowEvent;
use super::rewrite::SourceId;
use super::rtp_leg::{RtpIn, RtpLeg};
use super::session::{codec_of, MediaEvent, MediaOutput, Side};
use super::source::{Due, Playback, Source, FRAME};
use super::transcode::Transcoder;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const FROM_CUSTOMER: SourceId = 1;
const FROM_AGENT: SourceId = 2;

/// A customer RTP leg bridged to an agent RTP leg.
pub struct RtpBridge {
    customer: RtpLeg,
    agent: RtpLeg,
    /// What the gateway plays to the customer instead of the agent (`None`: the bridge).
    playing: Option<Playback>,
    next_source: SourceId,
    frame: [i16; FRAME],
    transcoder: Transcoder,
    out: VecDeque<MediaOutput>,
}

impl RtpBridge {
    /// Bridges `customer` to `agent`.
    pub fn new(customer: RtpLeg, agent: RtpLeg) -> Self {
        RtpBridge {
            customer,
            agent,
            playing: None,
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

    /// The customer's leg.
    pub fn customer_leg(&mut self) -> &mut RtpLeg {
        &mut self.customer
    }

    /// Plays `source` to the customer from `now` on instead of the agent.
    pub fn play_to_customer(&mut self, now: Instant, source: Source) {
        self.next_source += 1;
        self.playing = Some(Playback::new(now, source, self.next_source));
    }

    /// The customer hears the agent again.
    pub fn bridge(&mut self) {
        self.playing = None;
    }

    /// A datagram on the customer's RTP socket.
    pub fn handle_customer_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        relay(
            now,
            from,
            data,
            (&mut self.customer, Side::Customer, FROM_CUSTOMER),
            (&mut self.agent, Side::Sip),
            true,
            &mut self.transcoder,
            &mut self.out,
        );
        self.drain_flow();
    }

    /// A datagram on the agent's RTP socket; its audio reaches the customer only while bridged.
    pub fn handle_agent_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        relay(
            now,
            from,
            data,
            (&mut self.agent, Side::Sip, FROM_AGENT),
            (&mut self.customer, Side::Customer),
            self.playing.is_none(),
            &mut self.transcoder,
            &mut self.out,
        );
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
            let playing = self.playing.as_ref().map(Playback::next_due);
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
            let Some(playing) = self.playing.as_mut() else {
                return;
            };
            match playing.poll(now, &mut self.frame, FRAME as u32) {
                Due::NotYet => return,
                Due::Ended => self
                    .out
                    .push_back(MediaOutput::Event(MediaEvent::PromptDone)),
                Due::Frame { at, id, seq, ts } => {
                    let Ok(frame) = self.transcoder.encode_pcm(&self.frame, codec) else {
                        continue;
                    };
                    if let Some((to, bytes)) =
                        self.customer.audio_packet(at, id, seq, ts, false, frame)
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

/// One datagram from leg `from` (named `from_side`, feeding the other leg's stream as `source`) to
/// leg `to` (on socket `to_side`): audio is transcoded when the codecs differ and passed only when
/// `pass_audio`; RFC 4733 events always pass, and each key press is reported once.
#[allow(clippy::too_many_arguments)]
fn relay(
    now: Instant,
    addr: SocketAddr,
    data: &[u8],
    (from, from_side, source): (&mut RtpLeg, Side, SourceId),
    (to, to_side): (&mut RtpLeg, Side),
    pass_audio: bool,
    transcoder: &mut Transcoder,
    out: &mut VecDeque<MediaOutput>,
) {
    let from_codec = codec_of(&from.negotiated().codec);
    let to_codec = codec_of(&to.negotiated().codec);
    let packet = match from.handle_datagram(now, addr, data) {
        RtpIn::Audio {
            seq,
            timestamp,
            payload,
        } if pass_audio => {
            let (Some(f), Some(t)) = (from_codec, to_codec) else {
                return;
            };
            let Ok(frame) = transcoder.convert(payload, f, t) else {
                return;
            };
            to.audio_packet(now, source, seq, timestamp, false, frame)
        }
        RtpIn::Dtmf {
            digit,
            event,
            seq,
            timestamp,
            marker,
        } => {
            if let Some(d) = digit {
                out.push_back(MediaOutput::Event(MediaEvent::Digit(from_side, d)));
            }
            to.dtmf_packet(now, source, seq, timestamp, marker, event)
        }
        _ => None,
    };
    if let Some((dest, bytes)) = packet {
        out.push_back(MediaOutput::Transmit {
            side: to_side,
            to: dest,
            data: bytes.to_vec(),
        });
    }
}
