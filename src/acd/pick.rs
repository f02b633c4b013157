//! Which available agents a waiting call is offered to, by the queue's strategy (longest idle,
//! round robin, ring all, skills based), as many as the queue rings per call. Part of the [`Acd`]
//! core.
//!
//! Ties go to the agent configured first. The agents are walked once, in the map's own order
//! (looking each one up by id, in configuration order, cost more than the rest of a call's setup
//! with thousands of agents); the few candidates are then sorted into the configuration order.

use super::{Acd, AgentState, Strategy};
use std::time::Instant;

/// An available agent: id, idle since, skill level, place in the configuration order.
type Candidate<'a> = (&'a String, Instant, u8, usize);

impl Acd {
    /// Available agents of the call's queue not yet offered this call, chosen by `strategy`.
    pub(super) fn pick(&self, i: usize, strategy: Strategy) -> Vec<String> {
        let w = &self.waiting[i];
        let per_call = self.rules.get(&w.queue).map_or(1, |r| r.conference.max(1));
        let mut candidates: Vec<Candidate> = self
            .agents
            .iter()
            .filter_map(|(id, a)| {
                let AgentState::Available(since) = a.state else {
                    return None;
                };
                if !a.queues.iter().any(|q| q == &w.queue) || w.offered.contains(id) {
                    return None;
                }
                let level = match &w.skill {
                    Some(s) => *a.skills.get(s)?,
                    None => 0,
                };
                Some((id, since, level, a.order))
            })
            .collect();
        candidates.sort_unstable_by_key(|c| c.3);
        match strategy {
            Strategy::RingAll => candidates.into_iter().map(|c| c.0.clone()).collect(),
            Strategy::LongestIdle => {
                candidates.sort_by_key(|c| c.1);
                first(candidates, per_call)
            }
            Strategy::SkillsBased => {
                candidates.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
                first(candidates, per_call)
            }
            Strategy::RoundRobin => {
                // From the agent after the last one offered, wrapping around.
                let start = self
                    .last_offered
                    .get(&w.queue)
                    .and_then(|l| self.agents.get(l))
                    .map_or(0, |a| a.order + 1);
                candidates.sort_by_key(|c| (c.3 < start, c.3));
                first(candidates, per_call)
            }
        }
    }
}

/// The first `n` candidates' ids.
fn first(candidates: Vec<Candidate>, n: usize) -> Vec<String> {
    candidates
        .into_iter()
        .take(n.max(1))
        .map(|c| c.0.clone())
        .collect()
}
