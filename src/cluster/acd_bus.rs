//! The ACD across nodes: every node's [`AcdHandle`] sends its messages to the one node running the
//! ACD core (the leader, [`super::leader`]) through the list `c2c:acd:in`, and gets its calls'
//! events and its answers back on `c2c:acd:to:<node>`. The messages are the ACD task's own
//! ([`Command`]), with the channels inside them kept here: a call's event sender stays on the
//! node that holds the call, and an answer finds its waiting caller by request number.
//!
//! The call's node is in its id ([`CallIds::node_of`]), so the leader needs no table to route
//! events. Messages that cannot be sent while the store is down wait here, in order, and go
//! when it is back (a call's offer result is never lost to an outage).

use super::kv::Kv;
use super::{Cluster, PREFIX};
use crate::acd::service::{AcdEvent, AcdHandle, AgentView, Command, QueueView, SetStateError};
use crate::acd::{AgentState, CallId, ClaimError, OfferResult};
use crate::call::id::CallIds;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The leader's inbox.
pub fn inbox() -> String {
    format!("{PREFIX}acd:in")
}

/// Node `n`'s inbox.
pub fn to_node(n: u16) -> String {
    format!("{PREFIX}acd:to:{n}")
}

/// A node's message to the leader.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum ToLeader {
    /// [`AcdHandle::enqueue`].
    Enqueue(CallId, String, Option<String>),
    /// [`AcdHandle::abandon`].
    Abandon(CallId),
    /// [`AcdHandle::forget`].
    Forget(CallId),
    /// [`AcdHandle::claim`], answered by [`ToNode::Claimed`].
    Claim(u64, CallId, String, u64),
    /// [`AcdHandle::claim_from`], answered by [`ToNode::ClaimedFrom`].
    ClaimFrom(u64, CallId, String, u64, Vec<String>),
    /// [`AcdHandle::offer_result`] (0: answered, else the SIP status).
    OfferResult(CallId, String, u16),
    /// [`AcdHandle::released`] (talk time in ms).
    Released(String, u64),
    /// [`AcdHandle::presence`].
    Presence(String, bool),
    /// [`AcdHandle::set_away`], answered by [`ToNode::AwaySet`].
    SetAway(u64, String, bool),
    /// [`AcdHandle::agents`], answered by [`ToNode::Agents`].
    Agents(u64),
    /// [`AcdHandle::queues`], answered by [`ToNode::Queues`].
    Queues(u64),
}

/// A message from the leader to a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum ToNode {
    /// An event for one of the node's calls.
    Event(CallId, AcdEvent),
    /// Request `.0`'s claim.
    Claimed(u64, Result<(), WireError>),
    /// Request `.0`'s claim from a queue: the agent.
    ClaimedFrom(u64, Result<String, WireError>),
    /// Request `.0`'s state change.
    AwaySet(u64, Result<(), WireError>),
    /// Request `.0`'s agents: id, state, queues.
    Agents(u64, Vec<(String, String, Vec<String>)>),
    /// Request `.0`'s queues.
    Queues(u64, Vec<QueueView>),
}

/// A claim's or a state change's refusal, as it travels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum WireError {
    /// No such agent.
    Unknown(String),
    /// The agent is in that state.
    NotNow(String, String),
    /// Nobody of the queue is available.
    NoneAvailable(String),
}

/// The `&'static` name of a state that travelled as text.
fn state(s: &str) -> &'static str {
    [
        AgentState::Offline,
        AgentState::Away,
        AgentState::Available(std::time::Instant::now()),
        AgentState::Ringing(0),
        AgentState::Busy(0),
        AgentState::WrapUp(std::time::Instant::now()),
    ]
    .into_iter()
    .map(crate::acd::service::state_name)
    .find(|n| *n == s)
    .unwrap_or("unknown")
}

impl From<ClaimError> for WireError {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::UnknownAgent(a) => WireError::Unknown(a),
            ClaimError::Unavailable(a, s) => WireError::NotNow(a, s.into()),
            ClaimError::NoneAvailable(q) => WireError::NoneAvailable(q),
        }
    }
}

impl From<SetStateError> for WireError {
    fn from(e: SetStateError) -> Self {
        match e {
            SetStateError::UnknownAgent(a) => WireError::Unknown(a),
            SetStateError::NotNow(a, s) => WireError::NotNow(a, s.into()),
        }
    }
}

impl WireError {
    fn claim(self) -> ClaimError {
        match self {
            WireError::Unknown(a) => ClaimError::UnknownAgent(a),
            WireError::NotNow(a, s) => ClaimError::Unavailable(a, state(&s)),
            WireError::NoneAvailable(q) => ClaimError::NoneAvailable(q),
        }
    }

