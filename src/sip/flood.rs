//! SIP flood defence: per source address a token bucket on messages, a count of failed digest
//! authentications, and a ban list (what Kamailio's pike and fail2ban do in front of other PBXs).
//! Sans-IO: [`FloodGuard`] is fed each message's source and the time; the shell ([`FloodShield`])
//! drops what it says to drop, unanswered.
//!
//! Trusted networks (the trunks' sources) and protected addresses (where agents registered from)
//! are never limited or banned, so a flood spoofing them cannot lock them out either.

use crate::config::{Cidr, FloodSection};
use crate::ratelimit::TokenBuckets;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a source was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BanReason {
    /// It sent more than its burst above the rate.
    Flood,
    /// Too many failed digest authentications within the window.
    AuthFailures,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Serve it.
    Pass,
    /// Drop it unanswered: the source is banned (now, or already).
    Drop,
}

/// A ban in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// When it started.
    pub since: Instant,
    /// When it ends.
    pub until: Instant,
    /// Why.
    pub reason: BanReason,
    /// Messages dropped under it.
    pub dropped: u64,
}

/// A source's failed authentications in its current window.
#[derive(Debug)]
struct Failures {
    count: u32,
    window_start: Instant,
}

/// The decisions. See the module docs.
#[derive(Debug)]
pub struct FloodGuard {
    limits: FloodSection,
    trusted: Vec<Cidr>,
    protected: HashMap<IpAddr, Instant>,
    /// Messages per source (`ratelimit`'s buckets: full ones are forgotten, bounded in count).
    buckets: TokenBuckets<IpAddr>,
    failures: HashMap<IpAddr, Failures>,
    bans: HashMap<IpAddr, Ban>,
    next_sweep: Option<Instant>,
    /// Messages dropped from banned sources, ever.
    pub dropped_total: u64,
    /// Bans imposed, ever.
    pub bans_total: u64,
}

const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl FloodGuard {
    /// A guard with these limits; `trusted` networks are never limited.
    pub fn new(limits: FloodSection, trusted: Vec<Cidr>) -> FloodGuard {
        FloodGuard {
            buckets: TokenBuckets::new(
                f64::from(limits.rate_per_sec),
                f64::from(limits.burst),
                limits.max_sources,
            ),
            limits,
            trusted,
            protected: HashMap::new(),
            failures: HashMap::new(),
            bans: HashMap::new(),
            next_sweep: None,
            dropped_total: 0,
            bans_total: 0,
        }
    }

    fn exempt(&self, now: Instant, ip: IpAddr) -> bool {
        !self.limits.enabled
            || self.trusted.iter().any(|c| c.contains(ip))
            || self.protected.get(&ip).is_some_and(|until| *until > now)
    }

    /// A message arrived from `ip`: pass it or drop it. A source whose bucket runs dry is banned.
    pub fn handle_message(&mut self, now: Instant, ip: IpAddr) -> Admit {
        self.sweep_if_due(now);
        if let Some(ban) = self.bans.get_mut(&ip) {
            if ban.until > now {
                ban.dropped += 1;
                self.dropped_total += 1;
                return Admit::Drop;
            }
            self.bans.remove(&ip);
        }
        if self.exempt(now, ip) {
            return Admit::Pass;
        }
        if self.buckets.allow(now, ip) {
            return Admit::Pass;
        }
        self.ban(now, ip, BanReason::Flood);
        self.dropped_total += 1;
        Admit::Drop
    }

    /// A digest authentication from `ip` failed (wrong password, unknown user). True when this
    /// failure got the source banned.
    pub fn handle_auth_failure(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self.exempt(now, ip) || self.bans.contains_key(&ip) {
            return false;
        }
        let window = Duration::from_secs(self.limits.auth_window_secs);
        if !self.failures.contains_key(&ip) && self.failures.len() >= self.limits.max_sources {
            return false; // the table is full: the source goes untracked
        }
        let f = self.failures.entry(ip).or_insert(Failures {
            count: 0,
            window_start: now,
        });
        if now.saturating_duration_since(f.window_start) > window {
            f.window_start = now;
            f.count = 0;
        }
        f.count += 1;
        if f.count < self.limits.auth_failures {
            return false;
        }
        self.ban(now, ip, BanReason::AuthFailures);
        true
    }

    /// `ip` is where an agent registered from, until `until`: never limit or ban it meanwhile.
    pub fn protect(&mut self, ip: IpAddr, until: Instant) {
        let e = self.protected.entry(ip).or_insert(until);
        *e = (*e).max(until);
        self.bans.remove(&ip);
    }

    /// The bans in force at `now`.
    pub fn bans(&self, now: Instant) -> Vec<(IpAddr, Ban)> {
        let mut v: Vec<(IpAddr, Ban)> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(ip, b)| (*ip, *b))
            .collect();
        v.sort_by_key(|(_, b)| b.since);
        v
    }

    /// Lifts the ban on `ip` (and forgets its history); false when it was not banned.
    pub fn unban(&mut self, now: Instant, ip: IpAddr) -> bool {
        self.buckets.forget(&ip);
        self.failures.remove(&ip);
        self.bans.remove(&ip).is_some_and(|b| b.until > now)
    }

    /// Sources tracked now (for the memory bound's tests and metrics).
    pub fn tracked(&self) -> usize {
        let only_failures = self.failures.keys().filter(|ip| !self.buckets.tracks(ip));
        self.buckets.len() + only_failures.count()
    }

    fn ban(&mut self, now: Instant, ip: IpAddr, reason: BanReason) {
        self.buckets.forget(&ip);
        self.failures.remove(&ip);
        self.bans_total += 1;
        self.bans.insert(
            ip,
            Ban {
                since: now,
                until: now + Duration::from_secs(self.limits.ban_secs),
                reason,
                dropped: 0,
            },
        );
    }

    /// Forgets ended bans, lapsed protections and failure windows (the buckets forget full ones
    /// themselves): memory follows the sources active now, not every address ever seen.
    fn sweep_if_due(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| t > now) {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        let window = Duration::from_secs(self.limits.auth_window_secs);
        self.bans.retain(|_, b| b.until > now);
        self.protected.retain(|_, until| *until > now);
        self.failures
            .retain(|_, f| now.saturating_duration_since(f.window_start) <= window);
    }
}

