//! Which node runs the ACD core, and how it serves the others. Every node competes for the lease
//! `c2c:acd:leader` (`SET NX PX`, renewed twice a second); its holder builds the core from the
//! configuration, rebuilds its state from the shared store (agents' registrations, who is away,
//! who is ringing or busy for which call, the waiting calls in arrival order), then serves the
//! inbox ([`super::acd_bus`]) with the same ACD task a single node runs. One core for all nodes
//! keeps every decision of the sans-IO ACD as it is: the global order of a queue is the order
//! its calls reach the inbox, and no agent is offered two calls because one core offers them.
//!
//! Every second the leader also sweeps: agents come online or go offline as their shared
//! registrations do, and a dead node's waiting calls leave the queues while its agents' claims
//! are released (a ringing one as unanswered, a busy one into wrap-up).
//!
//! When the store was down and comes back empty (a restarted Redis), the leader takes the lease
//! again and writes its mirror back; the other nodes wait a few seconds before competing.

use super::acd_bus::{self, agents_to_wire, node_of, ToLeader, ToNode, WireError};
use super::mirror::Mirror;
use super::{Cluster, PREFIX};
use crate::acd::service::{AcdEvent, AcdHandle, Command};
use crate::acd::{CallId, OfferResult};
use crate::config::Config;
use crate::registrar::LocationStore;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The lease's key.
pub fn lease() -> String {
    format!("{PREFIX}acd:leader")
}

/// The lease's time to live: a dead leader is replaced within this and a renewal period.
const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_millis(500);
/// After an outage, other nodes let the leader take its lease back first.
const QUIET: Duration = Duration::from_secs(3);
/// Sweeps (seconds) an online agent may be missing from the shared registrations before it is
/// taken offline.
const MISSING_SWEEPS: u32 = 3;

/// Competes for the lease until `stop`; serves while holding it.
pub fn spawn(
    cluster: Arc<Cluster>,
    cfg: Arc<Config>,
    locations: Arc<dyn LocationStore>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let me = cluster.node.to_string();
        let mut term: Option<(CancellationToken, Arc<Mirror>)> = None;
        let mut quiet_until = Instant::now();
        let mut tick = tokio::time::interval(RENEW);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let kv = &cluster.kv;
            match &term {
                Some((t, mirror)) => match kv.renew(&lease(), &me, LEASE).await {
                    Ok(true) | Err(_) => {}
                    Ok(false) => match kv.set_nx(&lease(), &me, LEASE).await {
                        Ok(true) => {
                            info!("ACD lease taken back after an outage");
                            mirror.republish().await;
                        }
                        _ => {
                            warn!("ACD lease lost to another node: no longer running the ACD");
                            t.cancel();
                            term = None;
                        }
                    },
                },
                None if Instant::now() < quiet_until => {}
                None => match kv.set_nx(&lease(), &me, LEASE).await {
                    Ok(true) => {
                        info!(node = cluster.node, "running the ACD for the cluster");
                        let t = stop.child_token();
                        let mirror = Arc::new(Mirror::new(cluster.kv.clone()));
                        let serving =
                            Serving::start(&cluster, &cfg, locations.clone(), &t, mirror.clone());
                        tokio::spawn(serving.run(t.clone()));
                        term = Some((t, mirror));
                    }
                    Ok(false) => {}
                    Err(_) => quiet_until = Instant::now() + QUIET,
                },
            }
        }
        if let Some((t, _)) = term {
            t.cancel();
            let _ = cluster.kv.del_if(&lease(), &me).await;
        }
    });
}

/// One term of running the ACD.
struct Serving {
    cluster: Arc<Cluster>,
    acd: AcdHandle,
    mirror: Arc<Mirror>,
    locations: Arc<dyn LocationStore>,
    out: mpsc::UnboundedSender<(u16, ToNode)>,
    /// Agents the core was told are online.
    online: BTreeSet<String>,
    /// Sweeps in a row each agent the core has online was missing from the registrations.
    missing: HashMap<String, u32>,
    /// Agents with a static URI: always online.
    fixed: BTreeSet<String>,
}

impl Serving {
    fn start(
        cluster: &Arc<Cluster>,
        cfg: &Config,
        locations: Arc<dyn LocationStore>,
        stop: &CancellationToken,
        mirror: Arc<Mirror>,
    ) -> Serving {
        let (acd, average) = crate::acd::from_config(cfg);
        let (out, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_out(cluster.clone(), rx, stop.clone()));
        Serving {
            cluster: cluster.clone(),
            acd: AcdHandle::spawn(acd, average, stop.clone()),
            mirror,
            locations,
            out,
            online: BTreeSet::new(),
            missing: HashMap::new(),
            fixed: cfg
                .agents
                .iter()
                .filter(|a| a.uri.is_some())
                .map(|a| a.id.clone())
                .collect(),
        }
    }

