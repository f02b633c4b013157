//! The agent registrar (RFC 3261 §10.3), sans-IO: bindings of agents to contacts, their expiry, and
//! OPTIONS keepalives that drop contacts which stop answering.
//!
//! Drive it with the usual verbs: [`Registrar::handle_register`] for each authenticated REGISTER,
//! [`Registrar::handle_timeout`] when [`Registrar::poll_timeout`] passes, [`Registrar::handle_keepalive`]
//! with each keepalive's outcome, and drain [`Registrar::poll_output`] after each call until it returns
//! `None` (who came online or went offline, which keepalives to send). Time is always an argument.

mod store;

pub use store::{ContactInfo, LocationStore, MemoryLocationStore};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Limits applied to every registration.
#[derive(Debug, Clone)]
pub struct RegistrarPolicy {
    /// Shortest expiry accepted (RFC 3261 §10.3 step 7: else 423).
    pub min_expires: u32,
    /// Longest expiry granted.
    pub max_expires: u32,
    /// Expiry when the request gives none.
    pub default_expires: u32,
    /// Interval between keepalives to a contact; `None` disables them.
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalives in a row after which a contact is dropped.
    pub keepalive_max_failures: u32,
}

/// One Contact of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    /// The contact URI as sent.
    pub uri: String,
    /// Its `expires` parameter, if any.
    pub expires: Option<u32>,
}

/// What a REGISTER asks for (already authenticated as `agent`).
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    /// The agent id (authenticated user name).
    pub agent: String,
    /// Call-ID of the REGISTER.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// The Expires header, if any.
    pub expires_header: Option<u32>,
    /// `None` for a query (no Contact), `Some(vec![])` is not produced: a wildcard is [`Self::wildcard`].
    pub contacts: Vec<ContactRequest>,
    /// `Contact: *` (remove all; only with Expires: 0).
    pub wildcard: bool,
    /// Where the REGISTER came from (keepalives and calls go here: NAT-friendly).
    pub source: SocketAddr,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// The REGISTER's `Path` (RFC 3327): the proxies requests to the agent must go through, in
    /// order (empty when it came straight from the phone).
    pub path: Vec<String>,
}

/// The answer to a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// 200 OK listing every current binding with its remaining seconds.
    Ok(Vec<(String, u32)>),
    /// 423 Interval Too Brief, with the Min-Expires to send.
    IntervalTooBrief(u32),
    /// 400 with a reason (wildcard misuse).
    BadRequest(&'static str),
    /// 500: a CSeq not above the last one for the same Call-ID (out-of-order retransmission).
    OutOfOrder,
}

/// Something the shell should do or know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrarOutput {
    /// The agent has at least one binding now and had none before.
    Online(String),
    /// The agent's last binding went (expired, removed, or keepalives failed).
    Offline(String),
    /// The agent's bindings changed: write them to the location store.
    Bindings(String, Vec<ContactInfo>),
    /// Send OPTIONS to this contact and report with [`Registrar::handle_keepalive`].
    SendKeepalive {
        /// Agent id.
        agent: String,
        /// Contact URI.
        uri: String,
        /// Where to send it.
        target: SocketAddr,
        /// Transport.
        transport: String,
    },
}

#[derive(Debug, Clone)]
struct Binding {
    uri: String,
    call_id: String,
    cseq: u32,
    expires_at: Instant,
    source: SocketAddr,
    transport: String,
    path: Vec<String>,
    /// When the next keepalive is due; `None` while one is outstanding (or keepalives are off).
    next_keepalive: Option<Instant>,
    keepalive_failures: u32,
}

/// Bindings of all agents. See the module docs for the drive contract.
#[derive(Debug)]
pub struct Registrar {
    policy: RegistrarPolicy,
    agents: BTreeMap<String, Vec<Binding>>,
    out: VecDeque<RegistrarOutput>,
}

