//! Symmetric RTP (RFC 4961) with latching: a SIP leg sends to the address its media really comes from,
//! which behind NAT is not the one in the SDP. Sans-IO: every packet's source and the time in, a
//! verdict out.
//!
//! The peer's *known hosts* are the SDP's IP address and the addresses it signals from (the address
//! an agent's phone registered from, a trunk's source): media from them is the peer's, whatever the
//! port (NAT rewrites ports; a phone behind NAT or an SBC that does not rewrite SDP puts a private
//! address in it and sends from its public one, which is the one it registered from).
//!
//! Rules:
//! 1. Until something is latched, the first RTP packet from a known host latches at once, so the
//!    peer's first words are heard; packets from other hosts are ignored for `grace`, after which the
//!    first source to send `confirm` packets in a row with one SSRC latches (a phone entirely behind
//!    NAT, signalling through a proxy).
//! 2. Once latched, packets from any other address are ignored, unless the latched source has been
//!    silent for `grace` and the newcomer sends `confirm` packets in a row with one SSRC (the phone's
//!    NAT binding changed); a newcomer on a known host needs only [`QUICK_RELATCH`] of silence.
//! 3. A source latched by IP alone gives way to the SDP's exact address when that starts sending
//!    (two phones on one host, or the previous peer still sending after a transfer).
//! 4. A new SDP (re-INVITE, a new agent) resets the latch; the known signalling hosts stay.
//!
//! This is the middle way between rtpengine's default (learn the first source, whatever it is) and
//! Asterisk's `strictrtp` (learn a source only after a probation of packets in sequence): strangers
//! still need the probation and the grace, the peer's own hosts need neither.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long the latched source must be silent before a newcomer on one of the peer's known hosts
/// takes over (its NAT binding or its port changed): three packet times.
pub const QUICK_RELATCH: Duration = Duration::from_millis(60);

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
    /// Hosts the peer signals from.
    signalling: Vec<IpAddr>,
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
            signalling: Vec::new(),
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

    /// A new remote SDP (re-INVITE): start over (the signalling hosts stay).
    pub fn reset(&mut self, now: Instant, sdp: Option<SocketAddr>) {
        let signalling = std::mem::take(&mut self.signalling);
        *self = Latch::new(now, sdp, self.grace, self.confirm);
        self.signalling = signalling;
    }

    /// The peer signals from `ip` (registered from it, or its requests come from it).
    pub fn trust(&mut self, ip: IpAddr) {
        if !self.signalling.contains(&ip) {
            self.signalling.push(ip);
        }
    }

    /// True when `from` is one of the peer's known hosts.
    fn known(&self, from: SocketAddr) -> bool {
        self.sdp.is_some_and(|s| s.ip() == from.ip()) || self.signalling.contains(&from.ip())
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
        let known = self.known(from);
        if self.latched.is_none() && known {
            return self.latch(now, from);
        }
        let quiet_since = self.last_from_latched.unwrap_or(self.created);
        let quiet = now.saturating_duration_since(quiet_since);
        if known && self.latched.is_some() && quiet >= QUICK_RELATCH {
            return self.latch(now, from);
        }
        if quiet < self.grace {
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
        // The phone's NAT binding moved to another public address: a stranger's host.
        let moved = addr("198.51.100.8:4444");
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

#[cfg(test)]
mod known_host_tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_packet_from_the_host_the_phone_signals_from_latches_at_once() {
        // The SDP names a private address; the phone registered from, and sends from, another.
        let t0 = Instant::now();
        let mut l = Latch::new(t0, Some(addr("127.0.0.4:4000")), Duration::from_secs(2), 3);
        l.trust("127.0.0.1".parse().unwrap());
        assert_eq!(
            l.handle_packet(t0, addr("127.0.0.9:4000"), 5),
            LatchVerdict::Ignore,
            "a stranger is still refused"
        );
        let real = addr("127.0.0.1:5000");
        assert_eq!(l.handle_packet(t0, real, 7), LatchVerdict::Latched(real));
        assert_eq!(l.target(), Some(real));
        let t = t0 + Duration::from_millis(20);
        assert_eq!(
            l.handle_packet(t, addr("127.0.0.9:4000"), 5),
            LatchVerdict::Ignore
        );
        assert_eq!(l.handle_packet(t, real, 7), LatchVerdict::Accept);
    }

    #[test]
    fn a_known_host_relatches_after_three_packet_times_of_silence() {
        let t0 = Instant::now();
        let mut l = Latch::new(t0, Some(addr("10.0.0.5:4000")), Duration::from_secs(2), 3);
        l.handle_packet(t0, addr("10.0.0.5:4000"), 1);
        let moved = addr("10.0.0.5:4444");
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(
            l.handle_packet(ms(20), moved, 2),
            LatchVerdict::Ignore,
            "both send"
        );
        l.handle_packet(ms(20), addr("10.0.0.5:4000"), 1);
        assert_eq!(l.handle_packet(ms(60), moved, 2), LatchVerdict::Ignore);
        assert_eq!(
            l.handle_packet(ms(80), moved, 2),
            LatchVerdict::Latched(moved)
        );
        // A new SDP keeps the hosts the phone signals from.
        l.trust("192.0.2.7".parse().unwrap());
        l.reset(ms(100), Some(addr("10.0.0.9:6000")));
        let nat = addr("192.0.2.7:30000");
        assert_eq!(l.handle_packet(ms(100), nat, 3), LatchVerdict::Latched(nat));
    }
}
