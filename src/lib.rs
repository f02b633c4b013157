//! clicktocall: a WebRTC click-to-call gateway. A visitor clicks a button on a web page (or asks to be
//! called back), meets an IVR, waits in a queue, and is bridged to a SIP agent; the gateway is the
//! back-to-back user agent in the middle.
//!
//! # Layout
//!
//! Sans-IO cores (no sockets, no clock: time is an argument) and the thin tokio shell that drives them.
//!
//! | module | what it is |
//! |---|---|
//! | [`acd`] | queues and agents: hunting strategies, ring timeouts, wrap-up, overflow (sans-IO core), and the task that owns it ([`acd::service`]) |
//! | [`call`] | call control: the per-call state machine with its parties (sans-IO), one way in for every customer, one task per call, the directory of live calls and their commands, node-unique ids |
//! | [`config`] | the TOML config, its embedded demo default, env overrides, validation naming keys |
//! | [`sip`] | the SIP endpoint on rsipstack: listeners, strict validation ([`sip::validate`]), digest auth ([`sip::auth`]), request dispatch, trunk client |
//! | [`registrar`] | agent registrations (sans-IO core) and the location store interface |
//! | [`ratelimit`] | sans-IO token buckets per key (new widget sockets per visitor IP) |
//! | [`storage`] | what must last: a SQLite file (default) or PostgreSQL (`postgres://`, shared by nodes): the shared connection and migrations |
//! | [`secret`] | comparing secrets in constant time (API keys, MACs, signatures) |
//! | [`http`] | axum server: demo page and widget (embedded), health and readiness, CORS, TLS, REST (call control) |
//! | [`media`] | media-plane cores: one call's N-party media (routes, relay, mixing), G.711, RTP stream rewriting, RFC 4733 DTMF, SIP-side SDP, latching, tones |
//! | [`ivr`] | the IVR menu runner: prompts after media flows, digits, retries, actions (sans-IO core) |
//! | [`lifecycle`] | readiness, draining and the shutdown grace period |
//! | [`telemetry`] | tracing setup: pretty or JSON logs |
//! | [`widget`] | the widget's WebSocket protocol and the context-to-SIP-header mapping (sanitised) |
//! | [`demo_agent`] | the built-in echo agent of the demo config (a tiny SIP phone on loopback) |
//! | [`gateway`] | wires everything together and runs until shutdown |

pub mod acd;
pub mod call;
pub mod callback;
pub mod cluster;
pub mod config;
pub mod demo_agent;
pub mod gateway;
pub mod http;
pub mod ivr;
pub mod lifecycle;
pub mod media;
pub mod metrics;
pub mod ratelimit;
pub mod recording;
pub mod records;
pub mod registrar;
pub mod secret;
pub mod sip;
pub mod siprec;
pub mod storage;
pub mod sys;
pub mod telemetry;
pub mod widget;
