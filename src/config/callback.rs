//! `[callback]` (call me back: the gateway dials the customer over a trunk) and `[[sites]]` (the
//! websites allowed to embed the widget, and the secrets they sign context with).

use super::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// `[callback]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackSection {
    /// Serve callback requests (widget `callback`, `POST /api/callbacks`).
    pub enabled: bool,
    /// The trunk callbacks are placed through (a `[[trunks]]` name); the first trunk when unset.
    pub trunk: Option<String>,
    /// Caller-ID (From user part) of callbacks; the trunk's first number when unset.
    pub caller_id: Option<String>,
    /// Where callback requests are kept across restarts: a SQLite file, or a `postgres://` URL
    /// shared by several gateway nodes (each due callback is then claimed by one node).
    pub database: PathBuf,
    /// Home country calling code (digits): numbers typed without `+` are read in this country.
    pub country_code: String,
    /// National trunk prefix (`0`; `1` in NANP).
    pub national_prefix: String,
    /// International call prefix (`00`; `011` in NANP).
    pub international_prefix: String,
    /// E.164 prefixes that may be called; default: only the home country.
    pub allow: Vec<String>,
    /// E.164 prefixes never called, on top of the built-in premium/satellite list.
    pub deny: Vec<String>,
    /// Accepted requests per visitor IP per hour.
    pub per_ip_per_hour: u32,
    /// Accepted requests per destination number per hour.
    pub per_number_per_hour: u32,
    /// Accepted requests per site per hour.
    pub per_site_per_hour: u32,
    /// Callbacks scheduled or in progress, at most (more are refused).
    pub max_pending: usize,
    /// Callbacks dialled at the same time, at most (others wait their turn).
    pub max_concurrent: usize,
    /// How long the customer's phone may ring.
    pub ring_timeout_secs: u64,
    /// The greeting played when the customer answers (a prompt name).
    pub greeting: String,
    /// How long to wait for the customer's digit after the greeting (then once more, then hang up).
    pub confirm_timeout_secs: u64,
    /// The digit that confirms.
    pub confirm_digit: char,
    /// Further attempts after busy, no answer or a trunk failure.
    pub retries: u32,
    /// Wait between attempts.
    pub retry_delay_secs: u64,
    /// Queue used when a request names none; the first queue when unset.
    pub queue: Option<String>,
    /// How long a node's claim on a callback it is dialling (or in a call with) lasts without
    /// renewal (renewed every third of it); a node that dies loses its claims after this, and
    /// another node retries them.
    pub lease_secs: u64,
}

impl CallbackSection {
    /// The home country's dialling plan, as the number functions take it.
    pub fn plan(&self) -> crate::callback::number::NumberPlan {
        crate::callback::number::NumberPlan {
            country_code: self.country_code.clone(),
            national_prefix: self.national_prefix.clone(),
            international_prefix: self.international_prefix.clone(),
        }
    }
}

impl Default for CallbackSection {
    fn default() -> Self {
        Self {
            enabled: false,
            trunk: None,
            caller_id: None,
            database: PathBuf::from("clicktocall.db"),
            country_code: "1".into(),
            national_prefix: "1".into(),
            international_prefix: "011".into(),
            allow: Vec::new(),
            deny: Vec::new(),
            per_ip_per_hour: 5,
            per_number_per_hour: 3,
            per_site_per_hour: 500,
            max_pending: 100,
            max_concurrent: 10,
            ring_timeout_secs: 30,
            greeting: "callback".into(),
            confirm_timeout_secs: 6,
            confirm_digit: '1',
            retries: 2,
            retry_delay_secs: 120,
            queue: None,
            lease_secs: 30,
        }
    }
}

/// What to do with a context that is not signed, or not validly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnsignedPolicy {
    /// Accept it; the agent's phone sees `X-Context-Verified: no`.
    #[default]
    Mark,
    /// Refuse the call or callback (`context_unverified`).
    Refuse,
}

/// `[widget]`: how the gateway treats the widget's socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetSection {
    /// How long a call whose widget socket dropped waits for the widget to come back (`resume`)
    /// before it ends as `connection_lost`; 0 ends it at once. The media goes on meanwhile.
    pub resume_grace_secs: u64,
    /// The key resume tokens are signed with (or `CLICKTOCALL_RESUME_SECRET`). Unset: a random
    /// key per process, which is right for one node (only the node holding a call can resume it);
    /// set the same on every node when any node should tell a stale token from a forged one.
    pub resume_secret: Option<String>,
}

impl Default for WidgetSection {
    fn default() -> Self {
        WidgetSection {
            resume_grace_secs: 30,
            resume_secret: None,
        }
    }
}

/// `[[sites]]`: a website allowed to embed the widget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site key the widget passes (`data-site`).
    pub key: String,
    /// Origins (`https://shop.example.com`) whose pages may open the widget's socket with this key.
    pub origins: Vec<String>,
    /// HMAC-SHA256 secret the site's backend signs context with (or `CLICKTOCALL_SITE_<KEY>_SECRET`).
    #[serde(default)]
    pub secret: Option<String>,
    /// Unsigned or badly signed context: `mark` (default) or `refuse`.
    #[serde(default)]
    pub unsigned: UnsignedPolicy,
}