    async fn run(mut self, stop: CancellationToken) {
        self.rebuild().await;
        let inbox = acd_bus::inbox();
        let mut next_sweep = Instant::now() + Duration::from_secs(1);
        while !stop.is_cancelled() {
            match self
                .cluster
                .kv
                .pop(&inbox, Duration::from_millis(500))
                .await
            {
                Ok(Some(text)) => match serde_json::from_str::<ToLeader>(&text) {
                    Ok(msg) => self.handle(msg).await,
                    Err(e) => warn!(error = %e, "ACD message not understood; dropped"),
                },
                Ok(None) => {}
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            if Instant::now() >= next_sweep {
                self.sweep().await;
                next_sweep = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    /// The sender of one call's events: its own small task tells its node (and the mirror).
    fn events_of(&self, call: CallId) -> mpsc::UnboundedSender<AcdEvent> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (out, mirror) = (self.out.clone(), self.mirror.clone());
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                mirror.event(call, &ev).await;
                let _ = out.send((node_of(call), ToNode::Event(call, ev)));
            }
        });
        tx
    }

    /// Sends the answer to a request of `node` when `rx` has it.
    fn answer<T: Send + 'static>(
        &self,
        node: u16,
        rx: oneshot::Receiver<T>,
        wire: impl FnOnce(T) -> ToNode + Send + 'static,
    ) {
        let out = self.out.clone();
        tokio::spawn(async move {
            if let Ok(v) = rx.await {
                let _ = out.send((node, wire(v)));
            }
        });
    }

    async fn handle(&mut self, msg: ToLeader) {
        let ring = Duration::from_millis;
        match msg {
            ToLeader::Enqueue(call, queue, skill) => {
                self.mirror.waiting(call, &queue, skill.as_deref()).await;
                let events = self.events_of(call);
                self.acd.enqueue(call, &queue, skill.as_deref(), events);
            }
            ToLeader::Abandon(call) => {
                self.mirror.left(call).await;
                self.acd.abandon(call);
            }
            ToLeader::Forget(call) => {
                self.mirror.left(call).await;
                self.acd.forget(call);
            }
            ToLeader::Claim(req, call, agent, ms) => {
                let (reply, rx) = oneshot::channel();
                let mirror = self.mirror.clone();
                let a = agent.clone();
                self.acd.send(Command::Claim {
                    call,
                    agent,
                    ring: ring(ms),
                    events: self.events_of(call),
                    reply,
                });
                let out = self.out.clone();
                tokio::spawn(async move {
                    let Ok(r) = rx.await else { return };
                    if r.is_ok() {
                        mirror.ringing(&a, call).await;
                    }
                    let answer = ToNode::Claimed(req, r.map_err(WireError::from));
                    let _ = out.send((request_node(req), answer));
                });
            }
            ToLeader::ClaimFrom(req, call, queue, ms, except) => {
                let (reply, rx) = oneshot::channel();
                self.acd.send(Command::ClaimFrom {
                    call,
                    queue,
                    ring: ring(ms),
                    except,
                    events: self.events_of(call),
                    reply,
                });
                let (out, mirror) = (self.out.clone(), self.mirror.clone());
                tokio::spawn(async move {
                    let Ok(r) = rx.await else { return };
                    if let Ok(a) = &r {
                        mirror.ringing(a, call).await;
                    }
                    let answer = ToNode::ClaimedFrom(req, r.map_err(WireError::from));
                    let _ = out.send((request_node(req), answer));
                });
            }
            ToLeader::OfferResult(call, agent, code) => {
                let result = match code {
                    0 => OfferResult::Answered,
                    c => OfferResult::Rejected(c),
                };
                self.mirror.offer_result(call, &agent, result).await;
                self.acd.offer_result(call, &agent, result);
            }
            ToLeader::Released(agent, ms) => {
                self.mirror.released(&agent).await;
                self.acd.released(&agent, Duration::from_millis(ms));
            }
            ToLeader::Presence(agent, online) => self.presence(agent, online).await,
            other => self.request(other).await,
        }
    }

    /// The messages that only ask or set an agent's state.
    async fn request(&mut self, msg: ToLeader) {
        match msg {
            ToLeader::SetAway(req, agent, away) => {
                let (reply, rx) = oneshot::channel();
                self.acd.send(Command::SetAway(agent.clone(), away, reply));
                let (out, mirror) = (self.out.clone(), self.mirror.clone());
                tokio::spawn(async move {
                    let Ok(r) = rx.await else { return };
                    if r.is_ok() {
                        mirror.away(&agent, away).await;
                    }
                    let answer = ToNode::AwaySet(req, r.map_err(WireError::from));
                    let _ = out.send((request_node(req), answer));
                });
            }
            ToLeader::Agents(req) => {
                let (reply, rx) = oneshot::channel();
                self.acd.send(Command::Agents(reply));
                self.answer(request_node(req), rx, move |v| {
                    ToNode::Agents(req, agents_to_wire(v))
                });
            }
            ToLeader::Queues(req) => {
                let (reply, rx) = oneshot::channel();
                self.acd.send(Command::Queues(reply));
                self.answer(request_node(req), rx, move |v| ToNode::Queues(req, v));
            }
            _ => {}
        }
    }

    /// A node saw an agent register or go away; going away counts only if no node holds a
    /// registration of the agent any more.
    async fn presence(&mut self, agent: String, online: bool) {
        if !online && !self.locations.contacts(&agent).await.is_empty() {
            return;
        }
        self.set_online(agent, online);
    }

    fn set_online(&mut self, agent: String, online: bool) {
        self.acd.presence(&agent, online);
        if online {
            self.online.insert(agent);
        } else {
            self.online.remove(&agent);
        }
    }

    /// Presence as the shared registrations say; a dead node's calls and claims let go.
    async fn sweep(&mut self) {
        // While the store does not answer, what it returns says nothing: presence stays as the
        // core has it (no agent goes offline because Redis restarted) and no node is judged.
        if !self.cluster.healthy() {
            return;
        }
        let registered: BTreeSet<String> =
            self.locations.online_agents().await.into_iter().collect();
        let absent: Vec<String> = self
            .online
            .difference(&registered)
            .filter(|a| !self.fixed.contains(*a))
            .cloned()
            .collect();
        self.missing.retain(|a, _| absent.contains(a));
        // An agent goes offline after three sweeps without a registration (the nodes re-publish
        // theirs within a second or two of an outage), and never while ringing or on a call.
        for a in absent {
            let n = self.missing.entry(a.clone()).or_insert(0);
            *n += 1;
            if *n >= MISSING_SWEEPS && !self.mirror.holds(&a) {
                self.missing.remove(&a);
                self.set_online(a, false);
            }
        }
        let new: Vec<String> = registered.difference(&self.online).cloned().collect();
        for a in new {
            self.set_online(a, true);
        }
        let mut dead: HashMap<u16, bool> = HashMap::new();
        for node in self.cluster.nodes().await.unwrap_or_default() {
            if self.is_dead(&mut dead, node).await {
                warn!(
                    node,
                    "node dead: its calls end as interrupted, its agents are released"
                );
                let _ = self.cluster.dead.send(node);
                let _ = self.cluster.forget_node(node).await;
            }
        }
        for (call, _, _) in self.mirror.waiting_calls().await {
            if self.is_dead(&mut dead, node_of(call)).await {
                info!(call, "the call's node is dead: it leaves its queue");
                self.mirror.left(call).await;
                self.acd.abandon(call);
            }
        }
        for (agent, call, busy) in self.mirror.claims().await {
            if self.is_dead(&mut dead, node_of(call)).await {
                info!(%agent, call, "the call's node is dead: the agent's claim is released");
                self.mirror.released(&agent).await;
                if busy {
                    self.acd.released(&agent, Duration::ZERO);
                } else {
                    self.acd
                        .offer_result(call, &agent, OfferResult::Rejected(480));
                }
            }
        }
    }

    async fn is_dead(&self, known: &mut HashMap<u16, bool>, node: u16) -> bool {
        if let Some(d) = known.get(&node) {
            return *d;
        }
        // Unknown while the store is down: not dead.
        let dead = matches!(self.cluster.alive(node).await, Ok(false));
        known.insert(node, dead);
        dead
    }

    /// The state a previous leader left: presence, away, claims, then the waiting calls in order.
    async fn rebuild(&mut self) {
        self.mirror.adopt().await;
        // Presence first: the shared registrations, and the agents with a static URI (already
        // online in a core built from the configuration; here they are only counted).
        for a in self.locations.online_agents().await {
            self.set_online(a, true);
        }
        self.online.extend(self.fixed.iter().cloned());
        for agent in self.mirror.away_agents().await {
            let (reply, _rx) = oneshot::channel();
            self.acd.send(Command::SetAway(agent, true, reply));
        }
        for (agent, call, busy) in self.mirror.claims().await {
            let (reply, _rx) = oneshot::channel();
            self.acd.send(Command::Claim {
                call,
                agent: agent.clone(),
                ring: Duration::from_secs(60),
                events: self.events_of(call),
                reply,
            });
            if busy {
                self.acd.offer_result(call, &agent, OfferResult::Answered);
            }
        }
        let mut waiting = self.mirror.waiting_calls().await;
        waiting.sort_by_key(|(_, since, _)| *since);
        let n = waiting.len();
        for (call, _, (queue, skill)) in waiting {
            let events = self.events_of(call);
            self.acd.enqueue(call, &queue, skill.as_deref(), events);
        }
        info!(waiting = n, online = self.online.len(), "ACD state rebuilt");
    }
}

/// The node that asked request `req` (its number is in the top 16 bits).
pub fn request_node(req: u64) -> u16 {
    (req >> 48) as u16
}

/// Sends the leader's messages to their nodes, in order per node, waiting out outages.
async fn write_out(
    cluster: Arc<Cluster>,
    mut rx: mpsc::UnboundedReceiver<(u16, ToNode)>,
    stop: CancellationToken,
) {
    let mut outboxes: HashMap<u16, VecDeque<String>> = HashMap::new();
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = stop.cancelled() => None,
        };
        let Some((node, msg)) = msg else { break };
        let Ok(text) = serde_json::to_string(&msg) else {
            continue;
        };
        let outbox = outboxes.entry(node).or_default();
        outbox.push_back(text);
        acd_bus::send_all(cluster.kv.as_ref(), &acd_bus::to_node(node), outbox, &stop).await;
    }
}
