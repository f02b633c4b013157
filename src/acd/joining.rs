//! Agents joining calls that are already connected: a conference queue's further agents (they go
//! on ringing after the first answered) and agents claimed for a live call (added over the API),
//! with their ring timeouts. Part of the [`Acd`] core.

use super::{service, Acd, AcdOutput, AgentState, CallId, ClaimError, Joining, OfferResult};
use std::time::{Duration, Instant};

impl Acd {
    /// Agents ringing to join connected calls.
    pub fn joining(&self) -> impl Iterator<Item = (CallId, &str)> {
        self.joining.iter().map(|j| (j.call, j.agent.as_str()))
    }

    /// Claims `agent` for the live call `call` (an agent added to it): the agent rings for up to
    /// `ring`; report the outcome with [`Acd::handle_offer_result`]. Available agents and agents
    /// in wrap-up can be claimed; offline, away, ringing or busy ones cannot.
    pub fn handle_claim(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &str,
        ring: Duration,
    ) -> Result<(), ClaimError> {
        let a = self
            .agents
            .get_mut(agent)
            .ok_or_else(|| ClaimError::UnknownAgent(agent.into()))?;
        match a.state {
            AgentState::Available(_) | AgentState::WrapUp(_) => {}
            other => {
                return Err(ClaimError::Unavailable(
                    agent.into(),
                    service::state_name(other),
                ))
            }
        }
        a.state = AgentState::Ringing(call);
        self.joining.push(Joining {
            call,
            agent: agent.into(),
            until: now + ring,
        });
        Ok(())
    }

    /// Claims the agent of `queue` idle the longest (not one of `except`) for the live call
    /// `call`, as [`Acd::handle_claim`] does: a consult call to a queue.
    pub fn handle_claim_from(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        ring: Duration,
        except: &[String],
    ) -> Result<String, ClaimError> {
        let agent = self
            .agent_order
            .iter()
            .filter(|id| !except.contains(id))
            .filter_map(|id| {
                let a = self.agents.get(id)?;
                let AgentState::Available(since) = a.state else {
                    return None;
                };
                a.queues.iter().any(|q| q == queue).then_some((id, since))
            })
            .min_by_key(|(_, since)| *since)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| ClaimError::NoneAvailable(queue.into()))?;
        self.handle_claim(now, call, &agent, ring)?;
        Ok(agent)
    }

    /// How a joining agent's ring ended.
    pub(super) fn join_result(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &str,
        result: OfferResult,
    ) {
        match result {
            OfferResult::Answered => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.state = AgentState::Busy(call);
                }
                self.out.push_back(AcdOutput::Connected {
                    call,
                    agent: agent.to_string(),
                });
            }
            OfferResult::Rejected(_) => self.set_available(now, agent),
        }
        self.dispatch(now);
    }
}
