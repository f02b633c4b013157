//! The parties of a call: agents answering, joining, leaving, holding and transferring, the external
//! IVR handing the customer back, the customer leaving, and the commands a console sends (add or
//! remove a party, hold, transfer, hang up). Each decision is an output; the shell carries it out.

use super::{Audio, CallController, CallOutput, CallState, EndReason, Phase};
use crate::acd::OfferResult;
use std::time::Instant;

/// Why a command does not fit the call's state (a REST 409), with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Stable code (`not_connected`, `already_in_call`, ...).
    pub code: &'static str,
    /// What a person reads.
    pub message: String,
}

pub(super) fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Where the API transfers a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// An agent (rings; the current agents leave at once).
    Agent(String),
    /// A queue (the customer waits there again).
    Queue(String),
}

impl CallController {
    /// An agent's phone answered (2xx).
    pub fn handle_agent_answered(&mut self, agent: &str) {
        if self.supervisor_answered(agent) || self.consult_answered(agent) {
            return;
        }
        match self.phase.clone() {
            Phase::ExternalIvr { party, .. } if party == agent => {
                self.hear(Audio::Agent);
            }
            Phase::Queued if self.ringing.iter().any(|a| a == agent) => {
                self.ringing.retain(|a| a != agent);
                self.report(agent, OfferResult::Answered);
                // Ring-all losers are cancelled by the ACD's answer to that result; a conference
                // queue's others go on ringing to join.
                if self.conference {
                    self.joining.append(&mut self.ringing);
                }
                self.phase = Phase::Connected { held: false };
                self.next_announce = None;
                self.join(agent);
                self.hear(Audio::Agent);
                self.out.push_back(CallOutput::State(CallState::Connected));
            }
            Phase::Connected { .. } if self.joining.iter().any(|a| a == agent) => {
                self.joining.retain(|a| a != agent);
                self.report(agent, OfferResult::Answered);
                self.join(agent);
            }
            Phase::Transferring {
                from,
                target,
                from_gone,
            } if target == agent => {
                // The API's targets were claimed from the ACD; a REFER's were not.
                if from.is_none() {
                    self.report(agent, OfferResult::Answered);
                }
                if let Some(from) = from {
                    self.out.push_back(CallOutput::TransferProgress {
                        agent: from.clone(),
                        status: 200,
                    });
                    if !from_gone {
                        self.out.push_back(CallOutput::Bye {
                            agent: from.clone(),
                        });
                    }
                    self.leave(&from);
                }
                self.phase = Phase::Connected { held: false };
                self.join(agent);
                self.hear(Audio::Agent);
                self.out.push_back(CallOutput::State(CallState::Connected));
            }
            _ => {
                // Answered too late (another agent won, or the customer left): hang it up.
                self.out.push_back(CallOutput::Bye {
                    agent: agent.to_string(),
                });
                self.report(agent, OfferResult::Rejected(487));
            }
        }
    }

    /// An agent's phone refused or failed (4xx/5xx/6xx, timeout) before answering.
    pub fn handle_agent_failed(&mut self, now: Instant, agent: &str, status: u16) {
        if self.supervisor_failed(agent) || self.consult_failed(agent, status) {
            return;
        }
        if let Phase::ExternalIvr { party, queue } = self.phase.clone() {
            if party == agent {
                // The external IVR is unreachable: the customer goes straight to the queue.
                self.enter_queue_at(now, queue, None);
                return;
            }
        }
        if let Phase::Transferring {
            from,
            target,
            from_gone,
        } = self.phase.clone()
        {
            if target == agent {
                if from.is_none() {
                    self.report(agent, OfferResult::Rejected(status));
                }
                self.transfer_failed(now, from, from_gone, status);
                return;
            }
        }
        if let Some(i) = self.ringing.iter().position(|a| a == agent) {
            self.ringing.remove(i);
            self.report(agent, OfferResult::Rejected(status));
            if self.dial_failed() {
                return;
            }
            self.after_ring_change();
        } else if let Some(i) = self.joining.iter().position(|a| a == agent) {
            self.joining.remove(i);
            self.report(agent, OfferResult::Rejected(status));
        }
    }