impl Registrar {
    /// An empty registrar.
    pub fn new(policy: RegistrarPolicy) -> Self {
        Registrar {
            policy,
            agents: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Applies a REGISTER (RFC 3261 §10.3 steps 6-8).
    pub fn handle_register(&mut self, now: Instant, req: RegisterRequest) -> RegisterOutcome {
        let before = self.agents.get(&req.agent).map_or(0, Vec::len);
        if req.wildcard {
            if req.expires_header != Some(0) || !req.contacts.is_empty() {
                return RegisterOutcome::BadRequest(
                    "Contact * needs Expires: 0 and no other Contact",
                );
            }
            self.agents.remove(&req.agent);
        } else {
            if let Err(outcome) = self.check_request(&req) {
                return outcome;
            }
            for c in &req.contacts {
                self.apply_contact(now, &req, c);
            }
        }
        self.after_change(now, &req.agent, before);
        RegisterOutcome::Ok(self.listing(now, &req.agent))
    }

    /// Rejections that must leave every binding untouched (checked before any change).
    fn check_request(&self, req: &RegisterRequest) -> Result<(), RegisterOutcome> {
        let existing = self.agents.get(&req.agent);
        for c in &req.contacts {
            let expires = c
                .expires
                .or(req.expires_header)
                .unwrap_or(self.policy.default_expires);
            if expires != 0 && expires < self.policy.min_expires {
                return Err(RegisterOutcome::IntervalTooBrief(self.policy.min_expires));
            }
            let stale = existing
                .and_then(|bs| bs.iter().find(|b| b.uri == c.uri))
                .is_some_and(|b| b.call_id == req.call_id && req.cseq <= b.cseq);
            if stale {
                return Err(RegisterOutcome::OutOfOrder);
            }
        }
        Ok(())
    }

    fn apply_contact(&mut self, now: Instant, req: &RegisterRequest, c: &ContactRequest) {
        let expires = c
            .expires
            .or(req.expires_header)
            .unwrap_or(self.policy.default_expires)
            .min(self.policy.max_expires);
        let bindings = self.agents.entry(req.agent.clone()).or_default();
        bindings.retain(|b| b.uri != c.uri);
        if expires == 0 {
            return;
        }
        bindings.push(Binding {
            uri: c.uri.clone(),
            call_id: req.call_id.clone(),
            cseq: req.cseq,
            expires_at: now + Duration::from_secs(u64::from(expires)),
            source: req.source,
            transport: req.transport.clone(),
            path: req.path.clone(),
            next_keepalive: self.policy.keepalive_interval.map(|i| now + i),
            keepalive_failures: 0,
        });
    }

    /// Emits Online/Offline/Bindings after the agent's bindings changed.
    fn after_change(&mut self, now: Instant, agent: &str, before: usize) {
        let after = self.agents.get(agent).map_or(0, Vec::len);
        if after == 0 {
            self.agents.remove(agent);
        }
        self.out.push_back(RegistrarOutput::Bindings(
            agent.to_string(),
            self.contacts(now, agent),
        ));
        match (before, after) {
            (0, n) if n > 0 => self
                .out
                .push_back(RegistrarOutput::Online(agent.to_string())),
            (n, 0) if n > 0 => self
                .out
                .push_back(RegistrarOutput::Offline(agent.to_string())),
            _ => {}
        }
    }

    fn listing(&self, now: Instant, agent: &str) -> Vec<(String, u32)> {
        self.agents
            .get(agent)
            .map(|bs| {
                bs.iter()
                    .map(|b| (b.uri.clone(), remaining(now, b.expires_at)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The agent's live contacts.
    pub fn contacts(&self, now: Instant, agent: &str) -> Vec<ContactInfo> {
        self.agents
            .get(agent)
            .map(|bs| {
                bs.iter()
                    .map(|b| ContactInfo {
                        uri: b.uri.clone(),
                        source: b.source,
                        transport: b.transport.clone(),
                        expires_in: remaining(now, b.expires_at),
                        path: b.path.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The earliest instant something is due (an expiry or a keepalive).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.agents
            .values()
            .flatten()
            .flat_map(|b| [Some(b.expires_at), b.next_keepalive])
            .flatten()
            .min()
    }

    /// Expires bindings and schedules keepalives due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let agents: Vec<String> = self.agents.keys().cloned().collect();
        for agent in agents {
            let Some(bindings) = self.agents.get_mut(&agent) else {
                continue;
            };
            let before = bindings.len();
            bindings.retain(|b| b.expires_at > now);
            let mut due = Vec::new();
            for b in bindings.iter_mut() {
                if let Some(at) = b.next_keepalive {
                    if at <= now {
                        // None while the keepalive is out: the next one is scheduled from its outcome,
                        // so a slow transaction (Timer F is 32 s) never overlaps the next.
                        b.next_keepalive = None;
                        due.push(RegistrarOutput::SendKeepalive {
                            agent: agent.clone(),
                            uri: b.uri.clone(),
                            target: b.source,
                            transport: b.transport.clone(),
                        });
                    }
                }
            }
            let after = bindings.len();
            self.out.extend(due);
            if after != before {
                self.after_change(now, &agent, before);
            }
        }
    }

    /// Reports a keepalive's outcome: any answer (even an error status) proves the phone is alive.
    pub fn handle_keepalive(&mut self, now: Instant, agent: &str, uri: &str, answered: bool) {
        let max = self.policy.keepalive_max_failures;
        let Some(bindings) = self.agents.get_mut(agent) else {
            return;
        };
        let before = bindings.len();
        if let Some(b) = bindings.iter_mut().find(|b| b.uri == uri) {
            b.next_keepalive = self.policy.keepalive_interval.map(|i| now + i);
            b.keepalive_failures = if answered {
                0
            } else {
                b.keepalive_failures + 1
            };
        }
        bindings.retain(|b| b.keepalive_failures < max.max(1));
        if bindings.len() != before {
            self.after_change(now, agent, before);
        }
    }

    /// The next thing for the shell to do or know, until `None`.
    pub fn poll_output(&mut self) -> Option<RegistrarOutput> {
        self.out.pop_front()
    }

    /// True when the agent has at least one binding.
    pub fn is_online(&self, agent: &str) -> bool {
        self.agents.contains_key(agent)
    }
}

fn remaining(now: Instant, at: Instant) -> u32 {
    let secs = at.saturating_duration_since(now).as_secs_f64().round();
    secs.min(f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests;
