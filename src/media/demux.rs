//! One UDP port for many browser legs: which leg a datagram belongs to (sans-IO).
//!
//! A media worker answers every browser on one shared port (ICE-lite host candidate), as SFUs do.
//! A datagram from an address already seen goes to that address's leg. A datagram from a new
//! address can only be a STUN binding request (ICE connectivity check, RFC 8445 §7.2.2): its
//! `USERNAME` is `<our ufrag>:<the browser's ufrag>`, and our ufrag names the leg; the address is
//! then learned. Anything else from an unknown address is dropped. str0m still checks every STUN
//! message's integrity with the leg's password, so a learned address only ever reaches the leg
//! whose credentials it presented.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

/// STUN's magic cookie (RFC 5389 §6).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// The `USERNAME` attribute.
const ATTR_USERNAME: u16 = 0x0006;
/// At most this many addresses per leg are remembered (a browser checks a few candidate pairs).
const MAX_ADDRS_PER_LEG: usize = 16;

/// Our ufrag from a STUN binding request's `USERNAME` (`ours:theirs`), or `None` for anything else.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&[u8]> {
    if data.len() < 20 || data[0] != 0x00 || data[1] != 0x01 || data[4..8] != MAGIC_COOKIE {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let body = data.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        if kind == ATTR_USERNAME {
            let ours = value.split(|&b| b == b':').next()?;
            return (!ours.is_empty()).then_some(ours);
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    None
}

/// The demultiplexer of one shared port: legs by ICE ufrag, then by source address.
#[derive(Debug)]
pub struct SharedDemux<T> {
    by_ufrag: HashMap<Vec<u8>, T>,
    by_addr: HashMap<SocketAddr, T>,
}

impl<T> Default for SharedDemux<T> {
    fn default() -> Self {
        SharedDemux {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
        }
    }
}

impl<T: Copy + Eq + Hash> SharedDemux<T> {
    /// Whose is this datagram from `from`? Learns `from` for the leg a binding request names.
    pub fn route(&mut self, from: SocketAddr, data: &[u8]) -> Option<T> {
        if let Some(ufrag) = stun_local_ufrag(data) {
            // A check names its leg even from a known address (an ICE restart, a NAT's reused port).
            let leg = *self.by_ufrag.get(ufrag)?;
            if self.by_addr.get(&from) != Some(&leg) && self.addrs_of(leg) < MAX_ADDRS_PER_LEG {
                self.by_addr.insert(from, leg);
            }
            return Some(leg);
        }
        self.by_addr.get(&from).copied()
    }

    /// A leg answered with `ufrag` (its credentials after an ICE restart replace the old ones).
    pub fn set_ufrag(&mut self, leg: T, ufrag: &str) {
        self.by_ufrag.retain(|_, l| *l != leg);
        self.by_ufrag.insert(ufrag.as_bytes().to_vec(), leg);
    }

    /// The leg is gone: its ufrag and addresses are forgotten.
    pub fn remove(&mut self, leg: T) {
        self.by_ufrag.retain(|_, l| *l != leg);
        self.by_addr.retain(|_, l| *l != leg);
    }

    /// Legs known.
    pub fn legs(&self) -> usize {
        self.by_ufrag.len()
    }

    fn addrs_of(&self, leg: T) -> usize {
        self.by_addr.values().filter(|l| **l == leg).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        // A PRIORITY attribute after it, as browsers send.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_binding_request_names_its_leg_and_teaches_the_address() {
        let mut d = SharedDemux::default();
        d.set_ufrag(1u32, "abcd");
        d.set_ufrag(2u32, "wxyz");
        let rtp = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        assert_eq!(d.route(addr(5000), &rtp), None, "unknown address, not STUN");
        assert_eq!(d.route(addr(5000), &binding("wxyz:peer")), Some(2));
        assert_eq!(d.route(addr(5000), &rtp), Some(2), "learned");
        assert_eq!(d.route(addr(5001), &binding("nope:peer")), None);
        assert_eq!(d.route(addr(5001), &rtp), None);
    }

    #[test]
    fn an_ice_restart_replaces_the_ufrag_and_a_removed_leg_is_forgotten() {
        let mut d = SharedDemux::default();
        d.set_ufrag(1u32, "old1");
        assert_eq!(d.route(addr(6000), &binding("old1:x")), Some(1));
        d.set_ufrag(1, "new1");
        assert_eq!(d.route(addr(6001), &binding("old1:x")), None);
        assert_eq!(d.route(addr(6001), &binding("new1:x")), Some(1));
        d.remove(1);
        assert_eq!(d.legs(), 0);
        assert_eq!(d.route(addr(6000), &[0x80, 0, 0, 0]), None);
        assert_eq!(d.route(addr(6001), &binding("new1:x")), None);
    }

    #[test]
    fn malformed_stun_never_panics_and_routes_nowhere() {
        let mut d = SharedDemux::default();
        d.set_ufrag(1u32, "abcd");
        let good = binding("abcd:x");
        for cut in 0..good.len() {
            let _ = d.route(addr(7000 + cut as u16), &good[..cut]);
        }
        let mut lying = good.clone();
        lying[3] = 0xff; // length beyond the datagram
        assert_eq!(d.route(addr(7100), &lying), None);
        let mut empty = binding(":x");
        assert_eq!(d.route(addr(7101), &empty), None);
        empty[0] = 0x01; // a response, not a request
        assert_eq!(d.route(addr(7102), &empty), None);
    }

    #[test]
    fn a_leg_learns_a_bounded_number_of_addresses() {
        let mut d = SharedDemux::default();
        d.set_ufrag(1u32, "abcd");
        for p in 0..100 {
            assert_eq!(d.route(addr(8000 + p), &binding("abcd:x")), Some(1));
        }
        assert_eq!(d.by_addr.len(), MAX_ADDRS_PER_LEG);
    }
}
