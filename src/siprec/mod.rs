//! SIPREC (RFC 7866): the gateway as a session recording client, handing a recorded call's media
//! to the recorder a company already has. Sans-IO: the session's course over the queue's failover
//! list ([`session`]), the bodies of the INVITE and what we read from the answer ([`body`]), and
//! the recording metadata ([`metadata`], RFC 7865). The shell is `call::siprec_leg` (the SIP
//! dialog) and `media::siprec_fork` (the RTP to the recorder).

pub mod body;
pub mod metadata;
pub mod session;
