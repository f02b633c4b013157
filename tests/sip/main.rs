//! The SIP endpoint: registrations, validation, transports, retransmissions, the source ACL, session timers, advertised addresses.
//!
//! One test binary per area (each binary links the whole gateway): every file is a module named for
//! what it proves.

#[path = "../common/mod.rs"]
mod common;

mod advertised_address;
mod agent_registers_with_digest_auth;
mod large_invite_goes_over_tcp;
mod malformed_sip_gets_400_or_is_dropped;
mod session_timer_keeps_the_call_up;
mod source_acl;
mod tls_http_and_sip;
mod torture;
mod udp_retransmissions;
