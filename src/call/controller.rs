//! One call's state machine, sans-IO: the customer leg meets the IVR, waits in a queue, is offered
//! to agents, is connected (the "incoming-idle" back-to-back call), may be held or transferred, and
//! ends with a reason. Time is an argument.
//!
//! Drive it with `handle_*`, then drain [`CallController::poll_output`] until `None`; wake at
//! [`CallController::poll_timeout`] and call [`CallController::handle_timeout`]. The shell turns the
//! outputs into media commands, ACD messages, SIP requests and widget messages.

use crate::acd::{OfferResult, Overflow};
use crate::ivr::{IvrOutput, IvrRunner, MenuAction};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Why a call ended (the widget's `reason`, stable strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The customer hung up (widget hangup, socket closed, BYE/CANCEL from the customer's side).
    CustomerHangup,
    /// The agent hung up.
    AgentHangup,
    /// No agent is logged in for the queue and the queue says hang up.
    NoAgents,
    /// The customer waited longer than the queue allows.
    MaxWait,
    /// The IVR ended the call (hang-up option, retries used up).
    IvrHangup,
    /// The customer's media stopped (ICE consent lost, RTP timeout).
    ConnectionLost,
    /// The agent's media stopped.
    AgentLost,
    /// The gateway is shutting down.
    Shutdown,
    /// Something failed inside the gateway.
    Error,
}

impl EndReason {
    /// The stable string sent to the widget and written to records.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CustomerHangup => "customer_hangup",
            EndReason::AgentHangup => "agent_hangup",
            EndReason::NoAgents => "no_agents",
            EndReason::MaxWait => "max_wait",
            EndReason::IvrHangup => "ivr_hangup",
            EndReason::ConnectionLost => "connection_lost",
            EndReason::AgentLost => "agent_lost",
            EndReason::Shutdown => "shutdown",
            EndReason::Error => "error",
        }
    }
}

/// The call's state as the widget and the REST API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// In the IVR menus.
    Ivr,
    /// Waiting in a queue (1 = next), with an estimated wait.
    Queued {
        /// Position, when the ACD has told us.
        position: Option<usize>,
        /// Estimated wait in seconds.
        estimated_wait_secs: Option<u64>,
    },
    /// An agent's phone rings.
    Ringing,
    /// Talking to an agent.
    Connected,
    /// The agent holds the call (the customer hears music).
    OnHold,
    /// The agent transferred the call; the target rings.
    Transferring,
    /// Over.
    Ended(EndReason),
}

impl CallState {
    /// The widget's `state` string.
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Ivr => "ivr",
            CallState::Queued { .. } => "queued",
            CallState::Ringing => "ringing",
            CallState::Connected => "connected",
            CallState::OnHold => "on_hold",
            CallState::Transferring => "transferring",
            CallState::Ended(_) => "ended",
        }
    }
}

/// What the customer hears from the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    /// A named prompt, once (then [`CallController::handle_prompt_done`]).
    Prompt(String),
    /// "You are caller number N", once.
    Position(usize),
    /// The queue's music, looped.
    Music(String),
    /// The agent (bridge the legs).
    Agent,
}

/// What the shell should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutput {
    /// Change what the customer hears.
    Play(Audio),
    /// Tell the widget (and the REST view) the new state.
    State(CallState),
    /// Enter the ACD queue.
    Enqueue {
        /// Queue name.
        queue: String,
        /// Skill hint.
        skill: Option<String>,
    },
    /// Leave the ACD queue (abandoned before an agent answered).
    Abandon,
    /// Report how an offer ended to the ACD.
    OfferResult {
        /// Agent id.
        agent: String,
        /// Answered or refused.
        result: OfferResult,
    },
    /// The agent's call is over: the ACD starts its wrap-up.
    AgentReleased {
        /// Agent id.
        agent: String,
    },
    /// INVITE this agent (with the context headers).
    Invite {
        /// Agent id (or transfer target).
        agent: String,
    },
    /// CANCEL the INVITE to this agent.
    Cancel {
        /// Agent id.
        agent: String,
    },
    /// BYE this agent's dialog.
    Bye {
        /// Agent id.
        agent: String,
    },
    /// NOTIFY the transferring agent of the transfer's progress (sipfrag status line).
    TransferProgress {
        /// The agent who sent REFER.
        agent: String,
        /// SIP status of the INVITE to the target.
        status: u16,
    },
    /// Hang up the customer's leg and stop; nothing more will come.
    End(EndReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Ivr,
    /// Bridged to the queue's external IVR until it REFERs the call back to a queue.
    ExternalIvr {
        party: String,
        queue: String,
    },
    Queued,
    Connected {
        agent: String,
        held: bool,
    },
    Transferring {
        from: String,
        target: String,
        from_gone: bool,
    },
    /// Playing a last prompt, then ending.
    Closing(EndReason),
    /// Over, for this reason.
    Ended(EndReason),
}

