//! Who hears whom in a call, sans-IO: from the parties in the call's media (the customer unless
//! held, agents, an external IVR, supervisors and their modes) to the media's route matrix.
//! Everybody who talks in the call (customer, agents, the IVR, a barging or take-over supervisor)
//! hears everybody else who talks; a monitoring supervisor hears them all and is heard by nobody;
//! a whispering one hears them all and is heard by the agents only. Supervisors also hear each
//! other's coaching (a whisper reaches the other supervisors), never the other way round for
//! monitors.

use super::controller::supervision::Mode;
use crate::media::routes::LegId;
use std::collections::BTreeSet;

/// The call's parties that are in its media.
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// The customer's leg, unless held (a held customer hears music and is not heard).
    pub customer: Option<LegId>,
    /// The agents' legs.
    pub agents: Vec<LegId>,
    /// Other talking parties (a queue's external IVR).
    pub others: Vec<LegId>,
    /// The supervisors' legs and modes.
    pub supervisors: Vec<(LegId, Mode)>,
    /// Legs that talk to each other only (a consult call: the transferor and the target).
    pub pairs: Vec<(LegId, LegId)>,
}

/// The routes `(from, to)`: `to` hears `from`.
pub fn routes(m: &Members) -> BTreeSet<(LegId, LegId)> {
    let talkers: Vec<LegId> = m
        .customer
        .iter()
        .chain(&m.agents)
        .chain(&m.others)
        .copied()
        .chain(
            m.supervisors
                .iter()
                .filter(|(_, mode)| mode.is_heard_by_customer())
                .map(|(l, _)| *l),
        )
        .collect();
    let mut out = BTreeSet::new();
    for &(a, b) in &m.pairs {
        out.insert((a, b));
        out.insert((b, a));
    }
    for &a in &talkers {
        for &b in &talkers {
            if a != b {
                out.insert((a, b));
            }
        }
    }
    for &(s, mode) in &m.supervisors {
        if mode.is_heard_by_customer() {
            continue;
        }
        // Monitors and whisperers hear every talker, and every whisper.
        for &t in &talkers {
            out.insert((t, s));
        }
        for &(w, wm) in &m.supervisors {
            if wm == Mode::Whisper && w != s {
                out.insert((w, s));
            }
        }
        if mode == Mode::Whisper {
            for &a in &m.agents {
                out.insert((s, a));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_consult_pair_talks_alone_while_the_customer_is_held() {
        let r = routes(&Members {
            customer: None,
            agents: vec![A],
            others: vec![],
            supervisors: vec![],
            pairs: vec![(LegId(5), LegId(6))],
        });
        assert_eq!(
            r.into_iter().collect::<Vec<_>>(),
            vec![(LegId(5), LegId(6)), (LegId(6), LegId(5))]
        );
    }

    use super::*;

    const C: LegId = LegId(0);
    const A: LegId = LegId(1);
    const A2: LegId = LegId(2);
    const S: LegId = LegId(3);

    fn hears(r: &BTreeSet<(LegId, LegId)>, to: LegId) -> Vec<LegId> {
        r.iter()
            .filter(|(_, t)| *t == to)
            .map(|(f, _)| *f)
            .collect()
    }

    fn call(mode: Mode) -> BTreeSet<(LegId, LegId)> {
        routes(&Members {
            customer: Some(C),
            agents: vec![A, A2],
            others: vec![],
            supervisors: vec![(S, mode)],
            pairs: vec![],
        })
    }

    #[test]
    fn a_monitor_hears_everybody_and_nobody_hears_it() {
        let r = call(Mode::Monitor);
        assert_eq!(hears(&r, S), vec![C, A, A2]);
        assert_eq!(hears(&r, C), vec![A, A2]);
        assert_eq!(hears(&r, A), vec![C, A2]);
    }

    #[test]
    fn a_whisper_reaches_the_agents_only() {
        let r = call(Mode::Whisper);
        assert_eq!(hears(&r, S), vec![C, A, A2]);
        assert_eq!(hears(&r, C), vec![A, A2], "never the customer");
        assert_eq!(hears(&r, A), vec![C, A2, S]);
        assert_eq!(hears(&r, A2), vec![C, A, S]);
    }

    #[test]
    fn a_barge_or_takeover_talks_with_everybody() {
        for mode in [Mode::Barge, Mode::Takeover] {
            let r = call(mode);
            assert_eq!(hears(&r, S), vec![C, A, A2]);
            assert_eq!(hears(&r, C), vec![A, A2, S]);
        }
    }

    #[test]
    fn a_held_customer_is_in_no_route_and_supervisors_hear_each_other_coach() {
        let r = routes(&Members {
            customer: None,
            agents: vec![A],
            others: vec![],
            supervisors: vec![(S, Mode::Whisper), (LegId(4), Mode::Monitor)],
            pairs: vec![],
        });
        assert!(r.iter().all(|(f, t)| *f != C && *t != C));
        assert_eq!(
            hears(&r, LegId(4)),
            vec![A, S],
            "the monitor hears the coach"
        );
        assert_eq!(hears(&r, S), vec![A], "the coach does not hear the monitor");
        assert_eq!(hears(&r, A), vec![S]);
    }
}
