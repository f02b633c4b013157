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
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use outputs::{Audio, CallOutput, CallState, EndReason};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Ivr,
    /// Bridged to the queue's external IVR until it REFERs the call back to a queue.
    ExternalIvr {
        party: String,
        queue: String,
    },
    Queued,
    /// Talking to the agents in `CallController::agents` (one or more).
    Connected {
        held: bool,
    },
    /// Being transferred to `target`; `from` is the agent who REFERred (`None`: the API asked),
    /// who stays until the target answers unless gone.
    Transferring {
        from: Option<String>,
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
    /// Agents the ACD offered the waiting call to, ringing.
    ringing: Vec<String>,
    /// Agents ringing to join the connected call (a conference queue's others, agents added).
    joining: Vec<String>,
    /// Agents in the call, in the order they joined.
    agents: Vec<String>,
    /// Supervisors ringing for or in the call.
    supervisors: Vec<supervision::Supervisor>,
    /// Keys that switch a supervisor's mode.
    supervisor_keys: Vec<(char, supervision::Mode)>,
    /// A consult call (attended transfer) in progress.
    consult: Option<consult::Consult>,
    /// An internal call (a phone of the gateway calling): no IVR.
    internal: bool,
    /// What the internal call dialled.
    dialled: Option<String>,
    /// The queue rings several agents and each that answers joins.
    conference: bool,
    /// When the last agent leaves, the customer waits in the queue again (else the call ends).
    requeue_after_last_agent: bool,
    /// The queue's announcement, still to be heard.
    announcement: Option<String>,
    position: Option<usize>,
    estimated_wait: Option<u64>,
    flowing: bool,
    /// A direct queue (the widget named one): skip the IVR menus.
    direct: Option<(String, Option<String>)>,
    /// What the customer currently hears.
    hearing: Option<Audio>,
    /// Queues that first B2B the customer to an external IVR.
    external_ivr: Vec<String>,
    /// The configured agents (a REFER may name one) and queues (an external IVR may name one),
    /// shared by every call (a copy per call cost as much as the rest of a call's setup with
    /// thousands of agents).
    known_agents: Arc<[String]>,
    known_queues: Arc<[String]>,
    /// The customer's signalling (a widget's socket): who holds it, and until when a lost one may
    /// come back.
    link: attachment::Link,
    out: VecDeque<CallOutput>,
}