    fn set_state(self) -> SetStateError {
        match self {
            WireError::Unknown(a) => SetStateError::UnknownAgent(a),
            WireError::NotNow(a, s) => SetStateError::NotNow(a, state(&s)),
            WireError::NoneAvailable(a) => SetStateError::UnknownAgent(a),
        }
    }
}

/// The agents as they travel.
pub fn agents_to_wire(v: Vec<AgentView>) -> Vec<(String, String, Vec<String>)> {
    v.into_iter()
        .map(|a| (a.id, a.state.to_string(), a.queues))
        .collect()
}

enum Waiting {
    Claim(oneshot::Sender<Result<(), ClaimError>>),
    ClaimFrom(oneshot::Sender<Result<String, ClaimError>>),
    SetAway(oneshot::Sender<Result<(), SetStateError>>),
    Agents(oneshot::Sender<Vec<AgentView>>),
    Queues(oneshot::Sender<Vec<QueueView>>),
}

struct Local {
    calls: HashMap<CallId, mpsc::UnboundedSender<AcdEvent>>,
    waiting: HashMap<u64, Waiting>,
    /// This node's number in the top 16 bits, then a counter: the leader answers by it.
    next: u64,
}

impl Local {
    fn new(node: u16) -> Local {
        Local {
            calls: HashMap::new(),
            waiting: HashMap::new(),
            next: u64::from(node) << 48,
        }
    }

    fn wait(&mut self, w: Waiting) -> u64 {
        self.next += 1;
        self.waiting.insert(self.next, w);
        self.next
    }

    /// The wire form of `cmd`, keeping its channels here.
    fn outgoing(&mut self, cmd: Command) -> ToLeader {
        let ms = |d: Duration| d.as_millis() as u64;
        match cmd {
            Command::Enqueue {
                call,
                queue,
                skill,
                events,
            } => {
                self.calls.insert(call, events);
                ToLeader::Enqueue(call, queue, skill)
            }
            Command::Abandon(call) => {
                self.calls.remove(&call);
                ToLeader::Abandon(call)
            }
            Command::Forget(call) => {
                self.calls.remove(&call);
                ToLeader::Forget(call)
            }
            Command::Claim {
                call,
                agent,
                ring,
                events,
                reply,
            } => {
                self.calls.entry(call).or_insert(events);
                ToLeader::Claim(self.wait(Waiting::Claim(reply)), call, agent, ms(ring))
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
                let req = self.wait(Waiting::ClaimFrom(reply));
                ToLeader::ClaimFrom(req, call, queue, ms(ring), except)
            }
            Command::OfferResult(call, agent, r) => {
                let code = match r {
                    OfferResult::Answered => 0,
                    OfferResult::Rejected(c) => c.max(1),
                };
                ToLeader::OfferResult(call, agent, code)
            }
            Command::Released(agent, talk) => ToLeader::Released(agent, ms(talk)),
            Command::Presence(agent, on) => ToLeader::Presence(agent, on),
            Command::SetAway(agent, away, reply) => {
                ToLeader::SetAway(self.wait(Waiting::SetAway(reply)), agent, away)
            }
            Command::Agents(reply) => ToLeader::Agents(self.wait(Waiting::Agents(reply))),
            Command::Queues(reply) => ToLeader::Queues(self.wait(Waiting::Queues(reply))),
        }
    }

    fn incoming(&mut self, msg: ToNode) {
        match msg {
            ToNode::Event(call, ev) => {
                if let Some(tx) = self.calls.get(&call) {
                    if tx.send(ev).is_err() {
                        self.calls.remove(&call);
                    }
                }
            }
            ToNode::Claimed(req, r) => {
                if let Some(Waiting::Claim(tx)) = self.waiting.remove(&req) {
                    let _ = tx.send(r.map_err(WireError::claim));
                }
            }
            ToNode::ClaimedFrom(req, r) => {
                if let Some(Waiting::ClaimFrom(tx)) = self.waiting.remove(&req) {
                    let _ = tx.send(r.map_err(WireError::claim));
                }
            }
            ToNode::AwaySet(req, r) => {
                if let Some(Waiting::SetAway(tx)) = self.waiting.remove(&req) {
                    let _ = tx.send(r.map_err(WireError::set_state));
                }
            }
            ToNode::Agents(req, v) => {
                if let Some(Waiting::Agents(tx)) = self.waiting.remove(&req) {
                    let views = v.into_iter().map(|(id, s, queues)| AgentView {
                        id,
                        state: state(&s),
                        queues,
                    });
                    let _ = tx.send(views.collect());
                }
            }
            ToNode::Queues(req, v) => {
                if let Some(Waiting::Queues(tx)) = self.waiting.remove(&req) {
                    let _ = tx.send(v);
                }
            }
        }
    }
}

