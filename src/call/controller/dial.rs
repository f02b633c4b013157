//! Internal calls, sans-IO: a phone of the gateway (an agent's, a supervisor's) that is in no call
//! dials another agent, a supervisor or a queue. Its call skips the IVR: it rings that party
//! (claimed from the ACD by the shell), or waits in that queue like a customer, and ends
//! `unanswered` when the party does not answer.

use super::parties::{refuse, Refusal};
use super::{CallController, CallOutput, CallState, EndReason, Phase};
use std::time::Instant;

/// What an internal call goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dial {
    /// An agent or a supervisor: it rings.
    Party(String),
    /// A queue: the caller waits in it.
    Queue(String),
}

impl CallController {
    /// The call is an internal one: no IVR; it waits for [`Self::handle_dial`].
    pub fn set_internal(&mut self) {
        self.internal = true;
    }

    /// True for an internal call.
    pub fn is_internal(&self) -> bool {
        self.internal
    }

    /// An internal call rings its party or enters its queue.
    pub fn handle_dial(&mut self, now: Instant, to: Dial) -> Result<(), Refusal> {
        if !self.internal || self.phase != Phase::Ivr || self.dialled.is_some() {
            return Err(refuse("not_internal", "only a new internal call dials"));
        }
        match to {
            Dial::Party(p) => {
                self.dialled = Some(p.clone());
                self.phase = Phase::Queued;
                self.ringing.push(p.clone());
                self.out.push_back(CallOutput::Invite { agent: p });
                self.out.push_back(CallOutput::State(CallState::Ringing));
            }
            Dial::Queue(q) => {
                self.dialled = Some(q.clone());
                self.enter_queue_at(now, q, None);
            }
        }
        Ok(())
    }

    /// An internal call ends while its party rings: the ACD hears the claimed party is free.
    pub(super) fn release_dialled(&mut self) {
        if self.internal && self.queue.is_none() {
            for agent in self.ringing.clone() {
                self.report(&agent, crate::acd::OfferResult::Rejected(487));
            }
        }
    }

    /// The party an internal call rang did not answer: the call is over.
    pub(super) fn dial_failed(&mut self) -> bool {
        let rang_party = self.internal
            && self.phase == Phase::Queued
            && self.queue.is_none()
            && self.ringing.is_empty();
        if rang_party {
            self.finish(EndReason::Unanswered);
        }
        rang_party
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::drain_all;
    use super::*;
    use crate::acd::OfferResult;
    use crate::ivr::IvrRunner;
    use std::collections::HashMap;

    fn internal() -> CallController {
        let mut c = CallController::new(IvrRunner::new(HashMap::new(), "main"), None);
        c.set_internal();
        c
    }

    #[test]
    fn an_internal_call_rings_its_party_without_an_ivr_and_ends_unanswered() {
        let t0 = Instant::now();
        let mut c = internal();
        c.handle_media_flowing(t0);
        assert!(drain_all(&mut c).is_empty(), "no IVR for an internal call");
        c.handle_dial(t0, Dial::Party("1002".into())).unwrap();
        assert_eq!(
            drain_all(&mut c),
            vec![
                CallOutput::Invite {
                    agent: "1002".into()
                },
                CallOutput::State(CallState::Ringing)
            ]
        );
        assert_eq!(
            c.handle_dial(t0, Dial::Party("x".into())).unwrap_err().code,
            "not_internal"
        );
        c.handle_agent_failed(t0, "1002", 486);
        let out = drain_all(&mut c);
        assert!(out.contains(&CallOutput::OfferResult {
            agent: "1002".into(),
            result: OfferResult::Rejected(486)
        }));
        assert_eq!(
            out.last(),
            Some(&CallOutput::End(EndReason::Unanswered)),
            "{out:?}"
        );
    }

    #[test]
    fn an_answered_internal_call_is_connected_and_a_queue_call_waits() {
        let t0 = Instant::now();
        let mut c = internal();
        c.handle_dial(t0, Dial::Party("1002".into())).unwrap();
        drain_all(&mut c);
        c.handle_agent_answered("1002");
        let out = drain_all(&mut c);
        assert!(
            out.contains(&CallOutput::PartyJoined {
                agent: "1002".into()
            }),
            "{out:?}"
        );
        assert_eq!(c.state(), CallState::Connected);
        let mut q = internal();
        q.handle_dial(t0, Dial::Queue("support".into())).unwrap();
        let out = drain_all(&mut q);
        assert!(
            out.iter()
                .any(|o| matches!(o, CallOutput::Enqueue { queue, .. } if queue == "support")),
            "{out:?}"
        );
        let mut not = CallController::new(IvrRunner::new(HashMap::new(), "main"), None);
        assert!(not.handle_dial(t0, Dial::Queue("support".into())).is_err());
    }
}
