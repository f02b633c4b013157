//! The ACD's shell: one task owns the [`Acd`] core for this node and talks to call tasks by message.
//! Agent and queue state sit behind [`AcdHandle`], so a shared store (Redis) can later back it for a
//! cluster while each call's media stays on the node that holds it: only this module would change.

use super::{Acd, AcdOutput, AgentState, CallId, ClaimError, OfferResult, Overflow};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What the ACD tells one call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AcdEvent {
    /// Ring these agents.
    Offer(Vec<String>),
    /// Stop ringing these agents.
    Cancel(Vec<String>),
    /// The call left its queue by overflow.
    Overflowed {
        /// Hang up, or moved to another queue.
        action: Overflow,
        /// True after max wait, false when nobody was logged in.
        max_wait: bool,
    },
    /// The call's place in its queue changed.
    Position {
        /// 1 = next.
        position: usize,
        /// Estimated wait in seconds.
        estimated_wait_secs: u64,
    },
}

/// An agent as the REST API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// `offline`, `available`, `ringing`, `busy`, `wrap_up`, `away`.
    pub state: &'static str,
    /// Queues served.
    pub queues: Vec<String>,
}

/// A queue as the REST API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct QueueView {
    /// Queue name.
    pub name: String,
    /// Calls waiting (ringing included).
    pub waiting: usize,
    /// Longest current wait in seconds.
    pub longest_wait_secs: u64,
    /// Agents available now.
    pub agents_available: usize,
    /// Agents logged in (not offline).
    pub agents_logged_in: usize,
}

/// Why an agent state change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetStateError {
    /// No such agent.
    #[error("no agent {0:?}")]
    UnknownAgent(String),
    /// The agent is offline, ringing or on a call.
    #[error("agent {0:?} is {1} and cannot change to that state now")]
    NotNow(String, &'static str),
}

/// A message to the ACD task (the cluster's bus carries the same messages between nodes).
pub(crate) enum Command {
    Enqueue {
        call: CallId,
        queue: String,
        skill: Option<String>,
        events: mpsc::UnboundedSender<AcdEvent>,
    },
    Abandon(CallId),
    /// The call ended: drop its event channel (the ACD's state is already settled).
    Forget(CallId),
    Claim {
        call: CallId,
        agent: String,
        ring: Duration,
        events: mpsc::UnboundedSender<AcdEvent>,
        reply: oneshot::Sender<Result<(), ClaimError>>,
    },
    ClaimFrom {
        call: CallId,
        queue: String,
        ring: Duration,
        except: Vec<String>,
        events: mpsc::UnboundedSender<AcdEvent>,
        reply: oneshot::Sender<Result<String, ClaimError>>,
    },
    OfferResult(CallId, String, OfferResult),
    Released(String, Duration),
    Presence(String, bool),
    SetAway(String, bool, oneshot::Sender<Result<(), SetStateError>>),
    Agents(oneshot::Sender<Vec<AgentView>>),
    Queues(oneshot::Sender<Vec<QueueView>>),
}

/// Talks to the ACD task. Cheap to clone; every call holds one.
#[derive(Clone)]
pub struct AcdHandle {
    tx: mpsc::UnboundedSender<Command>,
}

/// The name of an agent state.
pub fn state_name(s: AgentState) -> &'static str {
    match s {
        AgentState::Offline => "offline",
        AgentState::Available(_) => "available",
        AgentState::Ringing(_) => "ringing",
        AgentState::Busy(_) => "busy",
        AgentState::WrapUp(_) => "wrap_up",
        AgentState::Away => "away",
    }
}

impl AcdHandle {
    /// A handle whose messages go to `tx` (the cluster's bus to the node running the ACD).
    pub(crate) fn from_sender(tx: mpsc::UnboundedSender<Command>) -> AcdHandle {
        AcdHandle { tx }
    }