/// The peers the config names, never limited: trunks' source networks, and every IP address written
/// in a trunk's proxy, a static agent's or supervisor's URI, or a queue's SIPREC recorder.
pub fn trusted_sources(cfg: &crate::config::Config) -> Vec<Cidr> {
    let uris = cfg
        .trunks
        .iter()
        .map(|t| &t.proxy)
        .chain(cfg.agents.iter().filter_map(|a| a.uri.as_ref()))
        .chain(cfg.supervisors.iter().filter_map(|s| s.uri.as_ref()))
        .chain(cfg.queues.iter().flat_map(|q| q.siprec.iter()));
    let hosts = uris.filter_map(|u| {
        let host = super::uri::parse_sip_uri(u)
            .ok()?
            .host_with_port
            .host
            .to_string();
        host.trim_matches(|c| c == '[' || c == ']')
            .parse::<Cidr>()
            .ok()
    });
    cfg.trunks
        .iter()
        .flat_map(|t| t.sources.iter().copied())
        .chain(hosts)
        .collect()
}

/// The guard shared by the SIP sockets, the digest checks and the REST API, reading the clock.
#[derive(Debug)]
pub struct FloodShield(Mutex<FloodGuard>);

impl FloodShield {
    /// A shield around `guard`.
    pub fn new(guard: FloodGuard) -> FloodShield {
        FloodShield(Mutex::new(guard))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FloodGuard> {
        // A panic elsewhere while holding it leaves consistent counters: keep using it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether to serve a message from `ip` now (logs a ban when this message causes one).
    pub fn admit(&self, ip: IpAddr) -> bool {
        let mut g = self.lock();
        let before = g.bans_total;
        let admit = g.handle_message(Instant::now(), ip);
        if g.bans_total != before {
            tracing::warn!(%ip, "SIP source banned: over its burst (flood)");
        }
        admit == Admit::Pass
    }

    /// A failed digest authentication from `ip`.
    pub fn auth_failed(&self, ip: IpAddr) {
        if self.lock().handle_auth_failure(Instant::now(), ip) {
            tracing::warn!(%ip, "SIP source banned: too many failed authentications");
        }
    }

    /// An agent registered from `ip` for `secs`.
    pub fn protect(&self, ip: IpAddr, secs: u64) {
        self.lock()
            .protect(ip, Instant::now() + Duration::from_secs(secs));
    }

    /// The bans in force, with seconds since and until, for the API.
    pub fn bans(&self) -> Vec<serde_json::Value> {
        let now = Instant::now();
        self.lock()
            .bans(now)
            .into_iter()
            .map(|(ip, b)| {
                serde_json::json!({
                    "ip": ip.to_string(),
                    "reason": b.reason,
                    "banned_secs_ago": now.saturating_duration_since(b.since).as_secs(),
                    "expires_in_secs": b.until.saturating_duration_since(now).as_secs(),
                    "dropped": b.dropped,
                })
            })
            .collect()
    }

    /// Lifts a ban; false when `ip` was not banned.
    pub fn unban(&self, ip: IpAddr) -> bool {
        self.lock().unban(Instant::now(), ip)
    }

    /// (sources banned now, messages dropped ever, bans ever) for `/metrics`.
    pub fn counts(&self) -> (u64, u64, u64) {
        let g = self.lock();
        (
            g.bans(Instant::now()).len() as u64,
            g.dropped_total,
            g.bans_total,
        )
    }
}

#[cfg(test)]
#[path = "flood_tests.rs"]
mod tests;
