//! The media plane's sans-IO cores: codecs, RTP stream rewriting, DTMF, tones, SIP-side SDP.
//!
//! | file | core |
//! |---|---|
//! | [`g711`] | PCMU/PCMA encode and decode by table |
//! | [`rewrite`] | one outgoing stream, one SSRC, continuous seq/ts across source switches |
//! | [`browser_leg`] | the browser's WebRTC peer (str0m): ICE-lite, DTLS-SRTP, audio frames and digits |
//! | [`dtmf`] | RFC 4733 events: parse, write, clock conversion, once-per-digit receiver, SIP INFO |
//! | [`sdp`] | SIP-side offer/answer: codec choice, telephone-event, ptime, hold |
//! | [`latch`] | symmetric RTP: which source address a leg accepts media from |
//! | [`rtp`] | RTP header view and writer (zero-copy) |
//! | [`rtcp`] | RTCP basics: reception statistics, SR/RR, the peer's report blocks |
//! | [`rtp_leg`] | the SIP side's RTP leg: latching, rewriting, digits, hold, timeout |
//! | [`session`] | one call's media: browser leg bridged to the SIP leg, relay or transcode |
//! | [`source`] | prompts (WAV), music on hold, tones: 20 ms frames at 8 kHz |
//! | [`transcode`] | G.711 μ/A-law and (feature `opus`) Opus conversion between the legs |
//! | [`tone`] | tone generator and Goertzel detector |
//! | [`ports`] | the RTP port pool |
//! | [`engine`] | the shell: port leases and one tokio task per call driving a [`session::MediaSession`] |
//! | [`flow`] | media-flow event and media timeout |

pub mod browser_leg;
pub mod dtmf;
pub mod engine;
pub mod flow;
pub mod g711;
pub mod latch;
pub mod ports;
pub mod rewrite;
pub mod rtcp;
pub mod rtp;
pub mod rtp_bridge;
pub mod rtp_leg;
pub mod sdp;
pub mod session;
pub mod source;
pub mod tone;
pub mod transcode;