    fn transfer_failed(&mut self, now: Instant, from: Option<String>, gone: bool, status: u16) {
        match from {
            Some(from) => {
                self.out.push_back(CallOutput::TransferProgress {
                    agent: from.clone(),
                    status,
                });
                if gone {
                    self.phase = Phase::Connected { held: false };
                    self.leave(&from);
                    self.last_agent_left(now, EndReason::AgentHangup);
                } else {
                    // Back to the agent who tried to transfer.
                    self.phase = Phase::Connected { held: false };
                    self.hear(Audio::Agent);
                    self.out.push_back(CallOutput::State(CallState::Connected));
                }
            }
            // The API's transfer found nobody: the customer waits in the queue again.
            None => match self.queue.clone() {
                Some(q) => self.enter_queue_at(now, q, self.skill.clone()),
                None => self.finish(EndReason::AgentHangup),
            },
        }
    }

    /// The agent's side ended the dialog (BYE) or its media died.
    pub fn handle_agent_gone(&mut self, now: Instant, agent: &str, lost: bool) {
        if self.supervisor_gone(now, agent, lost) || self.consult_gone(agent, lost) {
            return;
        }
        match self.phase.clone() {
            Phase::ExternalIvr { party, .. } if party == agent => {
                // The IVR hung up without handing the call back.
                self.finish(EndReason::IvrHangup);
            }
            Phase::Transferring { from, target, .. } if from.as_deref() == Some(agent) => {
                // The transferor hangs up after 202, as blind transfer goes: keep the transfer.
                self.phase = Phase::Transferring {
                    from,
                    target,
                    from_gone: true,
                };
            }
            Phase::Connected { .. } if self.agents.iter().any(|a| a == agent) => {
                if lost {
                    // Its media stopped but its dialog may be up: hang that up too.
                    self.out.push_back(CallOutput::Bye {
                        agent: agent.to_string(),
                    });
                }
                self.leave(agent);
                let reason = if lost {
                    EndReason::AgentLost
                } else {
                    EndReason::AgentHangup
                };
                self.last_agent_left(now, reason);
            }
            _ => self.handle_agent_failed(now, agent, 487),
        }
    }

    /// After an agent left: with nobody left, the call ends (`reason`) or, where the queue says
    /// so, the customer waits in the queue again.
    pub(super) fn last_agent_left(&mut self, now: Instant, reason: EndReason) {
        let connected = matches!(self.phase, Phase::Connected { .. });
        if !self.agents.is_empty() || !connected || self.taken_over() {
            return;
        }
        match self.queue.clone() {
            Some(q) if self.requeue_after_last_agent => {
                self.cancel_joining();
                self.drop_consult();
                self.release_supervisors();
                self.enter_queue_at(now, q, self.skill.clone());
            }
            _ => {
                self.cancel_ringing();
                self.drop_consult();
                self.release_supervisors();
                self.finish(reason);
            }
        }
    }

    /// The agent holds (`true`) or resumes (`false`) the call (re-INVITE direction). With several
    /// agents in the call, one agent's hold only mutes that agent's leg: the customer stays.
    pub fn handle_agent_hold(&mut self, agent: &str, held: bool) {
        // During a consult the customer's hold belongs to the consult (a desk phone's session
        // refresh, or a console's consult, must not bring the customer back into it).
        if self.consult.is_some() {
            return;
        }
        if self.agents.len() == 1 && self.agents[0] == agent {
            self.set_held(held);
        }
    }

    pub(super) fn set_held(&mut self, held: bool) {
        if let Phase::Connected { held: h } = &mut self.phase {
            if *h != held {
                *h = held;
                let audio = if held {
                    Audio::Music(self.music.clone())
                } else {
                    Audio::Agent
                };
                self.hear(audio);
                self.out.push_back(CallOutput::State(self.state()));
            }
        }
    }

    /// The connected agent REFERs the call to `target` (blind transfer). Returns false when the
    /// call cannot be transferred now (the shell answers the REFER with an error): only the one
    /// agent of a two-party call transfers by REFER.
    pub fn handle_transfer(&mut self, agent: &str, target: &str) -> bool {
        // A blind REFER in the middle of a consult would race it: finish or cancel that first.
        if !matches!(self.phase, Phase::Connected { .. })
            || self.agents != [agent]
            || target == agent
            || self.consult.is_some()
        {
            return false;
        }
        self.phase = Phase::Transferring {
            from: Some(agent.to_string()),
            target: target.to_string(),
            from_gone: false,
        };
        self.out.push_back(CallOutput::Invite {
            agent: target.to_string(),
        });
        self.hear(Audio::Prompt("transfer".into()));
        self.out
            .push_back(CallOutput::State(CallState::Transferring));
        true
    }

