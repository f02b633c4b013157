//! Media-flow state of one leg: an event when media really flows (transport ready and the first packet
//! in), so a prompt is never played into a leg that cannot hear it yet, and a media timeout when packets
//! stop (longer while the peer holds, since a holding phone may send nothing). Sans-IO.

use std::time::{Duration, Instant};

/// What the leg's owner should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEvent {
    /// Media flows: start prompts now.
    Flowing,
    /// No packet for the timeout: end the leg.
    TimedOut,
}

/// The flow state of one leg. Drive it with `handle_*`, then drain `poll_event` until `None`; wake at
/// `poll_timeout` and call `handle_timeout`.
#[derive(Debug, Clone)]
pub struct FlowMonitor {
    transport_ready: bool,
    last_packet: Option<Instant>,
    flowing_sent: bool,
    timed_out: bool,
    held: bool,
    started: Instant,
    timeout: Duration,
    hold_timeout: Duration,
    pending: Option<FlowEvent>,
}

impl FlowMonitor {
    /// A leg created at `now`; `transport_ready` is false for a browser leg until DTLS connects and
    /// true for plain RTP. A leg that never receives anything times out `timeout` after creation.
    pub fn new(
        now: Instant,
        transport_ready: bool,
        timeout: Duration,
        hold_timeout: Duration,
    ) -> Self {
        FlowMonitor {
            transport_ready,
            last_packet: None,
            flowing_sent: false,
            timed_out: false,
            held: false,
            started: now,
            timeout,
            hold_timeout,
            pending: None,
        }
    }

    /// The transport became ready (DTLS connected).
    pub fn handle_transport_ready(&mut self) {
        self.transport_ready = true;
        self.check_flowing();
    }

    /// A media packet arrived.
    pub fn handle_packet(&mut self, now: Instant) {
        self.last_packet = Some(now);
        self.check_flowing();
    }

    /// The peer put us on hold (it may stop sending) or took us off hold.
    pub fn set_held(&mut self, now: Instant, held: bool) {
        self.held = held;
        // Restart the clock so a hold that ends does not time out on the silence before it.
        self.last_packet = Some(self.last_packet.map_or(now, |t| t.max(now)));
    }

    /// True once media flows.
    pub fn is_flowing(&self) -> bool {
        self.flowing_sent
    }

    fn check_flowing(&mut self) {
        if !self.flowing_sent && self.transport_ready && self.last_packet.is_some() {
            self.flowing_sent = true;
            self.pending = Some(FlowEvent::Flowing);
        }
    }

    /// When the media timeout would fire.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.timed_out {
            return None;
        }
        let limit = if self.held {
            self.hold_timeout
        } else {
            self.timeout
        };
        Some(self.last_packet.unwrap_or(self.started) + limit)
    }

    /// Fires the timeout if it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|at| now >= at) {
            self.timed_out = true;
            self.pending = Some(FlowEvent::TimedOut);
        }
    }

    /// The next event, until `None`.
    pub fn poll_event(&mut self) -> Option<FlowEvent> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn flowing_needs_both_the_transport_and_a_packet_and_fires_once() {
        let t0 = Instant::now();
        let mut f = FlowMonitor::new(t0, false, 10 * S, 60 * S);
        f.handle_packet(t0);
        assert_eq!(
            f.poll_event(),
            None,
            "packet before DTLS is not flowing media"
        );
        f.handle_transport_ready();
        assert_eq!(f.poll_event(), Some(FlowEvent::Flowing));
        f.handle_packet(t0 + 2 * S);
        assert_eq!(f.poll_event(), None);
    }

    #[test]
    fn times_out_without_packets_but_waits_longer_on_hold() {
        let t0 = Instant::now();
        let mut f = FlowMonitor::new(t0, true, 10 * S, 60 * S);
        f.handle_packet(t0);
        f.poll_event();
        f.handle_timeout(t0 + 9 * S);
        assert_eq!(f.poll_event(), None);
        f.set_held(t0 + 9 * S, true);
        f.handle_timeout(t0 + 30 * S);
        assert_eq!(f.poll_event(), None, "held: the longer limit applies");
        assert_eq!(f.poll_timeout(), Some(t0 + 69 * S));
        f.set_held(t0 + 40 * S, false);
        f.handle_timeout(t0 + 49 * S);
        assert_eq!(f.poll_event(), None);
        f.handle_timeout(t0 + 50 * S);
        assert_eq!(f.poll_event(), Some(FlowEvent::TimedOut));
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn a_leg_that_never_receives_times_out_from_creation() {
        let t0 = Instant::now();
        let mut f = FlowMonitor::new(t0, true, 5 * S, 60 * S);
        assert_eq!(f.poll_timeout(), Some(t0 + 5 * S));
        f.handle_timeout(t0 + 5 * S);
        assert_eq!(f.poll_event(), Some(FlowEvent::TimedOut));
        assert!(!f.is_flowing());
    }
}