/// One call. See the module docs for the drive contract.
#[derive(Debug)]
pub struct CallController {
    phase: Phase,
    ivr: IvrRunner,
    queue: Option<String>,
    skill: Option<String>,
    music: String,
    announce_every: Option<Duration>,
    next_announce: Option<Instant>,
    ringing: Vec<String>,
    position: Option<usize>,
    estimated_wait: Option<u64>,
    flowing: bool,
    /// A direct queue (the widget named one): skip the IVR menus.
    direct: Option<(String, Option<String>)>,
    /// What the customer currently hears.
    hearing: Option<Audio>,
    /// Queues that first B2B the customer to an external IVR.
    external_ivr: Vec<String>,
    out: VecDeque<CallOutput>,
}

/// The party name of a queue's external IVR leg.
pub fn external_ivr_party(queue: &str) -> String {
    format!("ivr:{queue}")
}

/// How a queue sounds to the customer waiting in it.
#[derive(Debug, Clone)]
pub struct QueueSound {
    /// Music-on-hold prompt name.
    pub music: String,
    /// Position announcements every so often.
    pub announce_every: Option<Duration>,
}

impl CallController {
    /// A new call whose customer meets the IVR `ivr`, or goes straight to `direct` (queue, skill).
    pub fn new(ivr: IvrRunner, direct: Option<(String, Option<String>)>) -> Self {
        CallController {
            phase: Phase::Ivr,
            ivr,
            queue: None,
            skill: None,
            music: "moh".into(),
            announce_every: None,
            next_announce: None,
            ringing: Vec::new(),
            position: None,
            estimated_wait: None,
            flowing: false,
            direct,
            hearing: None,
            external_ivr: Vec::new(),
            out: VecDeque::new(),
        }
    }

    /// Queues whose customers first go to an external IVR (which REFERs them back to a queue).
    pub fn set_external_ivrs(&mut self, queues: Vec<String>) {
        self.external_ivr = queues;
    }

    /// The current state.
    pub fn state(&self) -> CallState {
        match &self.phase {
            Phase::Ivr | Phase::ExternalIvr { .. } => CallState::Ivr,
            Phase::Queued if !self.ringing.is_empty() => CallState::Ringing,
            Phase::Queued => CallState::Queued {
                position: self.position,
                estimated_wait_secs: self.estimated_wait,
            },
            Phase::Connected { held: false, .. } => CallState::Connected,
            Phase::Connected { held: true, .. } => CallState::OnHold,
            Phase::Transferring { .. } => CallState::Transferring,
            Phase::Closing(r) => CallState::Ended(*r),
            Phase::Ended(r) => CallState::Ended(*r),
        }
    }

    /// The IVR path taken (menu names and digits), for the record.
    pub fn ivr_path(&self) -> &[String] {
        &self.ivr.path
    }

    /// The queue the call is in (or was last in).
    pub fn queue(&self) -> Option<&str> {
        self.queue.as_deref()
    }

    /// The connected agent, if any.
    pub fn agent(&self) -> Option<&str> {
        match &self.phase {
            Phase::Connected { agent, .. } => Some(agent),
            Phase::Transferring { from, .. } => Some(from),
            _ => None,
        }
    }