    /// Starts the task owning `acd`; `average_handle` seeds each queue's estimated-wait figure.
    pub fn spawn(
        acd: Acd,
        average_handle: HashMap<String, Duration>,
        stop: CancellationToken,
    ) -> AcdHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(acd, average_handle, rx, stop));
        AcdHandle { tx }
    }

    /// Passes a message on as it is (the cluster's leader, for messages from other nodes).
    pub(crate) fn send(&self, cmd: Command) {
        let _ = self.tx.send(cmd);
    }

    /// The call enters `queue`; the ACD's events for it go to `events`.
    pub fn enqueue(
        &self,
        call: CallId,
        queue: &str,
        skill: Option<&str>,
        events: mpsc::UnboundedSender<AcdEvent>,
    ) {
        let _ = self.tx.send(Command::Enqueue {
            call,
            queue: queue.into(),
            skill: skill.map(str::to_string),
            events,
        });
    }

    /// The call left before an agent answered.
    pub fn abandon(&self, call: CallId) {
        let _ = self.tx.send(Command::Abandon(call));
    }

    /// The call ended, in whatever phase: its event channel is dropped (without this, every call
    /// that reached an agent left its channel here for the life of the process).
    pub fn forget(&self, call: CallId) {
        let _ = self.tx.send(Command::Forget(call));
    }

    /// Claims `agent` to join the live call `call` (it rings up to `ring`): never an agent who is
    /// offline, away, ringing or busy. Report the outcome with [`AcdHandle::offer_result`]; a ring
    /// timeout comes back on `events` as a `Cancel`.
    pub async fn claim(
        &self,
        call: CallId,
        agent: &str,
        ring: Duration,
        events: mpsc::UnboundedSender<AcdEvent>,
    ) -> Result<(), ClaimError> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Claim {
            call,
            agent: agent.into(),
            ring,
            events,
            reply,
        });
        rx.await
            .unwrap_or(Err(ClaimError::Unavailable(agent.into(), "stopping")))
    }

    /// Claims the longest-idle available agent of `queue` (none of `except`) for the live call
    /// `call` (a consult to a queue): which one.
    pub async fn claim_from(
        &self,
        call: CallId,
        queue: &str,
        ring: Duration,
        except: Vec<String>,
        events: mpsc::UnboundedSender<AcdEvent>,
    ) -> Result<String, ClaimError> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::ClaimFrom {
            call,
            queue: queue.into(),
            ring,
            except,
            events,
            reply,
        });
        rx.await
            .unwrap_or(Err(ClaimError::NoneAvailable(queue.into())))
    }

    /// How an offer ended.
    pub fn offer_result(&self, call: CallId, agent: &str, result: OfferResult) {
        let _ = self
            .tx
            .send(Command::OfferResult(call, agent.into(), result));
    }

    /// The agent's call ended after `talk` seconds of talk: wrap-up starts.
    pub fn released(&self, agent: &str, talk: Duration) {
        let _ = self.tx.send(Command::Released(agent.into(), talk));
    }

    /// The agent's phone registered (or went away).
    pub fn presence(&self, agent: &str, online: bool) {
        let _ = self.tx.send(Command::Presence(agent.into(), online));
    }

    /// The agent sets itself away (`true`) or available (`false`).
    pub async fn set_away(&self, agent: &str, away: bool) -> Result<(), SetStateError> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::SetAway(agent.into(), away, reply));
        rx.await
            .unwrap_or(Err(SetStateError::NotNow(agent.into(), "stopping")))
    }

    /// Every agent and its state.
    pub async fn agents(&self) -> Vec<AgentView> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Agents(reply));
        rx.await.unwrap_or_default()
    }

    /// Every queue and its figures.
    pub async fn queues(&self) -> Vec<QueueView> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Queues(reply));
        rx.await.unwrap_or_default()
    }
}

struct Service {
    acd: Acd,
    calls: HashMap<CallId, mpsc::UnboundedSender<AcdEvent>>,
    positions: HashMap<CallId, (usize, u64)>,
    average_handle: HashMap<String, Duration>,
}

async fn run(
    acd: Acd,
    average_handle: HashMap<String, Duration>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    stop: CancellationToken,
) {
    let mut s = Service {
        acd,
        calls: HashMap::new(),
        positions: HashMap::new(),
        average_handle,
    };
    loop {
        let sleep = crate::lifecycle::sleep_until(s.acd.poll_timeout());
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => s.handle(Instant::now(), cmd),
                None => break,
            },
            _ = sleep => s.acd.handle_timeout(Instant::now()),
            _ = stop.cancelled() => break,
        }
        s.drain();
    }
}

