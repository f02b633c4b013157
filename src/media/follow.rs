//! Where a browser leg's media goes while ICE catches up. An ICE-lite leg sends only on the pair
//! the browser nominated (RFC 8445 §7.3.1.5), and after an ICE restart Chrome nominates its new
//! pair only on that pair's next keep-alive, about 2.5 s after it moved its own media there; until
//! then our media would go to the address the browser left (a network that is gone). So a leg's
//! RTP and RTCP follow the browser's: when media arrives from a source the ICE agent accepts (a
//! candidate that passed a binding request with our ICE password, `Rtc::accepts`) and the address
//! ICE sends to has been silent for [`SILENT`], we send to where the browser's media comes from.
//! STUN and DTLS always go where ICE says. Sans-IO: time is an argument.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the nominated address must have been silent before media follows another.
pub const SILENT: Duration = Duration::from_millis(300);

/// The recent sources of a leg's media.
#[derive(Debug, Default)]
pub struct Follow {
    /// The last few sources and when each last sent media.
    heard: Vec<(SocketAddr, Instant)>,
}

/// True for RTP and RTCP (RFC 7983: first byte 128–191); STUN and DTLS are not media.
pub fn is_media(data: &[u8]) -> bool {
    data.first().is_some_and(|b| (128..=191).contains(b))
}

impl Follow {
    /// Media arrived from `from` (already accepted by the ICE agent).
    pub fn media_from(&mut self, from: SocketAddr, now: Instant) {
        self.heard.retain(|(a, _)| *a != from);
        self.heard.push((from, now));
        if self.heard.len() > 4 {
            self.heard.remove(0);
        }
    }

    /// Where a media datagram ICE sends to `to` should go at `now`.
    pub fn destination(&self, to: SocketAddr, now: Instant) -> SocketAddr {
        let Some(&(latest, at)) = self.heard.last() else {
            return to;
        };
        let to_heard = self.heard.iter().find(|(a, _)| *a == to).map(|(_, t)| *t);
        let to_silent = to_heard.is_none_or(|t| now.saturating_duration_since(t) >= SILENT);
        if latest != to && to_silent && now.saturating_duration_since(at) < SILENT {
            latest
        } else {
            to
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn media_follows_the_browser_once_the_old_path_is_silent() {
        let t0 = Instant::now();
        let (old, new) = (addr("10.9.0.1:5000"), addr("10.9.0.2:6000"));
        let mut f = Follow::default();
        assert_eq!(f.destination(old, t0), old, "nothing heard: where ICE says");
        f.media_from(old, t0);
        assert_eq!(f.destination(old, t0), old);
        // The browser moved: its media now comes from `new`, the old path is quiet.
        let t1 = t0 + Duration::from_millis(100);
        f.media_from(new, t1);
        assert_eq!(f.destination(old, t1), old, "the old path spoke 100 ms ago");
        let t2 = t0 + Duration::from_millis(400);
        f.media_from(new, t2);
        assert_eq!(f.destination(old, t2), new, "old silent for 400 ms: follow");
        // Once ICE nominates the new pair, it is where ICE says anyway.
        assert_eq!(f.destination(new, t2), new);
        // A browser that went silent everywhere: back to what ICE says.
        assert_eq!(f.destination(old, t2 + Duration::from_secs(1)), old);
    }

    #[test]
    fn only_rtp_and_rtcp_are_media() {
        assert!(is_media(&[0x80, 0]));
        assert!(is_media(&[0xbf]));
        assert!(!is_media(&[0x00, 0x01]), "STUN");
        assert!(!is_media(&[22]), "DTLS");
        assert!(!is_media(&[]));
    }
}