    /// A party REFERs the call to `target` (the Refer-To's user part): the SIP status to answer
    /// (RFC 3515). An agent may blind-transfer to a configured agent (403 otherwise); a queue's
    /// external IVR may hand the customer back to a configured queue (404 otherwise); a REFER
    /// that does not fit the call's state now gets 491. On 202 the transfer has begun.
    pub fn handle_refer(&mut self, now: Instant, party: &str, target: Option<&str>) -> u16 {
        if self.external_ivr() == Some(party) {
            let Some(queue) = target.filter(|q| self.known_queues.iter().any(|k| k == q)) else {
                return 404;
            };
            let queue = queue.to_string();
            return if self.handle_ivr_refer(now, party, &queue) {
                202
            } else {
                491
            };
        }
        let Some(target) = target.filter(|t| self.known_agents.iter().any(|k| k == t)) else {
            return 403;
        };
        let target = target.to_string();
        if self.handle_transfer(party, &target) {
            202
        } else {
            491
        }
    }

    /// The external IVR REFERs the call back to the gateway naming `queue` (self-transfer): answer
    /// 202 when this returns true; the IVR leg is NOTIFYd and released, the customer enters `queue`.
    pub fn handle_ivr_refer(&mut self, now: Instant, party: &str, queue: &str) -> bool {
        match &self.phase {
            Phase::ExternalIvr { party: p, .. } if p == party => {}
            _ => return false,
        }
        self.out.push_back(CallOutput::TransferProgress {
            agent: party.to_string(),
            status: 200,
        });
        self.out.push_back(CallOutput::Bye {
            agent: party.to_string(),
        });
        self.enter_queue_at(now, queue.to_string(), None);
        true
    }

    /// The customer hung up (or their transport closed).
    pub fn handle_customer_gone(&mut self, lost: bool) {
        let reason = if lost {
            EndReason::ConnectionLost
        } else {
            EndReason::CustomerHangup
        };
        self.end_with(reason);
    }

    /// The gateway ends the call (shutdown grace over, internal failure).
    pub fn handle_abort(&mut self, reason: EndReason) {
        self.end_with(reason);
    }

    /// Everybody is released and the call ends with `reason`.
    fn end_with(&mut self, reason: EndReason) {
        let mut gone = None;
        match self.phase.clone() {
            Phase::Ended(_) => return,
            Phase::ExternalIvr { party, .. } => {
                self.out.push_back(CallOutput::Bye { agent: party });
            }
            Phase::Queued => {
                self.release_dialled();
                self.cancel_ringing();
                self.out.push_back(CallOutput::Abandon);
            }
            Phase::Transferring {
                from,
                target,
                from_gone,
            } => {
                self.out.push_back(CallOutput::Cancel { agent: target });
                gone = from.filter(|_| from_gone);
            }
            _ => self.cancel_ringing(),
        }
        for agent in self.agents.clone() {
            if gone.as_ref() != Some(&agent) {
                self.out.push_back(CallOutput::Bye {
                    agent: agent.clone(),
                });
            }
            self.leave(&agent);
        }
        self.drop_consult();
        self.release_supervisors();
        self.finish(reason);
    }

