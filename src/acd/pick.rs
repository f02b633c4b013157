//! Which available agents a waiting call is offered to, by the queue's strategy (longest idle,
//! round robin, ring all, skills based), as many as the queue rings per call. Part of the [`Acd`]
//! core.

use super::{Acd, AgentState, Strategy};
use std::time::Instant;

impl Acd {
    /// Available agents of the call's queue not yet offered this call, chosen by `strategy`.
    pub(super) fn pick(&self, i: usize, strategy: Strategy) -> Vec<String> {
        let w = &self.waiting[i];
        let per_call = self.rules.get(&w.queue).map_or(1, |r| r.conference.max(1));
        let mut candidates: Vec<(&String, Instant, u8)> = self
            .agent_order
            .iter()
            .filter(|id| !w.offered.contains(id))
            .filter_map(|id| {
                let a = self.agents.get(id)?;
                let AgentState::Available(since) = a.state else {
                    return None;
                };
                if !a.queues.iter().any(|q| q == &w.queue) {
                    return None;
                }
                let level = match &w.skill {
                    Some(s) => *a.skills.get(s)?,
                    None => 0,
                };
                Some((id, since, level))
            })
            .collect();
        match strategy {
            Strategy::RingAll => candidates
                .into_iter()
                .map(|(id, _, _)| id.clone())
                .collect(),
            Strategy::LongestIdle => {
                candidates.sort_by_key(|(_, since, _)| *since);
                first(candidates, per_call)
            }
            Strategy::SkillsBased => {
                candidates.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
                first(candidates, per_call)
            }
            Strategy::RoundRobin => {
                let last = self.last_offered.get(&w.queue);
                let start = last
                    .and_then(|l| self.agent_order.iter().position(|a| a == l))
                    .map_or(0, |p| p + 1);
                let order: Vec<&String> = self.agent_order[start..]
                    .iter()
                    .chain(self.agent_order[..start].iter())
                    .collect();
                order
                    .into_iter()
                    .filter(|id| candidates.iter().any(|(c, _, _)| c == id))
                    .take(per_call)
                    .cloned()
                    .collect()
            }
        }
    }
}

/// The first `n` candidates' ids.
fn first(candidates: Vec<(&String, Instant, u8)>, n: usize) -> Vec<String> {
    candidates
        .into_iter()
        .take(n.max(1))
        .map(|(id, _, _)| id.clone())
        .collect()
}
