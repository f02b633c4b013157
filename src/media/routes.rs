//! Who hears whom in one call: a route matrix over the call's legs. Each route is one direction
//! (`from` is heard by `to`) with a gain; a pair with no route is off. A leg never hears itself.
//! Sans-IO and tiny: a call has a handful of legs, so the matrix is a short list.
//!
//! From the routes follows how each listener is fed ([`Feed`]): by nobody, by exactly one source
//! (relayed packet by packet, without decoding when the codecs match: the two-party fast path), or
//! by several (decoded and mixed on the call's 20 ms clock).

use std::fmt;

/// One leg of a call's media, unique within the call (chosen by the call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leg{}", self.0)
    }
}

/// Linear gain applied to a source in a listener's mix (1.0: unchanged).
pub type Gain = f32;

/// How one listener is fed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feed {
    /// Hears nobody.
    Silent,
    /// Hears exactly one source at unit gain: packets are relayed (or transcoded) one by one.
    Relay(LegId),
    /// Hears several sources, or one at a gain: decoded and mixed on the 20 ms clock.
    Mix,
}

/// The routes of one call.
#[derive(Debug, Clone, Default)]
pub struct RouteMatrix {
    routes: Vec<(LegId, LegId, Gain)>,
}

impl RouteMatrix {
    /// An empty matrix: nobody hears anybody.
    pub fn new() -> Self {
        Self::default()
    }

    /// `to` hears `from` at `gain` (`None`: not at all). A leg is never routed to itself.
    pub fn set(&mut self, from: LegId, to: LegId, gain: Option<Gain>) {
        self.routes.retain(|&(f, t, _)| (f, t) != (from, to));
        if let Some(g) = gain.filter(|g| *g > 0.0 && g.is_finite()) {
            if from != to {
                self.routes.push((from, to, g));
            }
        }
    }

    /// Everybody in `legs` hears everybody else at unit gain.
    pub fn connect_all(&mut self, legs: &[LegId]) {
        for &a in legs {
            for &b in legs {
                self.set(a, b, Some(1.0));
            }
        }
    }

    /// Removes every route from or to `leg`.
    pub fn remove_leg(&mut self, leg: LegId) {
        self.routes.retain(|&(f, t, _)| f != leg && t != leg);
    }

    /// The gain at which `to` hears `from`, if it does.
    pub fn gain(&self, from: LegId, to: LegId) -> Option<Gain> {
        self.routes
            .iter()
            .find(|&&(f, t, _)| (f, t) == (from, to))
            .map(|r| r.2)
    }

    /// The sources `to` hears, with their gains.
    pub fn sources(&self, to: LegId) -> impl Iterator<Item = (LegId, Gain)> + '_ {
        self.routes
            .iter()
            .filter(move |r| r.1 == to)
            .map(|r| (r.0, r.2))
    }

    /// The listeners that hear `from`.
    pub fn listeners(&self, from: LegId) -> impl Iterator<Item = LegId> + '_ {
        self.routes.iter().filter(move |r| r.0 == from).map(|r| r.1)
    }

    /// How `to` is fed.
    pub fn feed(&self, to: LegId) -> Feed {
        let mut sources = self.sources(to);
        match (sources.next(), sources.next()) {
            (None, _) => Feed::Silent,
            (Some((from, 1.0)), None) => Feed::Relay(from),
            _ => Feed::Mix,
        }
    }

    /// Every route, as (from, to, gain).
    pub fn iter(&self) -> impl Iterator<Item = (LegId, LegId, Gain)> + '_ {
        self.routes.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: LegId = LegId(0);
    const B: LegId = LegId(1);
    const C: LegId = LegId(2);

    #[test]
    fn two_legs_relay_and_three_mix() {
        let mut m = RouteMatrix::new();
        assert_eq!(m.feed(A), Feed::Silent);
        m.connect_all(&[A, B]);
        assert_eq!(m.feed(A), Feed::Relay(B));
        assert_eq!(m.feed(B), Feed::Relay(A));
        m.connect_all(&[A, B, C]);
        assert_eq!(m.feed(A), Feed::Mix);
        assert_eq!(m.sources(C).count(), 2);
        assert_eq!(m.gain(C, C), None, "never hears itself");
        m.remove_leg(B);
        assert_eq!(m.feed(A), Feed::Relay(C));
        assert_eq!(m.listeners(B).count(), 0);
    }

    #[test]
    fn one_way_routes_and_gains() {
        let mut m = RouteMatrix::new();
        m.set(A, B, Some(1.0));
        assert_eq!(m.feed(B), Feed::Relay(A));
        assert_eq!(m.feed(A), Feed::Silent, "one way only");
        m.set(A, B, Some(0.5));
        assert_eq!(m.feed(B), Feed::Mix, "a gain needs decoding");
        m.set(A, B, None);
        assert_eq!(m.feed(B), Feed::Silent);
        m.set(A, B, Some(f32::NAN));
        assert_eq!(m.feed(B), Feed::Silent, "a nonsense gain is off");
    }
}
