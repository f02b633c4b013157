//! The toll-fraud guard, sans-IO: which numbers a public button may make the gateway dial, and how
//! often. Every check happens before anything is stored or dialled; a refusal names its reason.
//!
//! Order: deny-list (premium, satellite, configured), allow-list (default: the home country), then
//! the rate limits (per client IP, per number, per site; sliding one-hour windows counting accepted
//! requests) and the cap on callbacks waiting. Duplicates are collapsed by the caller before this
//! check, so a visitor pressing "Call me" twice costs nothing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Prefixes refused by default: satellite and international networks (+870 Inmarsat, +881 GMSS,
/// +882/+883 international networks), international premium rate and shared cost (+979, +808), and
/// NANP premium rate (+1 900, +1 976).
pub const DEFAULT_DENY: &[&str] = &[
    "+870", "+881", "+882", "+883", "+979", "+808", "+1900", "+1976",
];

/// The guard's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// E.164 prefixes that may be dialled (`+1`, `+4420`).
    pub allow: Vec<String>,
    /// E.164 prefixes that may never be dialled; wins over `allow`.
    pub deny: Vec<String>,
    /// Accepted requests per client IP per hour.
    pub per_ip_per_hour: u32,
    /// Accepted requests per destination number per hour.
    pub per_number_per_hour: u32,
    /// Accepted requests per site per hour.
    pub per_site_per_hour: u32,
    /// Callbacks waiting (scheduled or dialling) at most.
    pub max_pending: usize,
}

/// Why a request was refused; `code()` is stable (widget `error` codes, API `error` fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// On the deny-list.
    #[error("calls to {number} are not allowed ({prefix} is blocked)")]
    Denied {
        /// The E.164 number.
        number: String,
        /// The deny-list entry it matched.
        prefix: String,
    },
    /// Not on the allow-list.
    #[error("calls to {0} are not allowed (outside the allowed countries and prefixes)")]
    NotAllowed(String),
    /// A rate limit.
    #[error("too many callback requests for this {what} (at most {limit} an hour)")]
    RateLimited {
        /// `ip`, `number` or `site`.
        what: &'static str,
        /// The configured limit.
        limit: u32,
    },
    /// Too many callbacks already waiting.
    #[error("too many callbacks are waiting (at most {0}); please try again later")]
    Full(usize),
}

impl Refusal {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Denied { .. } | Refusal::NotAllowed(_) => "number_not_allowed",
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::Full(_) => "callback_full",
        }
    }
}

/// One request to check.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// E.164.
    pub number: &'a str,
    /// The visitor's address (none for the trusted REST API).
    pub ip: Option<IpAddr>,
    /// The embedding site's key.
    pub site: Option<&'a str>,
    /// Callbacks waiting now.
    pub pending: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Number(String),
    Site(String),
}

const WINDOW: Duration = Duration::from_secs(3600);

/// The guard's state: the accepted requests of the last hour.
#[derive(Debug)]
pub struct FraudGuard {
    cfg: GuardConfig,
    seen: HashMap<Key, VecDeque<Instant>>,
}

impl FraudGuard {
    /// A guard with no history.
    pub fn new(cfg: GuardConfig) -> Self {
        Self {
            cfg,
            seen: HashMap::new(),
        }
    }

    /// Whether `number` may be dialled at all (lists only).
    pub fn check_number(&self, number: &str) -> Result<(), Refusal> {
        if let Some(p) = self
            .cfg
            .deny
            .iter()
            .find(|p| number.starts_with(p.as_str()))
        {
            return Err(Refusal::Denied {
                number: number.into(),
                prefix: p.clone(),
            });
        }
        if !self
            .cfg
            .allow
            .iter()
            .any(|p| number.starts_with(p.as_str()))
        {
            return Err(Refusal::NotAllowed(number.into()));
        }
        Ok(())
    }