impl super::Config {
    pub(super) fn validate_callback(&self) -> Result<(), ConfigError> {
        if self.widget.resume_grace_secs > 600 {
            return Err(ConfigError::invalid(
                "widget.resume_grace_secs",
                "at most 600 (a call nobody can reach should not hold an agent for long)",
            ));
        }
        for (key, setting) in [
            ("records.database", &self.records.database),
            ("callback.database", &self.callback.database),
        ] {
            if let crate::storage::Database::Postgres(url) =
                crate::storage::Database::parse(setting)
            {
                url.parse::<tokio_postgres::Config>()
                    .map_err(|e| ConfigError::invalid(key, format!("not a PostgreSQL URL: {e}")))?;
            }
        }
        if !(3..=3600).contains(&self.callback.lease_secs) {
            return Err(ConfigError::invalid(
                "callback.lease_secs",
                "3 to 3600 (a dead node's callbacks wait this long before another node retries them)",
            ));
        }
        let c = &self.callback;
        let digits = |k: &str, v: &str, empty_ok: bool| {
            if (v.is_empty() && !empty_ok) || !v.chars().all(|c| c.is_ascii_digit()) || v.len() > 4
            {
                return Err(ConfigError::invalid(
                    format!("callback.{k}"),
                    format!("{v:?} is not a dialling code (1 to 4 digits)"),
                ));
            }
            Ok(())
        };
        digits("country_code", &c.country_code, false)?;
        digits("national_prefix", &c.national_prefix, true)?;
        digits("international_prefix", &c.international_prefix, true)?;
        for (k, list) in [("allow", &c.allow), ("deny", &c.deny)] {
            for (i, p) in list.iter().enumerate() {
                let ok = p.len() >= 2
                    && p.starts_with('+')
                    && p[1..].chars().all(|c| c.is_ascii_digit());
                if !ok {
                    return Err(ConfigError::invalid(
                        format!("callback.{k}[{i}]"),
                        format!("{p:?} is not an E.164 prefix like \"+1\" or \"+4420\""),
                    ));
                }
            }
        }
        if !c.confirm_digit.is_ascii_digit() && !"*#".contains(c.confirm_digit) {
            return Err(ConfigError::invalid(
                "callback.confirm_digit",
                "must be 0-9, * or #",
            ));
        }
        if c.max_concurrent == 0 || c.ring_timeout_secs == 0 || c.confirm_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "callback.max_concurrent",
                "max_concurrent, ring_timeout_secs and confirm_timeout_secs must be above 0",
            ));
        }
        if let Some(q) = &c.queue {
            if !self.queues.iter().any(|x| &x.name == q) {
                return Err(ConfigError::invalid(
                    "callback.queue",
                    format!("no queue named {q:?}"),
                ));
            }
        }
        if c.enabled {
            let trunk = match &c.trunk {
                Some(name) => self
                    .trunks
                    .iter()
                    .find(|t| &t.name == name)
                    .ok_or_else(|| {
                        ConfigError::invalid("callback.trunk", format!("no trunk named {name:?}"))
                    })?,
                None => self.trunks.first().ok_or_else(|| {
                    ConfigError::invalid("callback.trunk", "callbacks need a [[trunks]] entry")
                })?,
            };
            if c.caller_id.is_none() && trunk.numbers.is_empty() {
                return Err(ConfigError::invalid(
                    "callback.caller_id",
                    "set a caller-ID (or give the trunk a number)",
                ));
            }
            if self.queues.is_empty() {
                return Err(ConfigError::invalid(
                    "callback.queue",
                    "callbacks need a queue",
                ));
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for (i, s) in self.sites.iter().enumerate() {
            if s.key.is_empty()
                || s.key.len() > 64
                || !s
                    .key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(ConfigError::invalid(
                    format!("sites[{i}].key"),
                    "1 to 64 letters, digits, '-', '_' or '.'",
                ));
            }
            if !keys.insert(&s.key) {
                return Err(ConfigError::invalid(
                    format!("sites[{i}].key"),
                    format!("{:?} is listed twice", s.key),
                ));
            }
            for (j, o) in s.origins.iter().enumerate() {
                if !super::validate::is_origin(o) {
                    return Err(ConfigError::invalid(
                        format!("sites[{i}].origins[{j}]"),
                        format!("{o:?} is not an origin like https://shop.example.com"),
                    ));
                }
            }
            if s.unsigned == UnsignedPolicy::Refuse && s.secret.as_deref().unwrap_or("").is_empty()
            {
                return Err(ConfigError::invalid(
                    format!("sites[{i}].secret"),
                    "unsigned = \"refuse\" needs the site's secret",
                ));
            }
        }
        Ok(())
    }
}