/// This node's handle on the cluster's ACD.
pub fn client(cluster: &Arc<Cluster>, stop: CancellationToken) -> AcdHandle {
    let (tx, mut rx) = mpsc::unbounded_channel::<Command>();
    let local = Arc::new(Mutex::new(Local::new(cluster.node)));
    let (kv, l) = (cluster.kv.clone(), local.clone());
    let s = stop.clone();
    tokio::spawn(async move {
        let mut outbox: VecDeque<String> = VecDeque::new();
        loop {
            let cmd = tokio::select! {
                c = rx.recv() => c,
                _ = s.cancelled() => None,
            };
            let Some(cmd) = cmd else { break };
            let msg = l.lock().unwrap_or_else(|e| e.into_inner()).outgoing(cmd);
            match serde_json::to_string(&msg) {
                Ok(text) => outbox.push_back(text),
                Err(e) => warn!(error = %e, "ACD message not encoded"),
            }
            send_all(kv.as_ref(), &inbox(), &mut outbox, &s).await;
        }
    });
    let (kv, me) = (cluster.kv.clone(), to_node(cluster.node));
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            match kv.pop(&me, Duration::from_secs(1)).await {
                Ok(Some(text)) => match serde_json::from_str::<ToNode>(&text) {
                    Ok(msg) => local
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .incoming(msg),
                    Err(e) => warn!(error = %e, "ACD message from the leader not understood"),
                },
                Ok(None) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    });
    AcdHandle::from_sender(tx)
}

/// Sends `outbox` to `list` in order; while the store is down it retries every half second
/// (until `stop`), so nothing is lost or reordered.
pub async fn send_all(
    kv: &dyn Kv,
    list: &str,
    outbox: &mut VecDeque<String>,
    stop: &CancellationToken,
) {
    let mut warned = false;
    while let Some(text) = outbox.front() {
        match kv.push(list, text).await {
            Ok(()) => {
                outbox.pop_front();
            }
            Err(e) => {
                if !warned {
                    warn!(error = %e, waiting = outbox.len(), "ACD messages wait for the shared state");
                    warned = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

/// The node a call's events go to.
pub fn node_of(call: CallId) -> u16 {
    CallIds::node_of(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_travels_as_text_and_its_answer_finds_the_waiting_caller() {
        let mut local = Local::new(7);
        let (events, mut ev_rx) = mpsc::unbounded_channel();
        let (reply, mut reply_rx) = oneshot::channel();
        let msg = local.outgoing(Command::Claim {
            call: 42,
            agent: "1001".into(),
            ring: Duration::from_secs(15),
            events,
            reply,
        });
        let text = serde_json::to_string(&msg).unwrap();
        let ToLeader::Claim(req, 42, agent, 15_000) = serde_json::from_str(&text).unwrap() else {
            panic!("not the claim: {text}");
        };
        assert_eq!(agent, "1001");
        assert_eq!(
            super::super::leader::request_node(req),
            7,
            "the asking node is in it"
        );
        // The leader's answer, as text: the agent is ringing elsewhere.
        let refusal = ToNode::Claimed(req, Err(WireError::NotNow("1001".into(), "ringing".into())));
        let back = serde_json::to_string(&refusal).unwrap();
        local.incoming(serde_json::from_str(&back).unwrap());
        assert_eq!(
            reply_rx.try_recv().unwrap(),
            Err(ClaimError::Unavailable("1001".into(), "ringing"))
        );
        // Events for the call reach its sender; a stranger's are dropped.
        local.incoming(ToNode::Event(42, AcdEvent::Cancel(vec!["1001".into()])));
        local.incoming(ToNode::Event(43, AcdEvent::Offer(vec!["1002".into()])));
        assert_eq!(
            ev_rx.try_recv().unwrap(),
            AcdEvent::Cancel(vec!["1001".into()])
        );
        assert!(ev_rx.try_recv().is_err());
    }

    #[test]
    fn an_offer_result_and_an_unknown_state_name_travel_safely() {
        let mut local = Local::new(1);
        let msg = local.outgoing(Command::OfferResult(
            9,
            "1002".into(),
            OfferResult::Answered,
        ));
        assert_eq!(msg, ToLeader::OfferResult(9, "1002".into(), 0));
        let msg = local.outgoing(Command::OfferResult(
            9,
            "1002".into(),
            OfferResult::Rejected(486),
        ));
        assert_eq!(msg, ToLeader::OfferResult(9, "1002".into(), 486));
        assert_eq!(state("wrap_up"), "wrap_up");
        assert_eq!(state("nonsense"), "unknown");
        assert!(serde_json::from_str::<ToLeader>("{\"Claim\": 1}").is_err());
    }
}