    /// Checks `req` at `now`; an accepted request counts against its limits.
    pub fn check(&mut self, now: Instant, req: Request<'_>) -> Result<(), Refusal> {
        self.check_number(req.number)?;
        if req.pending >= self.cfg.max_pending {
            return Err(Refusal::Full(self.cfg.max_pending));
        }
        let mut keys = vec![(
            Key::Number(req.number.into()),
            "number",
            self.cfg.per_number_per_hour,
        )];
        if let Some(ip) = req.ip {
            keys.push((Key::Ip(ip), "ip", self.cfg.per_ip_per_hour));
        }
        if let Some(site) = req.site {
            keys.push((Key::Site(site.into()), "site", self.cfg.per_site_per_hour));
        }
        for (key, what, limit) in &keys {
            if self.count(now, key) >= *limit as usize {
                return Err(Refusal::RateLimited {
                    what,
                    limit: *limit,
                });
            }
        }
        for (key, ..) in keys {
            self.seen.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    fn count(&mut self, now: Instant, key: &Key) -> usize {
        let Some(q) = self.seen.get_mut(key) else {
            return 0;
        };
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.is_empty() {
            self.seen.remove(key);
            return 0;
        }
        q.len()
    }

    /// Forgets windows that have run out (call now and then so idle keys do not accumulate).
    pub fn sweep(&mut self, now: Instant) {
        self.seen.retain(|_, q| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> FraudGuard {
        FraudGuard::new(GuardConfig {
            allow: vec!["+1".into()],
            deny: DEFAULT_DENY.iter().map(|s| s.to_string()).collect(),
            per_ip_per_hour: 3,
            per_number_per_hour: 2,
            per_site_per_hour: 5,
            max_pending: 10,
        })
    }
    fn req<'a>(number: &'a str, ip: &str) -> Request<'a> {
        Request {
            number,
            ip: Some(ip.parse().unwrap()),
            site: Some("acme"),
            pending: 0,
        }
    }

    #[test]
    fn deny_wins_and_only_allowed_prefixes_pass() {
        let mut g = guard();
        let t = Instant::now();
        assert_eq!(
            g.check(t, req("+19005550100", "10.0.0.1"))
                .unwrap_err()
                .code(),
            "number_not_allowed"
        );
        assert!(
            matches!(g.check(t, req("+19005550100", "10.0.0.1")), Err(Refusal::Denied { prefix, .. }) if prefix == "+1900")
        );
        assert!(matches!(
            g.check(t, req("+442079460018", "10.0.0.1")),
            Err(Refusal::NotAllowed(_))
        ));
        assert!(matches!(
            g.check(t, req("+8816555010", "10.0.0.1")),
            Err(Refusal::Denied { .. })
        ));
        // Refusals do not use up the visitor's allowance.
        for n in ["+15550100001", "+15550100002", "+15550100003"] {
            g.check(t, req(n, "10.0.0.1")).unwrap();
        }
    }

    #[test]
    fn limits_trigger_at_their_values_and_windows_slide() {
        let mut g = guard();
        let t = Instant::now();
        // Per number: 2 an hour, whoever asks.
        g.check(t, req("+15550100001", "10.0.0.1")).unwrap();
        g.check(t, req("+15550100001", "10.0.0.2")).unwrap();
        assert_eq!(
            g.check(t, req("+15550100001", "10.0.0.3")),
            Err(Refusal::RateLimited {
                what: "number",
                limit: 2
            })
        );
        // Per IP: 3 an hour.
        g.check(t, req("+15550100002", "10.0.0.1")).unwrap();
        g.check(t, req("+15550100003", "10.0.0.1")).unwrap();
        assert_eq!(
            g.check(t, req("+15550100004", "10.0.0.1")),
            Err(Refusal::RateLimited {
                what: "ip",
                limit: 3
            })
        );
        // An hour after the first requests, they no longer count.
        let later = t + Duration::from_secs(3600);
        g.check(later, req("+15550100001", "10.0.0.1")).unwrap();
        g.sweep(later + Duration::from_secs(3600));
        assert!(g.seen.is_empty());
    }

    #[test]
    fn per_site_and_pending_caps() {
        let mut g = guard();
        let t = Instant::now();
        for i in 0..5 {
            g.check(t, req(&format!("+1555010010{i}"), &format!("10.0.1.{i}")))
                .unwrap();
        }
        assert_eq!(
            g.check(t, req("+15550100200", "10.0.2.1")),
            Err(Refusal::RateLimited {
                what: "site",
                limit: 5
            })
        );
        let full = Request {
            pending: 10,
            site: None,
            ..req("+15550100300", "10.0.3.1")
        };
        assert_eq!(g.check(t, full), Err(Refusal::Full(10)));
        // The REST API has no client IP and no site: only the number's limit applies.
        let api = Request {
            ip: None,
            site: None,
            ..req("+15550100400", "10.0.0.1")
        };
        g.check(t, api).unwrap();
    }
}
