//! The widget side of a call: the WebSocket protocol ([`protocol`]) and how the page's context reaches
//! the agent's phone as SIP headers ([`context`]); the ICE servers a session gets ([`ice`]); the
//! tokens that let a new socket resume a call ([`resume`]); the quality the browser reports
//! ([`stats`]).

pub mod context;
pub mod ice;
pub mod protocol;
pub mod resume;
pub mod signing;
pub mod stats;