/// The record's outcome of an offer an agent's phone answered with `status` (4xx/5xx/6xx).
pub fn offer_outcome(status: u16) -> &'static str {
    match status {
        486 | 600 => "busy",
        408 | 480 | 487 => "no_answer",
        _ => "rejected",
    }
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
    /// A conference queue: each agent that answers joins the call.
    pub conference: bool,
    /// When the last agent leaves, the customer waits in the queue again (else the call ends).
    pub requeue_after_last_agent: bool,
    /// A prompt the customer hears once after the queue's greeting ("this call may be
    /// recorded"), before the music.
    pub announcement: Option<String>,
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
            joining: Vec::new(),
            agents: Vec::new(),
            supervisors: Vec::new(),
            supervisor_keys: Vec::new(),
            consult: None,
            internal: false,
            dialled: None,
            conference: false,
            requeue_after_last_agent: false,
            announcement: None,
            position: None,
            estimated_wait: None,
            flowing: false,
            direct,
            hearing: None,
            external_ivr: Vec::new(),
            known_agents: Arc::from([]),
            known_queues: Arc::from([]),
            link: attachment::Link::default(),
            out: VecDeque::new(),
        }
    }

    /// Queues whose customers first go to an external IVR (which REFERs them back to a queue).
    pub fn set_external_ivrs(&mut self, queues: Vec<String>) {
        self.external_ivr = queues;
    }

    /// The configured agents and queues: what a REFER may name.
    pub fn set_known(&mut self, agents: Arc<[String]>, queues: Arc<[String]>) {
        self.known_agents = agents;
        self.known_queues = queues;
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
            Phase::Connected { held: false } => CallState::Connected,
            Phase::Connected { held: true } => CallState::OnHold,
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

    /// The first agent in the call, if any.
    pub fn agent(&self) -> Option<&str> {
        self.agents.first().map(String::as_str)
    }

    /// The agents in the call, in the order they joined.
    pub fn agents(&self) -> &[String] {
        &self.agents
    }

    /// True when `party` is a party of the call now (so its leg belongs in the call's media): an
    /// agent, the external IVR, a supervisor who joined, a consult's target or leg.
    pub fn is_in_call(&self, party: &str) -> bool {
        self.agents.iter().any(|a| a == party)
            || self.external_ivr() == Some(party)
            || self.supervisors().iter().any(|(s, _)| *s == party)
            || self.consult_parties().contains(&party)
    }

    /// The agents ringing for the call (offered, or joining it).
    pub fn ringing(&self) -> impl Iterator<Item = &str> {
        self.ringing.iter().chain(&self.joining).map(String::as_str)
    }

    /// True while the customer is on hold (hears music, is not heard).
    pub fn is_held(&self) -> bool {
        matches!(self.phase, Phase::Connected { held: true })
    }

    /// The external IVR party while the customer is with it.
    pub fn external_ivr(&self) -> Option<&str> {
        match &self.phase {
            Phase::ExternalIvr { party, .. } => Some(party),
            _ => None,
        }
    }

    /// The current menu's button labels, while the customer is in the IVR.
    pub fn menu_labels(&self) -> &[(char, String)] {
        match self.phase {
            Phase::Ivr => self.ivr.labels(),
            _ => &[],
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
        self.conference = sound.conference;
        self.requeue_after_last_agent = sound.requeue_after_last_agent;
        self.announcement = sound.announcement;
    }

    /// The customer's media flows: the IVR (or the queue) starts now, never clipped.
    pub fn handle_media_flowing(&mut self, now: Instant) {
        if self.flowing {
            return;
        }
        self.flowing = true;
        if self.phase != Phase::Ivr || self.internal {
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
            Phase::Queued if self.hearing_prompt() => match self.announcement.take() {
                Some(a) => self.hear(Audio::Prompt(a)),
                None => self.hear(Audio::Music(self.music.clone())),
            },
            Phase::Transferring { .. } => self.hear(Audio::Music(self.music.clone())),
            // A prompt the API played into the call: back to the parties (or the music on hold).
            Phase::Connected { held } if self.hearing_prompt() => {
                let audio = if *held {
                    Audio::Music(self.music.clone())
                } else {
                    Audio::Agent
                };
                self.hear(audio);
            }
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
            if self.consult_cancelled(&agent) {
                continue;
            }
            if let Some(i) = self.ringing.iter().position(|a| a == &agent) {
                self.ringing.remove(i);
                self.out.push_back(CallOutput::Cancel { agent });
            } else if let Some(i) = self.joining.iter().position(|a| a == &agent) {
                self.joining.remove(i);
                self.out.push_back(CallOutput::Cancel { agent });
            }
        }
        if !self.dial_failed() {
            self.after_ring_change();
        }
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

    /// True while the customer is with an external IVR.
    pub fn in_external_ivr(&self) -> bool {
        matches!(self.phase, Phase::ExternalIvr { .. })
    }

    /// The next deadline: the IVR's input timeout or the next position announcement.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Ivr => self.ivr.poll_timeout(),
            Phase::Queued if self.ringing.is_empty() => self.next_announce,
            _ => None,
        };
        match (phase, self.link.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.link.expired(now) {
            tracing::info!("the customer's socket did not come back in time");
            return self.handle_customer_gone(true);
        }
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
                // A new menu: the widget shows its buttons.
                IvrOutput::Entered => self.out.push_back(CallOutput::State(CallState::Ivr)),
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

    pub(super) fn enter_queue_at(&mut self, now: Instant, queue: String, skill: Option<String>) {
        self.phase = Phase::Queued;
        self.queue = Some(queue.clone());
        self.skill = skill.clone();
        self.out.push_back(CallOutput::Enqueue { queue, skill });
        self.out.push_back(CallOutput::State(self.state()));
        self.hear(Audio::Prompt("queued".into()));
        self.next_announce = self.announce_every.map(|d| now + d);
    }

    pub(super) fn after_ring_change(&mut self) {
        if self.phase == Phase::Queued && self.ringing.is_empty() {
            self.out.push_back(CallOutput::State(self.state()));
        }
    }

    pub(super) fn cancel_ringing(&mut self) {
        for agent in std::mem::take(&mut self.ringing) {
            self.out.push_back(CallOutput::Cancel { agent });
        }
        self.cancel_joining();
    }

    /// Stops the agents ringing to join: CANCEL, and the ACD frees them at once (it holds them
    /// for this call otherwise until their ring timeout).
    pub(super) fn cancel_joining(&mut self) {
        for agent in std::mem::take(&mut self.joining) {
            self.out.push_back(CallOutput::Cancel {
                agent: agent.clone(),
            });
            self.out.push_back(CallOutput::OfferResult {
                agent,
                result: OfferResult::Rejected(487),
            });
        }
    }

    pub(super) fn close_with_prompt(&mut self, reason: EndReason, prompt: &str) {
        self.phase = Phase::Closing(reason);
        self.hear(Audio::Prompt(prompt.into()));
    }

    pub(super) fn finish(&mut self, reason: EndReason) {
        self.phase = Phase::Ended(reason);
        self.out
            .push_back(CallOutput::State(CallState::Ended(reason)));
        self.out.push_back(CallOutput::End(reason));
    }

    pub(super) fn hearing_prompt(&self) -> bool {
        matches!(self.hearing, Some(Audio::Prompt(_) | Audio::Position(_)))
    }

    pub(super) fn hear(&mut self, audio: Audio) {
        self.hearing = Some(audio.clone());
        self.out.push_back(CallOutput::Play(audio));
    }
}

mod attachment;
pub mod consult;
#[cfg(test)]
mod consult_tests;
pub mod dial;
mod outputs;
pub mod parties;
#[cfg(test)]
mod party_tests;
pub mod supervision;
#[cfg(test)]
mod supervision_tests;
#[cfg(test)]
mod tests;
