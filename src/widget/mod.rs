//! The widget side of a call: the WebSocket protocol ([`protocol`]) and how the page's context reaches
//! the agent's phone as SIP headers ([`context`]); the ICE servers a session gets ([`ice`]).

pub mod context;
pub mod ice;
pub mod protocol;
pub mod signing;
