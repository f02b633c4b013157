//! The SIP endpoint: rsipstack transports and transactions, with our validation, ACL, registrar,
//! OPTIONS, and the trunk client on top.
//!
//! | file | role |
//! |---|---|
//! | [`validate`] | sans-IO strict checks of raw messages; builds 400/501/513 answers |
//! | [`guard`] | the UDP socket rsipstack reads through, applying [`validate`] |
//! | [`inspect`] | the same checks for TCP/TLS, after rsipstack framed the message |
//! | [`auth`] | sans-IO digest challenges and verification |
//! | [`flood`] | sans-IO per-source rate limits and bans; the shield the sockets consult |
//! | [`server`] | binds listeners, builds the endpoint, dispatches transactions |
//! | [`handlers`] | one function per method: OPTIONS, REGISTER, INVITE, in-dialog, unknown |
//! | [`registrar_task`] | the task that owns the [`crate::registrar::Registrar`] core |
//! | [`trunk`] | outbound proxy, credentials and registration toward SIP trunks |
//! | [`uas_checks`] | 420/415/483 for well-formed requests we cannot serve |
//! | [`ids`], [`uri`] | our identifiers, URI parsing |

pub mod auth;
pub mod flood;
pub mod guard;
pub mod handlers;
pub mod ids;
pub mod inspect;
pub mod name_addr;
pub mod registrar_task;
pub mod replaces;
pub mod request;
pub mod server;
pub mod trunk;
pub mod uas_checks;
pub mod uri;
pub mod validate;

pub use server::{SipServer, SipServerError};

/// Methods we accept (the `Allow` header). Anything else known gets 405, unknown ones 501.
pub const ALLOWED_METHODS: &[&str] = &[
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "REFER", "NOTIFY", "UPDATE",
    "PRACK",
];
