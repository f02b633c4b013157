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
//! | [`call_media`] | one call's media, any number of legs: route matrix, relay fast path, mixing on a 20 ms clock, digits, prompts |
//! | [`leg`] | one leg whatever its kind (browser or plain RTP): media time, sending, quality |
//! | [`routes`] | who hears whom: the route matrix and how each listener is fed (relay or mix) |
//! | [`mixer`] | per-source FIFOs and the saturating mix |
//! | [`source`] | prompts (WAV), music on hold, tones: 20 ms frames at 8 kHz |
//! | [`transcode`] | G.711 μ/A-law and (feature `opus`) Opus conversion between the legs |
//! | [`tone`] | tone generator and Goertzel detector |
//! | [`ports`] | the RTP port pool |
//! | [`engine`] | the shell's front: port leases, browser answers, a call's handle on its media |
//! | `worker` | the shell: media workers, one thread per core driving many calls' [`call_media::CallMedia`] from one event loop |
//! | [`demux`] | one shared UDP port for many browser legs: by ICE ufrag, then source address |
//! | [`flow`] | media-flow event and media timeout |

pub mod browser_leg;
pub mod call_media;
pub mod demux;
pub mod dtmf;
pub mod engine;
pub mod flow;
pub mod follow;
pub mod g711;
pub mod latch;
pub mod leg;
pub mod mixer;
pub mod ports;
pub mod recorder;
pub mod recording_tap;
pub mod rewrite;
pub mod routes;
pub mod rtcp;
pub mod rtp;
pub mod rtp_leg;
pub mod sdp;
pub mod siprec_fork;
pub mod source;
pub mod tone;
pub mod transcode;
pub(crate) mod worker;
