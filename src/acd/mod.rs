//! Queues and agents (automatic call distribution), sans-IO: which waiting customer is offered to which
//! agent, when a ring times out, when wrap-up ends, when a wait is too long. Time is an argument.
//!
//! Drive it with `handle_*`, drain [`Acd::poll_output`] until `None` after each call, and call
//! [`Acd::handle_timeout`] when [`Acd::poll_timeout`] passes. The call controller turns outputs into
//! SIP (INVITE the agents of an `Offer`, CANCEL those of a `Cancel`) and reports back with
//! [`Acd::handle_offer_result`].

mod joining;
mod pick;
pub mod service;
mod setup;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use crate::call::CallId;
pub use setup::from_config;

/// How a queue picks among available agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The agent idle the longest (the default).
    LongestIdle,
    /// The next agent after the last one offered, in configuration order.
    RoundRobin,
    /// Every available agent at once; the first to answer wins, the others are cancelled.
    RingAll,
    /// The agent with the highest level in the call's skill, longest idle among equals.
    SkillsBased,
}

/// What happens to a call that waited `max_wait`, or arrives when no agent is logged in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Overflow {
    /// Keep waiting.
    Wait,
    /// Tell the customer and hang up.
    HangUp,
    /// Move the call to another queue.
    Queue(String),
}

/// A queue's rules.
#[derive(Debug, Clone)]
pub struct QueueRules {
    /// How agents are picked.
    pub strategy: Strategy,
    /// How long an agent rings before the next is tried.
    pub ring_timeout: Duration,
    /// After-call work time before an agent is offered again.
    pub wrap_up: Duration,
    /// Longest wait before `on_max_wait`.
    pub max_wait: Option<Duration>,
    /// What happens after `max_wait`.
    pub on_max_wait: Overflow,
    /// What happens when no agent of this queue is logged in.
    pub on_no_agents: Overflow,
    /// Agents per call: 1 for a normal queue; more for a conference queue, which rings this many
    /// at once (ring-all: everyone available) and connects each that answers into the call.
    pub conference: usize,
}

impl Default for QueueRules {
    fn default() -> Self {
        QueueRules {
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(15),
            wrap_up: Duration::from_secs(10),
            max_wait: None,
            on_max_wait: Overflow::Wait,
            on_no_agents: Overflow::Wait,
            conference: 1,
        }
    }
}

/// An agent's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// Not registered (or its phone stopped answering).
    Offline,
    /// Free since the instant.
    Available(Instant),
    /// Being offered a call.
    Ringing(CallId),
    /// On a call.
    Busy(CallId),
    /// After-call work until the instant.
    WrapUp(Instant),
    /// Logged in but not taking calls.
    Away,
}

/// How an offer to an agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferResult {
    /// The agent answered.
    Answered,
    /// The agent's phone refused (486, 603, other 4xx/5xx) or failed.
    Rejected(u16),
}

/// What the call controller should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdOutput {
    /// Offer the call to these agents (ring them).
    Offer {
        /// The call.
        call: CallId,
        /// The agents to ring (several for ring-all).
        agents: Vec<String>,
    },
    /// Stop ringing these agents for the call (CANCEL).
    Cancel {
        /// The call.
        call: CallId,
        /// The agents to stop ringing.
        agents: Vec<String>,
    },
    /// The call is connected to this agent: bridge it.
    Connected {
        /// The call.
        call: CallId,
        /// The agent who answered.
        agent: String,
    },
    /// The call left the queue by overflow: hang up, or it was moved to another queue.
    Overflowed {
        /// The call.
        call: CallId,
        /// What happened.
        action: Overflow,
        /// True after `max_wait`, false when no agent was logged in.
        max_wait: bool,
    },
}

#[derive(Debug)]
struct Agent {
    /// Its place in the configuration order (`Acd::agent_order`).
    order: usize,
    queues: Vec<String>,
    skills: HashMap<String, u8>,
    state: AgentState,
}

#[derive(Debug)]
struct Waiting {
    call: CallId,
    queue: String,
    skill: Option<String>,
    since: Instant,
    ringing: Vec<(String, Instant)>,
    offered: Vec<String>,
}

/// The queues and agents of one gateway. See the module docs for the drive contract.
/// An agent ringing to join a call that is already connected (a conference queue's further agents,
/// or an agent added to a live call).
#[derive(Debug)]
struct Joining {
    call: CallId,
    agent: String,
    until: Instant,
}