    /// Whether `agent` could be added to the call now (before the shell claims the agent).
    pub fn check_add_party(&self, agent: &str) -> Result<(), Refusal> {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return Err(refuse(
                "not_connected",
                format!(
                    "the call is {}: parties join connected calls",
                    self.state().name()
                ),
            ));
        }
        if self.agents.iter().any(|a| a == agent) {
            return Err(refuse("already_in_call", format!("{agent} is in the call")));
        }
        if self.ringing().any(|a| a == agent) {
            return Err(refuse("already_ringing", format!("{agent} is ringing")));
        }
        Ok(())
    }

    /// Rings `agent` to join the connected call (after [`Self::check_add_party`] and the claim).
    pub fn handle_add_party(&mut self, agent: &str) -> Result<(), Refusal> {
        self.check_add_party(agent)?;
        self.joining.push(agent.to_string());
        self.out.push_back(CallOutput::Invite {
            agent: agent.to_string(),
        });
        Ok(())
    }

    /// Removes `agent` from the call (BYE), or stops it ringing to join (CANCEL).
    pub fn handle_remove_party(&mut self, now: Instant, agent: &str) -> Result<(), Refusal> {
        if self.remove_supervisor(now, agent) {
            return Ok(());
        }
        if let Some(i) = self.joining.iter().position(|a| a == agent) {
            self.joining.remove(i);
            self.out.push_back(CallOutput::Cancel {
                agent: agent.to_string(),
            });
            self.report(agent, OfferResult::Rejected(487));
            return Ok(());
        }
        if !matches!(self.phase, Phase::Connected { .. }) || !self.agents.iter().any(|a| a == agent)
        {
            return Err(refuse(
                "not_in_call",
                format!("{agent} is not a party of this call"),
            ));
        }
        self.out.push_back(CallOutput::Bye {
            agent: agent.to_string(),
        });
        self.leave(agent);
        self.last_agent_left(now, EndReason::AgentHangup);
        Ok(())
    }

    /// The API holds (`true`) or resumes the customer: music to the customer, who is not heard.
    pub fn handle_hold(&mut self, held: bool) -> Result<(), Refusal> {
        if !matches!(self.phase, Phase::Connected { .. }) {
            let what = if held { "held" } else { "resumed" };
            return Err(refuse(
                "not_connected",
                format!(
                    "the call is {}: only a connected call can be {what}",
                    self.state().name()
                ),
            ));
        }
        self.set_held(held);
        Ok(())
    }

    /// The API plays the prompt `name` to the customer of a connected call (who then hears the
    /// parties again, or the music while held).
    pub fn handle_play(&mut self, name: &str) -> Result<(), Refusal> {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return Err(refuse(
                "not_connected",
                format!(
                    "the call is {}: prompts play into connected calls",
                    self.state().name()
                ),
            ));
        }
        self.hear(Audio::Prompt(name.to_string()));
        Ok(())
    }

    /// Whether the API may transfer the call now (before the shell claims a target agent).
    pub fn check_transfer(&self) -> Result<(), Refusal> {
        match self.phase {
            Phase::Connected { .. } => Ok(()),
            _ => Err(refuse(
                "not_connected",
                format!(
                    "the call is {}: only a connected call can be transferred",
                    self.state().name()
                ),
            )),
        }
    }

    /// The API transfers the call: every agent leaves now; the customer hears the transfer prompt
    /// while the target agent rings, or waits in the target queue.
    pub fn handle_transfer_to(
        &mut self,
        now: Instant,
        target: TransferTarget,
    ) -> Result<(), Refusal> {
        self.check_transfer()?;
        if let TransferTarget::Agent(a) = &target {
            if self.agents.iter().any(|x| x == a) && self.agents.len() == 1 {
                return Err(refuse(
                    "already_in_call",
                    format!("{a} is the agent of this call"),
                ));
            }
        }
        self.cancel_joining();
        self.drop_consult();
        for agent in self.agents.clone() {
            self.out.push_back(CallOutput::Bye {
                agent: agent.clone(),
            });
            self.leave(&agent);
        }
        self.out
            .push_back(CallOutput::State(CallState::Transferring));
        match target {
            TransferTarget::Agent(agent) => {
                self.phase = Phase::Transferring {
                    from: None,
                    target: agent.clone(),
                    from_gone: true,
                };
                self.out.push_back(CallOutput::Invite { agent });
                self.hear(Audio::Prompt("transfer".into()));
            }
            TransferTarget::Queue(q) => self.enter_queue_at(now, q, None),
        }
        Ok(())
    }

    /// The API hangs the call up: everybody gets BYE.
    pub fn handle_hangup(&mut self) -> Result<(), Refusal> {
        if self.is_ended() || matches!(self.phase, Phase::Closing(_)) {
            return Err(refuse("ended", "the call is ending"));
        }
        self.end_with(EndReason::ApiHangup);
        Ok(())
    }

    pub(super) fn report(&mut self, agent: &str, result: OfferResult) {
        self.out.push_back(CallOutput::OfferResult {
            agent: agent.to_string(),
            result,
        });
    }

    pub(super) fn join(&mut self, agent: &str) {
        self.agents.push(agent.to_string());
        self.out.push_back(CallOutput::PartyJoined {
            agent: agent.to_string(),
        });
    }

    pub(super) fn leave(&mut self, agent: &str) {
        if let Some(i) = self.agents.iter().position(|a| a == agent) {
            self.agents.remove(i);
        }
        self.out.push_back(CallOutput::AgentReleased {
            agent: agent.to_string(),
        });
        self.out.push_back(CallOutput::PartyLeft {
            agent: agent.to_string(),
        });
    }
}
