//! The customer's signalling link (a widget's WebSocket): which session holds the call, and, once
//! it dropped, until when another may resume it. The call's media goes on meanwhile; when the
//! grace runs out, the call ends as `connection_lost`. Sans-IO: time is an argument.

use super::CallController;
use std::time::{Duration, Instant};

/// Who holds the customer's signalling.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) enum Link {
    /// No socket to lose (a SIP customer: its dialog is its signalling), or not known yet.
    #[default]
    None,
    /// Session `n` holds the call.
    Attached(u64),
    /// The socket dropped; the call ends at the deadline unless a session resumes it.
    Detached(Instant),
}

impl Link {
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            Link::Detached(at) => Some(*at),
            _ => None,
        }
    }

    pub(super) fn expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|at| now >= at)
    }
}

impl CallController {
    /// Widget session `session` holds the customer's signalling (the call's first socket, or one
    /// that resumed it: the latest always wins, so a socket the gateway has not yet noticed is dead
    /// cannot keep a resumed call from its new one).
    pub fn handle_customer_attached(&mut self, session: u64) {
        self.link = super::attachment::Link::Attached(session);
    }

    /// Widget session `session` closed at `now`. If it held the call, the call waits `grace` for
    /// a resume (no grace: it ends now, as `connection_lost`: the visitor did not hang up). A
    /// session that no longer holds the call changes nothing.
    pub fn handle_customer_detached(&mut self, now: Instant, session: u64, grace: Duration) {
        if self.link != Link::Attached(session) || self.is_ended() {
            return;
        }
        if grace.is_zero() {
            return self.handle_customer_gone(true);
        }
        self.link = Link::Detached(now + grace);
    }

    /// True while the call waits for its socket to come back.
    pub fn is_detached(&self) -> bool {
        matches!(self.link, Link::Detached(_))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::connected_call;
    use super::*;
    use crate::call::controller::{CallOutput, CallState, EndReason};

    const S: Duration = Duration::from_secs(1);

    fn outputs(c: &mut CallController) -> Vec<CallOutput> {
        std::iter::from_fn(|| c.poll_output()).collect()
    }

    #[test]
    fn a_dropped_socket_keeps_the_call_for_the_grace_then_ends_it_as_lost() {
        let t0 = Instant::now();
        let mut c = connected_call(t0);
        c.handle_customer_attached(1);
        c.handle_customer_detached(t0, 1, 30 * S);
        assert!(outputs(&mut c).is_empty(), "nothing happens to the call");
        assert_eq!(c.state(), CallState::Connected);
        assert_eq!(c.poll_timeout(), Some(t0 + 30 * S));
        c.handle_timeout(t0 + 29 * S);
        assert!(!c.is_ended());
        c.handle_timeout(t0 + 30 * S);
        let out = outputs(&mut c);
        assert!(
            out.contains(&CallOutput::End(EndReason::ConnectionLost)),
            "{out:?}"
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, CallOutput::Bye { agent } if agent == "alice")),
            "the agent gets BYE: {out:?}"
        );
    }

    #[test]
    fn a_resumed_call_goes_on_and_a_stale_socket_cannot_detach_it() {
        let t0 = Instant::now();
        let mut c = connected_call(t0);
        c.handle_customer_attached(1);
        c.handle_customer_detached(t0, 1, 30 * S);
        c.handle_customer_attached(2);
        assert_eq!(c.poll_timeout(), None, "no deadline once resumed");
        c.handle_timeout(t0 + 60 * S);
        assert!(!c.is_ended());
        // The first socket is noticed dead only now: it no longer holds the call.
        c.handle_customer_detached(t0 + 61 * S, 1, 30 * S);
        assert!(!c.is_detached());
        // A new socket resumed before the gateway noticed the old one die: the old one's close
        // changes nothing either.
        c.handle_customer_attached(3);
        c.handle_customer_detached(t0 + 62 * S, 2, 30 * S);
        assert!(!c.is_detached());
        assert!(outputs(&mut c).is_empty());
    }

    #[test]
    fn without_grace_a_dropped_socket_ends_the_call_as_lost_not_hung_up() {
        let t0 = Instant::now();
        let mut c = connected_call(t0);
        c.handle_customer_attached(7);
        c.handle_customer_detached(t0, 7, Duration::ZERO);
        assert!(outputs(&mut c).contains(&CallOutput::End(EndReason::ConnectionLost)));
    }
}