/// Why an agent cannot be claimed for a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// No such agent in the configuration.
    #[error("no agent {0:?}")]
    UnknownAgent(String),
    /// The agent cannot take it now (offline, busy, ringing, away).
    #[error("agent {0:?} is {1}")]
    Unavailable(String, &'static str),
    /// Nobody of the queue can take it now.
    #[error("no agent of queue {0:?} is available")]
    NoneAvailable(String),
}

/// The queues and agents of one node. See the module docs for the drive contract.
#[derive(Debug, Default)]
pub struct Acd {
    rules: HashMap<String, QueueRules>,
    agents: BTreeMap<String, Agent>,
    /// Configuration order, for round-robin.
    agent_order: Vec<String>,
    last_offered: HashMap<String, String>,
    waiting: VecDeque<Waiting>,
    joining: Vec<Joining>,
    /// Per queue, its agents that are not offline: kept as presence changes, so that asking
    /// (every time the waiting line moves) costs nothing however many agents there are.
    logged_in: HashMap<String, usize>,
    out: VecDeque<AcdOutput>,
}

impl Acd {
    /// An empty ACD.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a queue.
    pub fn add_queue(&mut self, name: &str, rules: QueueRules) {
        self.rules.insert(name.to_string(), rules);
    }

    /// Adds an agent (offline until [`Acd::handle_presence`] says otherwise).
    pub fn add_agent(&mut self, id: &str, queues: &[&str], skills: &[(&str, u8)]) {
        self.agent_order.push(id.to_string());
        let old = self.agents.insert(
            id.to_string(),
            Agent {
                order: self.agent_order.len() - 1,
                queues: queues.iter().map(|q| q.to_string()).collect(),
                skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
                state: AgentState::Offline,
            },
        );
        if let Some(old) = old.filter(|a| a.state != AgentState::Offline) {
            for q in &old.queues {
                self.count_logged_in(q, false);
            }
        }
    }

    /// How many agents of `queue` are logged in (not offline), whatever they are doing.
    pub fn logged_in(&self, queue: &str) -> usize {
        self.logged_in.get(queue).copied().unwrap_or(0)
    }

    fn count_logged_in(&mut self, queue: &str, online: bool) {
        let n = self.logged_in.entry(queue.to_string()).or_default();
        *n = if online { *n + 1 } else { n.saturating_sub(1) };
    }

    /// An agent's state.
    pub fn agent_state(&self, id: &str) -> Option<AgentState> {
        self.agents.get(id).map(|a| a.state)
    }

    /// A call's position in its queue (1 = next), if it waits.
    pub fn position(&self, call: CallId) -> Option<usize> {
        let w = self.waiting.iter().find(|w| w.call == call)?;
        Some(
            self.waiting
                .iter()
                .filter(|o| o.queue == w.queue && o.since <= w.since)
                .count(),
        )
    }

    /// Waiting calls, oldest first: (call, queue, since, ringing an agent now).
    pub fn waiting(&self) -> impl Iterator<Item = (CallId, &str, Instant, bool)> {
        self.waiting
            .iter()
            .map(|w| (w.call, w.queue.as_str(), w.since, !w.ringing.is_empty()))
    }

    /// Every agent with its state and queues, in configuration order.
    pub fn agents(&self) -> impl Iterator<Item = (&str, AgentState, &[String])> {
        self.agent_order.iter().filter_map(|id| {
            let a = self.agents.get(id)?;
            Some((id.as_str(), a.state, a.queues.as_slice()))
        })
    }

