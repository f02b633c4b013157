//! Symmetric RTP (RFC 4961) with latching: a SIP leg sends to the address its media really comes from,
//! which behind NAT is not the one in the SDP. Sans-IO: every packet's source and the time in, a
//! verdict out.
//!
//! Rules:
//! 1. Until something is latched, the first RTP packet from the SDP's IP address (any port: NAT may
//!    rewrite ports) latches; packets from other IP addresses are ignored for `grace`, after which the
//!    first source to send `confirm` packets in a row with one SSRC latches (a phone entirely behind NAT).
//! 2. Once latched, packets from any other address are ignored, unless the latched source has been
//!    silent for `grace` and the newcomer sends `confirm` packets in a row with one SSRC (the phone's
//!    NAT binding changed).
//! 3. A source latched by IP alone gives way to the SDP's exact address when that starts sending
//!    (two phones on one host, or the previous peer still sending after a transfer).
//! 4. A new SDP (re-INVITE, a new agent) resets the latch.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// From the latched source: use it.
    Accept,
    /// This packet latched (or re-latched) its source: use it, and send there from now on.
    Latched(SocketAddr),
    /// From somewhere else: ignore it.
    Ignore,
}

/// Latching state of one RTP leg.
#[derive(Debug, Clone)]
pub struct Latch {
    sdp: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    last_from_latched: Option<Instant>,
    created: Instant,
    candidate: Option<(SocketAddr, u32, u32)>,
    grace: Duration,
    confirm: u32,
}

impl Latch {
    /// A leg whose SDP says `sdp`, created at `now`.
    pub fn new(now: Instant, sdp: Option<SocketAddr>, grace: Duration, confirm: u32) -> Self {
        Latch {
            sdp,
            latched: None,
            last_from_latched: None,
            created: now,
            candidate: None,
            grace,
            confirm: confirm.max(1),
        }
    }

    /// Where to send: the latched address, else the SDP's.
    pub fn target(&self) -> Option<SocketAddr> {
        self.latched.or(self.sdp)
    }

    /// A new remote SDP (re-INVITE): start over.
    pub fn reset(&mut self, now: Instant, sdp: Option<SocketAddr>) {
        *self = Latch::new(now, sdp, self.grace, self.confirm);
    }