impl Service {
    fn handle(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Enqueue {
                call,
                queue,
                skill,
                events,
            } => {
                self.calls.insert(call, events);
                self.acd.handle_enqueue(now, call, &queue, skill.as_deref());
            }
            Command::Abandon(call) => {
                // The call cancels its own rings; it is gone, so nothing more is sent to it.
                self.calls.remove(&call);
                self.positions.remove(&call);
                self.acd.handle_abandon(now, call);
            }
            Command::Forget(call) => {
                self.calls.remove(&call);
                self.positions.remove(&call);
            }
            Command::Claim {
                call,
                agent,
                ring,
                events,
                reply,
            } => {
                self.calls.entry(call).or_insert(events);
                let _ = reply.send(self.acd.handle_claim(now, call, &agent, ring));
            }
            Command::ClaimFrom {
                call,
                queue,
                ring,
                except,
                events,
                reply,
            } => {
                self.calls.entry(call).or_insert(events);
                let r = self.acd.handle_claim_from(now, call, &queue, ring, &except);
                let _ = reply.send(r);
            }
            Command::OfferResult(call, agent, result) => {
                if result == OfferResult::Answered {
                    self.positions.remove(&call);
                }
                self.acd.handle_offer_result(now, call, &agent, result);
            }
            Command::Released(agent, talk) => {
                if let Some(q) = self
                    .acd
                    .agents()
                    .find(|(id, _, _)| *id == agent)
                    .and_then(|(_, _, qs)| qs.first().cloned())
                {
                    // A moving average, so the estimate follows the real handling time.
                    let avg = self
                        .average_handle
                        .entry(q)
                        .or_insert(Duration::from_secs(180));
                    *avg = (*avg * 4 + talk) / 5;
                }
                self.acd.handle_call_ended(now, &agent);
            }
            Command::Presence(agent, online) => self.acd.handle_presence(now, &agent, online),
            Command::SetAway(agent, away, reply) => {
                let _ = reply.send(self.set_away(now, &agent, away));
            }
            Command::Agents(reply) => {
                let _ = reply.send(
                    self.acd
                        .agents()
                        .map(|(id, st, qs)| AgentView {
                            id: id.into(),
                            state: state_name(st),
                            queues: qs.to_vec(),
                        })
                        .collect(),
                );
            }
            Command::Queues(reply) => {
                let _ = reply.send(self.queue_views(now));
            }
        }
    }

    fn set_away(&mut self, now: Instant, agent: &str, away: bool) -> Result<(), SetStateError> {
        let state = self
            .acd
            .agent_state(agent)
            .ok_or_else(|| SetStateError::UnknownAgent(agent.into()))?;
        let ok = matches!(
            (away, state),
            (
                true,
                AgentState::Available(_) | AgentState::WrapUp(_) | AgentState::Away
            ) | (false, AgentState::Away | AgentState::Available(_))
        );
        if !ok {
            return Err(SetStateError::NotNow(agent.into(), state_name(state)));
        }
        self.acd.handle_set_away(now, agent, away);
        Ok(())
    }

    fn queue_views(&self, now: Instant) -> Vec<QueueView> {
        let mut names: Vec<&str> = self.acd.queue_names().collect();
        names.sort_unstable();
        names
            .into_iter()
            .map(|name| {
                let waits: Vec<Instant> = self
                    .acd
                    .waiting()
                    .filter(|(_, q, _, _)| *q == name)
                    .map(|(_, _, since, _)| since)
                    .collect();
                let serving = || {
                    self.acd
                        .agents()
                        .filter(move |(_, _, qs)| qs.iter().any(|q| q == name))
                };
                QueueView {
                    name: name.into(),
                    waiting: waits.len(),
                    longest_wait_secs: waits
                        .iter()
                        .map(|s| now.saturating_duration_since(*s).as_secs())
                        .max()
                        .unwrap_or(0),
                    agents_available: serving()
                        .filter(|(_, s, _)| matches!(s, AgentState::Available(_)))
                        .count(),
                    agents_logged_in: serving()
                        .filter(|(_, s, _)| *s != AgentState::Offline)
                        .count(),
                }
            })
            .collect()
    }

    fn send(&mut self, call: CallId, ev: AcdEvent) {
        if let Some(tx) = self.calls.get(&call) {
            if tx.send(ev).is_err() {
                self.calls.remove(&call);
            }
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.acd.poll_output() {
            match out {
                AcdOutput::Offer { call, agents } => self.send(call, AcdEvent::Offer(agents)),
                AcdOutput::Cancel { call, agents } => self.send(call, AcdEvent::Cancel(agents)),
                // The call connected itself when the agent answered; the ACD only confirms it.
                AcdOutput::Connected { call, .. } => {
                    self.positions.remove(&call);
                }
                AcdOutput::Overflowed {
                    call,
                    action,
                    max_wait,
                } => {
                    if action == Overflow::HangUp {
                        self.positions.remove(&call);
                    }
                    self.send(call, AcdEvent::Overflowed { action, max_wait });
                }
            }
        }
        self.send_positions();
    }

    /// Tells every waiting call whose position (or estimate) changed.
    fn send_positions(&mut self) {
        // Per queue: callers counted so far, agents logged in, average handling time; the agents
        // are counted once per queue, not once per waiting call.
        let mut per_queue: HashMap<&str, (usize, u64, u64)> = HashMap::new();
        let mut updates = Vec::new();
        for (call, queue, _, _) in self.acd.waiting() {
            let (n, logged_in, avg) = per_queue.entry(queue).or_insert_with(|| {
                let logged_in = self.acd.logged_in(queue).max(1);
                let avg = self
                    .average_handle
                    .get(queue)
                    .copied()
                    .unwrap_or(Duration::from_secs(180));
                (0, logged_in as u64, avg.as_secs())
            });
            *n += 1;
            let estimate = (*avg * *n as u64).div_ceil(*logged_in);
            if self.positions.get(&call) != Some(&(*n, estimate)) {
                updates.push((call, *n, estimate));
            }
        }
        for (call, position, estimated_wait_secs) in updates {
            self.positions.insert(call, (position, estimated_wait_secs));
            self.send(
                call,
                AcdEvent::Position {
                    position,
                    estimated_wait_secs,
                },
            );
        }
    }
}