    /// True once the call has ended.
    pub fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }

    /// The queue's music and announcements (the shell knows the config).
    pub fn set_queue_sound(&mut self, sound: QueueSound) {
        self.music = sound.music;
        self.announce_every = sound.announce_every;
    }

    /// The customer's media flows: the IVR (or the queue) starts now, never clipped.
    pub fn handle_media_flowing(&mut self, now: Instant) {
        if self.flowing {
            return;
        }
        self.flowing = true;
        if self.phase != Phase::Ivr {
            return;
        }
        if let Some((queue, skill)) = self.direct.take() {
            self.enter_queue(now, queue, skill);
            return;
        }
        self.ivr.handle_media_flowing();
        self.drain_ivr(now);
    }

    /// A digit from the customer.
    pub fn handle_digit(&mut self, now: Instant, digit: char) {
        if self.phase == Phase::Ivr {
            self.ivr.handle_digit(digit);
            self.drain_ivr(now);
        }
    }

    /// The prompt the customer heard has ended.
    pub fn handle_prompt_done(&mut self, now: Instant) {
        match &self.phase {
            Phase::Ivr => {
                self.ivr.handle_prompt_done(now);
                self.drain_ivr(now);
            }
            Phase::Queued if self.hearing_prompt() => {
                self.hear(Audio::Music(self.music.clone()));
            }
            Phase::Transferring { .. } => self.hear(Audio::Music(self.music.clone())),
            Phase::Closing(reason) => {
                let reason = *reason;
                self.finish(reason);
            }
            _ => {}
        }
    }

    /// The ACD's view of our place in the queue.
    pub fn handle_position(&mut self, position: usize, estimated_wait_secs: u64) {
        if self.phase != Phase::Queued {
            return;
        }
        if self.position != Some(position) || self.estimated_wait != Some(estimated_wait_secs) {
            self.position = Some(position);
            self.estimated_wait = Some(estimated_wait_secs);
            if self.ringing.is_empty() {
                self.out.push_back(CallOutput::State(self.state()));
            }
        }
    }

    /// The ACD offers the call to these agents: ring them.
    pub fn handle_offer(&mut self, agents: Vec<String>) {
        if self.phase != Phase::Queued {
            // The call moved on (ended, connected): the ACD learns through the results.
            for agent in agents {
                self.out.push_back(CallOutput::OfferResult {
                    agent,
                    result: OfferResult::Rejected(487),
                });
            }
            return;
        }
        let was_ringing = !self.ringing.is_empty();
        for agent in agents {
            if !self.ringing.contains(&agent) {
                self.out.push_back(CallOutput::Invite {
                    agent: agent.clone(),
                });
                self.ringing.push(agent);
            }
        }
        if !was_ringing && !self.ringing.is_empty() {
            self.out.push_back(CallOutput::State(CallState::Ringing));
        }
    }

    /// The ACD stops an offer (ring timeout, another agent answered in ring-all).
    pub fn handle_cancel(&mut self, agents: Vec<String>) {
        for agent in agents {
            if let Some(i) = self.ringing.iter().position(|a| a == &agent) {
                self.ringing.remove(i);
                self.out.push_back(CallOutput::Cancel { agent });
            }
        }
        self.after_ring_change();
    }

    /// The ACD moved the call out of its queue.
    pub fn handle_overflow(&mut self, now: Instant, action: Overflow, max_wait: bool) {
        match action {
            Overflow::Wait => {}
            Overflow::HangUp => {
                let reason = if max_wait {
                    EndReason::MaxWait
                } else {
                    EndReason::NoAgents
                };
                self.cancel_ringing();
                let prompt = if max_wait { "max_wait" } else { "no_agents" };
                self.close_with_prompt(reason, prompt);
            }
            Overflow::Queue(q) => {
                self.queue = Some(q);
                self.position = None;
                self.next_announce = self.announce_every.map(|d| now + d);
                self.out.push_back(CallOutput::State(self.state()));
            }
        }
    }

    /// An agent's phone answered (2xx).
    pub fn handle_agent_answered(&mut self, agent: &str) {
        match self.phase.clone() {
            Phase::ExternalIvr { party, .. } if party == agent => {
                self.hear(Audio::Agent);
            }
            Phase::Queued if self.ringing.iter().any(|a| a == agent) => {
                self.ringing.retain(|a| a != agent);
                self.out.push_back(CallOutput::OfferResult {
                    agent: agent.to_string(),
                    result: OfferResult::Answered,
                });
                // Ring-all losers are cancelled by the ACD's answer to that result.
                self.phase = Phase::Connected {
                    agent: agent.to_string(),
                    held: false,
                };
                self.next_announce = None;
                self.hear(Audio::Agent);
                self.out.push_back(CallOutput::State(CallState::Connected));
            }
            Phase::Transferring {
                from,
                target,
                from_gone,
            } if target == agent => {
                self.out.push_back(CallOutput::TransferProgress {
                    agent: from.clone(),
                    status: 200,
                });
                if !from_gone {
                    self.out.push_back(CallOutput::Bye {
                        agent: from.clone(),
                    });
                }
                self.out
                    .push_back(CallOutput::AgentReleased { agent: from });
                self.phase = Phase::Connected {
                    agent: target,
                    held: false,
                };
                self.hear(Audio::Agent);
                self.out.push_back(CallOutput::State(CallState::Connected));
            }
            _ => {
                // Answered too late (another agent won, or the customer left): hang it up.
                self.out.push_back(CallOutput::Bye {
                    agent: agent.to_string(),
                });
                self.out.push_back(CallOutput::OfferResult {
                    agent: agent.to_string(),
                    result: OfferResult::Rejected(487),
                });
            }
        }
    }

    /// An agent's phone refused or failed (4xx/5xx/6xx, timeout) before answering.
    pub fn handle_agent_failed(&mut self, now: Instant, agent: &str, status: u16) {
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
                self.out.push_back(CallOutput::TransferProgress {
                    agent: from.clone(),
                    status,
                });
                if from_gone {
                    self.out
                        .push_back(CallOutput::AgentReleased { agent: from });
                    self.finish(EndReason::AgentHangup);
                } else {
                    // Back to the agent who tried to transfer.
                    self.phase = Phase::Connected {
                        agent: from,
                        held: false,
                    };
                    self.hear(Audio::Agent);
                    self.out.push_back(CallOutput::State(CallState::Connected));
                }
                return;
            }
        }
        if let Some(i) = self.ringing.iter().position(|a| a == agent) {
            self.ringing.remove(i);
            self.out.push_back(CallOutput::OfferResult {
                agent: agent.to_string(),
                result: OfferResult::Rejected(status),
            });
            self.after_ring_change();
        }
    }

    /// The agent's side ended the dialog (BYE) or its media died.
    pub fn handle_agent_gone(&mut self, now: Instant, agent: &str, lost: bool) {
        match self.phase.clone() {
            Phase::ExternalIvr { party, .. } if party == agent => {
                // The IVR hung up without handing the call back.
                self.finish(EndReason::IvrHangup);
            }
            Phase::Connected { agent: a, .. } if a == agent => {
                self.out.push_back(CallOutput::AgentReleased {
                    agent: agent.to_string(),
                });
                if lost {
                    // Its media stopped but its dialog may be up: hang that up too.
                    self.out.push_back(CallOutput::Bye {
                        agent: agent.to_string(),
                    });
                }
                self.finish(if lost {
                    EndReason::AgentLost
                } else {
                    EndReason::AgentHangup
                });
            }
            Phase::Transferring { from, target, .. } if from == agent => {
                // The transferor hangs up after 202, as blind transfer goes: keep the transfer.
                self.phase = Phase::Transferring {
                    from,
                    target,
                    from_gone: true,
                };
            }
            Phase::Transferring { from, target, .. } if target == agent => {
                self.handle_agent_failed(now, agent, 487);
                let _ = from;
            }
            _ => self.handle_agent_failed(now, agent, 487),
        }
    }

    /// The agent holds (`true`) or resumes (`false`) the call (re-INVITE direction).
    pub fn handle_agent_hold(&mut self, agent: &str, held: bool) {
        if let Phase::Connected { agent: a, held: h } = &mut self.phase {
            if a == agent && *h != held {
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
    /// call cannot be transferred now (the shell answers the REFER with an error).
    pub fn handle_transfer(&mut self, agent: &str, target: &str) -> bool {
        let Phase::Connected { agent: a, .. } = &self.phase else {
            return false;
        };
        if a != agent || target == agent {
            return false;
        }
        self.phase = Phase::Transferring {
            from: agent.to_string(),
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

    /// True while the customer is with an external IVR.
    pub fn in_external_ivr(&self) -> bool {
        matches!(self.phase, Phase::ExternalIvr { .. })
    }

    /// The customer hung up (or their transport closed).
    pub fn handle_customer_gone(&mut self, lost: bool) {
        let reason = if lost {
            EndReason::ConnectionLost
        } else {
            EndReason::CustomerHangup
        };
        match self.phase.clone() {
            Phase::Ivr | Phase::Closing(_) => self.finish(reason),
            Phase::ExternalIvr { party, .. } => {
                self.out.push_back(CallOutput::Bye { agent: party });
                self.finish(reason);
            }
            Phase::Queued => {
                self.cancel_ringing();
                self.out.push_back(CallOutput::Abandon);
                self.finish(reason);
            }
            Phase::Connected { agent, .. } => {
                self.out.push_back(CallOutput::Bye {
                    agent: agent.clone(),
                });
                self.out.push_back(CallOutput::AgentReleased { agent });
                self.finish(reason);
            }
            Phase::Transferring {
                from,
                target,
                from_gone,
            } => {
                self.out.push_back(CallOutput::Cancel { agent: target });
                if !from_gone {
                    self.out.push_back(CallOutput::Bye {
                        agent: from.clone(),
                    });
                }
                self.out
                    .push_back(CallOutput::AgentReleased { agent: from });
                self.finish(reason);
            }
            Phase::Ended(_) => {}
        }
    }

    /// The gateway ends the call (shutdown grace over, internal failure).
    pub fn handle_abort(&mut self, reason: EndReason) {
        match self.phase.clone() {
            Phase::ExternalIvr { party, .. } => {
                self.out.push_back(CallOutput::Bye { agent: party });
            }
            Phase::Connected { agent, .. } => {
                self.out.push_back(CallOutput::Bye {
                    agent: agent.clone(),
                });
                self.out.push_back(CallOutput::AgentReleased { agent });
            }
            Phase::Queued => {
                self.cancel_ringing();
                self.out.push_back(CallOutput::Abandon);
            }
            Phase::Transferring { from, target, .. } => {
                self.out.push_back(CallOutput::Cancel { agent: target });
                self.out.push_back(CallOutput::Bye {
                    agent: from.clone(),
                });
                self.out
                    .push_back(CallOutput::AgentReleased { agent: from });
            }
            _ => {}
        }
        if !self.is_ended() {
            self.finish(reason);
        }
    }

    /// The next deadline: the IVR's input timeout or the next position announcement.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ivr => self.ivr.poll_timeout(),
            Phase::Queued if self.ringing.is_empty() => self.next_announce,
            _ => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Ivr => {
                self.ivr.handle_timeout(now);
                self.drain_ivr(now);
            }
            Phase::Queued => {
                if let (Some(at), Some(every)) = (self.next_announce, self.announce_every) {
                    if now >= at {
                        self.next_announce = Some(now + every);
                        if let (Some(p), true) = (self.position, self.ringing.is_empty()) {
                            self.hear(Audio::Position(p));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.out.pop_front()
    }

    fn drain_ivr(&mut self, now: Instant) {
        while let Some(o) = self.ivr.poll_output() {
            match o {
                IvrOutput::Play(p) => self.hear(Audio::Prompt(p)),
                IvrOutput::Done(MenuAction::Queue { queue, skill }) => {
                    self.enter_queue(now, queue, skill)
                }
                IvrOutput::Done(_) => self.close_with_prompt(EndReason::IvrHangup, "goodbye"),
            }
        }
    }

    fn enter_queue(&mut self, now: Instant, queue: String, skill: Option<String>) {
        if self.external_ivr.contains(&queue) {
            let party = external_ivr_party(&queue);
            self.phase = Phase::ExternalIvr {
                party: party.clone(),
                queue,
            };
            self.out.push_back(CallOutput::Invite { agent: party });
            return;
        }
        self.enter_queue_at(now, queue, skill);
    }

    fn enter_queue_at(&mut self, now: Instant, queue: String, skill: Option<String>) {
        self.phase = Phase::Queued;
        self.queue = Some(queue.clone());
        self.skill = skill.clone();
        self.out.push_back(CallOutput::Enqueue { queue, skill });
        self.out.push_back(CallOutput::State(self.state()));
        self.hear(Audio::Prompt("queued".into()));
        self.next_announce = self.announce_every.map(|d| now + d);
    }

    fn after_ring_change(&mut self) {
        if self.phase == Phase::Queued && self.ringing.is_empty() {
            self.out.push_back(CallOutput::State(self.state()));
        }
    }

    fn cancel_ringing(&mut self) {
        for agent in std::mem::take(&mut self.ringing) {
            self.out.push_back(CallOutput::Cancel { agent });
        }
    }

    fn close_with_prompt(&mut self, reason: EndReason, prompt: &str) {
        self.phase = Phase::Closing(reason);
        self.hear(Audio::Prompt(prompt.into()));
    }

    fn finish(&mut self, reason: EndReason) {
        self.phase = Phase::Ended(reason);
        self.out
            .push_back(CallOutput::State(CallState::Ended(reason)));
        self.out.push_back(CallOutput::End(reason));
    }

    fn hearing_prompt(&self) -> bool {
        matches!(self.hearing, Some(Audio::Prompt(_) | Audio::Position(_)))
    }

    fn hear(&mut self, audio: Audio) {
        self.hearing = Some(audio.clone());
        self.out.push_back(CallOutput::Play(audio));
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