    /// The queues' names.
    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// The agent registered (or its static URI is reachable) / went away.
    pub fn handle_presence(&mut self, now: Instant, agent: &str, online: bool) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let was_online = a.state != AgentState::Offline;
        match (online, a.state) {
            (true, AgentState::Offline) => a.state = AgentState::Available(now),
            (false, AgentState::Ringing(call)) => {
                a.state = AgentState::Offline;
                self.drop_offer(call, agent);
            }
            (false, _) => a.state = AgentState::Offline,
            _ => {}
        }
        if was_online != online {
            let queues = self.agents.get(agent).map(|a| a.queues.clone());
            for q in queues.iter().flatten() {
                self.count_logged_in(q, online);
            }
        }
        self.dispatch(now);
    }

    /// An agent sets itself away or available (REST `PUT /api/agents/{id}/state`).
    pub fn handle_set_away(&mut self, now: Instant, agent: &str, away: bool) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        match (away, a.state) {
            (true, AgentState::Available(_) | AgentState::WrapUp(_)) => a.state = AgentState::Away,
            (false, AgentState::Away) => a.state = AgentState::Available(now),
            _ => {}
        }
        self.dispatch(now);
    }

    /// A customer enters `queue` (with an optional skill for skills-based routing).
    pub fn handle_enqueue(&mut self, now: Instant, call: CallId, queue: &str, skill: Option<&str>) {
        self.waiting.push_back(Waiting {
            call,
            queue: queue.to_string(),
            skill: skill.map(str::to_string),
            since: now,
            ringing: Vec::new(),
            offered: Vec::new(),
        });
        if self.logged_in(queue) == 0 {
            let action = self
                .rules
                .get(queue)
                .map(|r| r.on_no_agents.clone())
                .unwrap_or(Overflow::Wait);
            if action != Overflow::Wait {
                self.overflow(now, call, action, false);
                return;
            }
        }
        self.dispatch(now);
    }

    /// The customer hung up (or the call ended before an agent answered): leave the queue, cancel rings.
    pub fn handle_abandon(&mut self, now: Instant, call: CallId) {
        if let Some(i) = self.waiting.iter().position(|w| w.call == call) {
            let w = self.waiting.remove(i).expect("index from position");
            let agents: Vec<String> = w.ringing.into_iter().map(|(a, _)| a).collect();
            for a in &agents {
                self.set_available(now, a);
            }
            if !agents.is_empty() {
                self.out.push_back(AcdOutput::Cancel { call, agents });
            }
        }
        self.dispatch(now);
    }

    /// A connected call ended: the agent goes to wrap-up.
    pub fn handle_call_ended(&mut self, now: Instant, agent: &str) {
        let wrap = self
            .agents
            .get(agent)
            .and_then(|a| a.queues.first())
            .and_then(|q| self.rules.get(q))
            .map_or(Duration::ZERO, |r| r.wrap_up);
        if let Some(a) = self.agents.get_mut(agent) {
            if matches!(a.state, AgentState::Busy(_)) {
                a.state = if wrap.is_zero() {
                    AgentState::Available(now)
                } else {
                    AgentState::WrapUp(now + wrap)
                };
            }
        }
        self.dispatch(now);
    }

    /// How an offer ended.
    pub fn handle_offer_result(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &str,
        result: OfferResult,
    ) {
        if let Some(j) = self
            .joining
            .iter()
            .position(|j| j.call == call && j.agent == agent)
        {
            self.joining.remove(j);
            self.join_result(now, call, agent, result);
            return;
        }
        let Some(i) = self.waiting.iter().position(|w| w.call == call) else {
            return;
        };
        if !self.waiting[i].ringing.iter().any(|(a, _)| a == agent) {
            return;
        }
        match result {
            OfferResult::Answered => {
                let w = self.waiting.remove(i).expect("index from position");
                let conference = self.rules.get(&w.queue).map_or(1, |r| r.conference);
                let (others, losers): (Vec<_>, Vec<_>) = w
                    .ringing
                    .into_iter()
                    .filter(|(a, _)| a != agent)
                    .partition(|_| conference > 1);
                // A conference queue's other agents go on ringing, to join the call.
                for (a, until) in others {
                    self.joining.push(Joining {
                        call,
                        agent: a,
                        until,
                    });
                }
                let losers: Vec<String> = losers.into_iter().map(|(a, _)| a).collect();
                for a in &losers {
                    self.set_available(now, a);
                }
                if let Some(a) = self.agents.get_mut(agent) {
                    a.state = AgentState::Busy(call);
                }
                if !losers.is_empty() {
                    self.out.push_back(AcdOutput::Cancel {
                        call,
                        agents: losers,
                    });
                }
                self.out.push_back(AcdOutput::Connected {
                    call,
                    agent: agent.to_string(),
                });
            }
            OfferResult::Rejected(_) => {
                self.waiting[i].ringing.retain(|(a, _)| a != agent);
                self.set_available(now, agent);
            }
        }
        self.dispatch(now);
    }

    /// The earliest instant something is due: a ring timeout, the end of a wrap-up, a max wait.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rings = self
            .waiting
            .iter()
            .flat_map(|w| w.ringing.iter().map(|(_, until)| *until))
            .chain(self.joining.iter().map(|j| j.until));
        let waits = self.waiting.iter().filter_map(|w| {
            let r = self.rules.get(&w.queue)?;
            (r.on_max_wait != Overflow::Wait).then_some(w.since + r.max_wait?)
        });
        let wraps = self.agents.values().filter_map(|a| match a.state {
            AgentState::WrapUp(until) => Some(until),
            _ => None,
        });
        rings.chain(waits).chain(wraps).min()
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for a in self.agents.values_mut() {
            if let AgentState::WrapUp(until) = a.state {
                if until <= now {
                    a.state = AgentState::Available(now);
                }
            }
        }
        // Ring timeouts: the agent did not answer; cancel and move on.
        let mut cancels = Vec::new();
        for w in self.waiting.iter_mut() {
            let (expired, still): (Vec<_>, Vec<_>) =
                w.ringing.drain(..).partition(|(_, until)| *until <= now);
            w.ringing = still;
            if !expired.is_empty() {
                cancels.push((
                    w.call,
                    expired.into_iter().map(|(a, _)| a).collect::<Vec<_>>(),
                ));
            }
        }
        let (expired, still): (Vec<_>, Vec<_>) =
            self.joining.drain(..).partition(|j| j.until <= now);
        self.joining = still;
        for j in expired {
            cancels.push((j.call, vec![j.agent]));
        }
        for (call, agents) in cancels {
            for a in &agents {
                self.set_available(now, a);
            }
            self.out.push_back(AcdOutput::Cancel { call, agents });
        }
        // Max waits.
        let overdue: Vec<(CallId, Overflow)> = self
            .waiting
            .iter()
            .filter_map(|w| {
                let r = self.rules.get(&w.queue)?;
                let max = r.max_wait?;
                (r.on_max_wait != Overflow::Wait && w.ringing.is_empty() && now >= w.since + max)
                    .then(|| (w.call, r.on_max_wait.clone()))
            })
            .collect();
        for (call, action) in overdue {
            self.overflow(now, call, action, true);
        }
        self.dispatch(now);
    }

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<AcdOutput> {
        self.out.pop_front()
    }

    fn overflow(&mut self, now: Instant, call: CallId, action: Overflow, max_wait: bool) {
        let Some(i) = self.waiting.iter().position(|w| w.call == call) else {
            return;
        };
        let mut w = self.waiting.remove(i).expect("index from position");
        if let Overflow::Queue(q) = &action {
            w.queue = q.clone();
            w.offered.clear();
            w.since = now;
            self.waiting.push_back(w);
        }
        self.out.push_back(AcdOutput::Overflowed {
            call,
            action,
            max_wait,
        });
    }

    fn set_available(&mut self, now: Instant, agent: &str) {
        if let Some(a) = self.agents.get_mut(agent) {
            if matches!(a.state, AgentState::Ringing(_)) {
                a.state = AgentState::Available(now);
            }
        }
    }

    fn drop_offer(&mut self, call: CallId, agent: &str) {
        if let Some(w) = self.waiting.iter_mut().find(|w| w.call == call) {
            w.ringing.retain(|(a, _)| a != agent);
        }
        self.joining
            .retain(|j| !(j.call == call && j.agent == agent));
    }

    /// Offers waiting calls, oldest first, to available agents of their queue.
    fn dispatch(&mut self, now: Instant) {
        for i in 0..self.waiting.len() {
            if !self.waiting[i].ringing.is_empty() {
                continue; // already ringing someone
            }
            let Some(rules) = self.rules.get(&self.waiting[i].queue).cloned() else {
                continue;
            };
            let mut picked = self.pick(i, rules.strategy);
            if picked.is_empty() && !self.waiting[i].offered.is_empty() {
                // Everyone was tried once: a new round among whoever is available now.
                let offered = std::mem::take(&mut self.waiting[i].offered);
                picked = self.pick(i, rules.strategy);
                if picked.is_empty() {
                    self.waiting[i].offered = offered;
                }
            }
            if picked.is_empty() {
                continue;
            }
            let call = self.waiting[i].call;
            for a in &picked {
                if let Some(agent) = self.agents.get_mut(a) {
                    agent.state = AgentState::Ringing(call);
                }
                self.waiting[i]
                    .ringing
                    .push((a.clone(), now + rules.ring_timeout));
                self.waiting[i].offered.push(a.clone());
            }
            if let Some(last) = picked.last() {
                self.last_offered
                    .insert(self.waiting[i].queue.clone(), last.clone());
            }
            self.out.push_back(AcdOutput::Offer {
                call,
                agents: picked,
            });
        }
    }
}