    /// Judges an RTP packet with `ssrc` from `from` at `now`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, ssrc: u32) -> LatchVerdict {
        if Some(from) == self.latched {
            self.last_from_latched = Some(now);
            self.candidate = None;
            return LatchVerdict::Accept;
        }
        if self.sdp == Some(from) {
            return self.latch(now, from);
        }
        if self.latched.is_none() && self.sdp.is_some_and(|s| s.ip() == from.ip()) {
            return self.latch(now, from);
        }
        let quiet_since = self.last_from_latched.unwrap_or(self.created);
        if now.saturating_duration_since(quiet_since) < self.grace {
            return LatchVerdict::Ignore;
        }
        let count = match self.candidate {
            Some((addr, s, n)) if addr == from && s == ssrc => n + 1,
            _ => 1,
        };
        self.candidate = Some((from, ssrc, count));
        if count >= self.confirm {
            return self.latch(now, from);
        }
        LatchVerdict::Ignore
    }

    fn latch(&mut self, now: Instant, from: SocketAddr) -> LatchVerdict {
        self.latched = Some(from);
        self.last_from_latched = Some(now);
        self.candidate = None;
        LatchVerdict::Latched(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn latches_to_the_sdp_ip_even_on_another_port_and_ignores_strangers() {
        let t0 = Instant::now();
        let mut l = Latch::new(t0, Some(addr("10.0.0.5:4000")), Duration::from_secs(2), 3);
        assert_eq!(
            l.handle_packet(t0, addr("203.0.113.9:5000"), 1),
            LatchVerdict::Ignore
        );
        assert_eq!(
            l.handle_packet(t0, addr("10.0.0.5:4100"), 7),
            LatchVerdict::Latched(addr("10.0.0.5:4100"))
        );
        assert_eq!(l.target(), Some(addr("10.0.0.5:4100")));
        for i in 0..10 {
            assert_eq!(
                l.handle_packet(
                    t0 + Duration::from_millis(20 * i),
                    addr("203.0.113.9:5000"),
                    1
                ),
                LatchVerdict::Ignore
            );
            assert_eq!(
                l.handle_packet(t0 + Duration::from_millis(20 * i), addr("10.0.0.5:4100"), 7),
                LatchVerdict::Accept
            );
        }
    }

    #[test]
    fn a_phone_fully_behind_nat_latches_after_the_grace_period_and_confirmation() {
        let t0 = Instant::now();
        let mut l = Latch::new(
            t0,
            Some(addr("192.168.1.20:4000")),
            Duration::from_secs(1),
            3,
        );
        let nat = addr("198.51.100.7:61000");
        assert_eq!(
            l.handle_packet(t0 + Duration::from_millis(100), nat, 9),
            LatchVerdict::Ignore
        );
        let t = t0 + Duration::from_millis(1100);
        assert_eq!(l.handle_packet(t, nat, 9), LatchVerdict::Ignore);
        assert_eq!(l.handle_packet(t, nat, 9), LatchVerdict::Ignore);
        assert_eq!(l.handle_packet(t, nat, 9), LatchVerdict::Latched(nat));
    }

    #[test]
    fn relatches_only_after_the_latched_source_went_quiet() {
        let t0 = Instant::now();
        let mut l = Latch::new(t0, Some(addr("10.0.0.5:4000")), Duration::from_secs(1), 2);
        l.handle_packet(t0, addr("10.0.0.5:4000"), 1);
        let moved = addr("10.0.0.5:4444");
        let t = t0 + Duration::from_millis(500);
        assert_eq!(l.handle_packet(t, moved, 1), LatchVerdict::Ignore);
        assert_eq!(
            l.handle_packet(t, moved, 1),
            LatchVerdict::Ignore,
            "latched source still recent"
        );
        let t = t0 + Duration::from_millis(1500);
        assert_eq!(l.handle_packet(t, moved, 1), LatchVerdict::Ignore);
        assert_eq!(
            l.handle_packet(t, addr("203.0.113.1:1"), 2),
            LatchVerdict::Ignore,
            "interleaved stranger resets"
        );
        assert_eq!(l.handle_packet(t, moved, 1), LatchVerdict::Ignore);
        assert_eq!(l.handle_packet(t, moved, 1), LatchVerdict::Latched(moved));
    }

    #[test]
    fn a_new_sdp_resets() {
        let t0 = Instant::now();
        let mut l = Latch::new(t0, Some(addr("10.0.0.5:4000")), Duration::from_secs(1), 2);
        l.handle_packet(t0, addr("10.0.0.5:4000"), 1);
        l.reset(t0, Some(addr("10.0.0.9:6000")));
        assert_eq!(l.target(), Some(addr("10.0.0.9:6000")));
        assert_eq!(
            l.handle_packet(t0, addr("10.0.0.5:4000"), 1),
            LatchVerdict::Ignore
        );
        assert_eq!(
            l.handle_packet(t0, addr("10.0.0.9:6002"), 1),
            LatchVerdict::Latched(addr("10.0.0.9:6002"))
        );
    }
}

#[cfg(test)]
mod exact_address_tests {
    use super::*;

    #[test]
    fn the_sdp_address_wins_over_a_neighbour_latched_by_ip() {
        let t0 = Instant::now();
        let sdp: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let old: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut l = Latch::new(t0, Some(sdp), Duration::from_secs(2), 3);
        assert_eq!(l.handle_packet(t0, old, 1), LatchVerdict::Latched(old));
        assert_eq!(l.handle_packet(t0, sdp, 2), LatchVerdict::Latched(sdp));
        assert_eq!(l.handle_packet(t0, old, 1), LatchVerdict::Ignore);
        assert_eq!(l.target(), Some(sdp));
    }
}
