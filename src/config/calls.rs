//! Call-control configuration: media ports, how the customer's context becomes SIP
//! headers, queue rules, and the REST API key. Parsed with the rest of the file; checked by
//! [`Config::validate_calls`](super::Config). The IVR's sections are in [`super::ivr`].

use super::ConfigError;
use crate::acd::{Overflow, QueueRules, Strategy};
use crate::ivr::MenuAction;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// `[media]`: where RTP sockets live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSection {
    /// Address media sockets bind.
    pub bind_ip: IpAddr,
    /// Address written into SDP and ICE candidates (public side of a NAT 1:1 mapping).
    pub advertised_ip: Option<IpAddr>,
    /// First port of the RTP range (even).
    pub port_min: u16,
    /// Last port of the RTP range.
    pub port_max: u16,
    /// Seconds without a packet before a leg is declared dead.
    pub media_timeout_secs: u64,
    /// A leg whose MOS estimate (E-model, 1 to 4.5) ends under this fires `call.quality_poor`.
    pub poor_mos: f64,
    /// Media worker threads (each drives many calls from one event loop and takes one port of
    /// the range for its browsers); 0: one per core.
    pub workers: usize,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            advertised_ip: None,
            port_min: 20000,
            port_max: 20999,
            media_timeout_secs: 30,
            poor_mos: 3.6,
            workers: 0,
        }
    }
}

/// `[demo_agent]`: the built-in echo agent for trying the gateway without a phone.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DemoAgentSection {
    /// Add agent "demo" to every queue: it answers, greets, and echoes the caller. Never in production.
    pub enabled: bool,
}

/// `[ice]`: the ICE servers the widget's browser uses (STUN, and TURN for visitors whose networks
/// block direct UDP). The gateway itself is ICE-lite and needs neither.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IceSection {
    /// STUN URLs (`stun:stun.example.com:3478`).
    pub stun: Vec<String>,
    /// TURN URLs (`turn:turn.example.com:3478?transport=udp`, `turns:turn.example.com:5349`).
    pub turn: Vec<String>,
    /// The TURN server's shared secret (coturn `static-auth-secret` with `use-auth-secret`), or
    /// `CLICKTOCALL_TURN_SECRET`. Each widget session gets its own time-limited credentials.
    pub turn_secret: String,
    /// How long those credentials stay valid.
    pub turn_ttl_secs: u64,
}

impl Default for IceSection {
    fn default() -> Self {
        Self {
            stun: Vec::new(),
            turn: Vec::new(),
            turn_secret: String::new(),
            turn_ttl_secs: 3600,
        }
    }
}

/// `[limits]`: overload protection. Beyond them new calls and sessions are refused cleanly (503 to
/// SIP, `busy` to the widget) while calls in progress are untouched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Calls at once, all kinds (0: no limit).
    pub max_calls: usize,
    /// Widget WebSocket sessions at once (0: no limit).
    pub max_ws_sessions: usize,
    /// New widget sockets a second from one visitor address, sustained (0: no limit); beyond it,
    /// `429` with `Retry-After`.
    pub ws_per_ip_per_sec: u32,
    /// New widget sockets one visitor address may open at once above that rate.
    pub ws_per_ip_burst: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_calls: 2000,
            max_ws_sessions: 10_000,
            ws_per_ip_per_sec: 20,
            ws_per_ip_burst: 60,
        }
    }
}

/// `[webhooks]`: call events POSTed to your systems.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksSection {
    /// `http://` or `https://` URLs that receive every call event.
    pub urls: Vec<String>,
    /// HMAC-SHA256 key of `X-Clicktocall-Signature` (or `CLICKTOCALL_WEBHOOK_SECRET`).
    pub secret: String,
    /// PEM file of the CA certificates `https://` receivers are verified against (empty: the
    /// system bundle, /etc/ssl/certs/ca-certificates.crt).
    pub ca_file: std::path::PathBuf,
}

/// `[records]`: call detail records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsSection {
    /// Where call detail records go: a SQLite file (`:memory:` keeps them only while running), or
    /// a `postgres://` URL shared by several gateway nodes.
    pub database: std::path::PathBuf,
}

impl Default for RecordsSection {
    fn default() -> Self {
        Self {
            database: "clicktocall.db".into(),
        }
    }
}

/// `[recording]`: where call recordings go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSection {
    /// Directory for `<call id>.wav` files (created when needed).
    pub directory: std::path::PathBuf,
    /// Keys an agent presses on the phone to pause a recording and, again, to resume it
    /// (`"*1"`). When set, agents' key presses are never passed on to the customer.
    pub pause_code: Option<String>,
    /// Recordings older than this many days are deleted (their records say when); 0 keeps them.
    pub retention_days: u64,
    /// Seconds a SIPREC recorder has to answer before the next of the queue's list is tried.
    pub siprec_timeout_secs: u64,
}

impl Default for RecordingSection {
    fn default() -> Self {
        RecordingSection {
            directory: "recordings".into(),
            pause_code: None,
            retention_days: 0,
            siprec_timeout_secs: 5,
        }
    }
}

/// `[context]`: how the page's context reaches the agent's phone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextSection {
    /// Context field → SIP header name (`name = "X-Customer-Name"`).
    pub headers: BTreeMap<String, String>,
    /// `Call-Info` screen-pop URL template, `{field}` placeholders (URL-encoded).
    pub screen_pop: Option<String>,
    /// From display-name template toward the agent (`"{name} (web)"`).
    pub display_name: Option<String>,
}

impl Default for ContextSection {
    fn default() -> Self {
        let headers = [
            ("name", "X-Customer-Name"),
            ("crm_id", "X-CRM-Id"),
            ("page", "X-Page"),
            ("language", "X-Language"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        ContextSection {
            headers,
            screen_pop: None,
            display_name: Some("{name}".into()),
        }
    }
}

/// `[[queues]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Unique name (`support`, `sales`).
    pub name: String,
    /// Human-readable name for announcements and the widget.
    pub display_name: Option<String>,
    /// External IVR mode: customers entering this queue are first bridged to this SIP URI; when it
    /// REFERs the call back to the gateway (`Refer-To: <sip:QUEUE@gateway>`), they enter that queue.
    pub external_ivr: Option<String>,
    /// `longest_idle`, `round_robin`, `ring_all`, `skills_based`.
    pub strategy: String,
    /// Seconds an agent rings before the next is tried.
    pub ring_timeout_secs: u64,
    /// After-call work seconds.
    pub wrap_up_secs: u64,
    /// Longest wait before `on_max_wait` (0 = no limit).
    pub max_wait_secs: u64,
    /// `wait`, `hangup` or `queue:NAME`.
    pub on_max_wait: String,
    /// When no agent of the queue is logged in: `wait`, `hangup` or `queue:NAME`.
    pub on_no_agents: String,
    /// Music-on-hold prompt name (looped).
    pub music: String,
    /// Seconds between position announcements (0 = never).
    pub announce_position_secs: u64,
    /// Extra SIP headers on every INVITE to this queue's agents.
    pub headers: BTreeMap<String, String>,
    /// Average handling time (seconds) for the estimated wait until real calls have been measured.
    pub average_handle_secs: u64,
    /// `normal` (one agent per call) or `conference` (`conference_agents` agents ring at once and
    /// each that answers joins the call; everybody hears everybody).
    pub mode: String,
    /// Agents a conference queue rings for each call (at least 2).
    pub conference_agents: usize,
    /// When the last agent leaves a call the customer is still on: `end` (the call ends, as a
    /// two-party call always did) or `requeue` (the customer waits in this queue again).
    pub after_last_agent: String,
    /// Recording: `never` (the default; the API may not start one either), `always` (from the
    /// first agent's answer) or `on_demand` (when the API asks).
    pub record: String,
    /// A prompt the customer hears after the queue's greeting, before any agent, when the queue
    /// records (`"recording_notice"`: your `<ivr.prompts_dir>/recording_notice.wav`).
    pub record_announcement: Option<String>,
    /// External recorders (SIPREC, RFC 7866) that receive this queue's recorded calls as well,
    /// tried in order: `["sip:srs@10.0.0.5", "sip:srs@10.0.0.6"]`.
    pub siprec: Vec<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            name: String::new(),
            display_name: None,
            external_ivr: None,
            strategy: "longest_idle".into(),
            ring_timeout_secs: 15,
            wrap_up_secs: 10,
            max_wait_secs: 0,
            on_max_wait: "hangup".into(),
            on_no_agents: "wait".into(),
            music: "moh".into(),
            announce_position_secs: 30,
            headers: BTreeMap::new(),
            average_handle_secs: 180,
            mode: "normal".into(),
            conference_agents: 2,
            after_last_agent: "end".into(),
            record: "never".into(),
            record_announcement: None,
            siprec: Vec::new(),
        }
    }
}

impl QueueConfig {
    /// The ACD's rules; errors name the field.
    pub fn rules(&self) -> Result<QueueRules, (&'static str, String)> {
        let strategy = match self.strategy.as_str() {
            "longest_idle" => Strategy::LongestIdle,
            "round_robin" => Strategy::RoundRobin,
            "ring_all" => Strategy::RingAll,
            "skills_based" => Strategy::SkillsBased,
            other => {
                return Err((
                    "strategy",
                    format!("{other:?}: use longest_idle, round_robin, ring_all or skills_based"),
                ))
            }
        };
        if self.ring_timeout_secs == 0 {
            return Err(("ring_timeout_secs", "must be above 0".into()));
        }
        let conference = match self.mode.as_str() {
            "normal" => 1,
            "conference" if (2..=16).contains(&self.conference_agents) => self.conference_agents,
            "conference" => {
                return Err((
                    "conference_agents",
                    format!("{}: use 2 to 16", self.conference_agents),
                ))
            }
            other => return Err(("mode", format!("{other:?}: use normal or conference"))),
        };
        if !matches!(self.after_last_agent.as_str(), "end" | "requeue") {
            return Err((
                "after_last_agent",
                format!("{:?}: use end or requeue", self.after_last_agent),
            ));
        }
        if crate::call::recording::Policy::parse(&self.record).is_none() {
            return Err((
                "record",
                format!("{:?}: use never, always or on_demand", self.record),
            ));
        }
        Ok(QueueRules {
            conference,
            strategy,
            ring_timeout: Duration::from_secs(self.ring_timeout_secs),
            wrap_up: Duration::from_secs(self.wrap_up_secs),
            max_wait: (self.max_wait_secs > 0).then(|| Duration::from_secs(self.max_wait_secs)),
            on_max_wait: overflow(&self.on_max_wait).map_err(|e| ("on_max_wait", e))?,
            on_no_agents: overflow(&self.on_no_agents).map_err(|e| ("on_no_agents", e))?,
        })
    }
}

fn overflow(s: &str) -> Result<Overflow, String> {
    match s {
        "wait" => Ok(Overflow::Wait),
        "hangup" => Ok(Overflow::HangUp),
        _ => match s.strip_prefix("queue:") {
            Some(q) if !q.is_empty() => Ok(Overflow::Queue(q.to_string())),
            _ => Err(format!("{s:?}: use wait, hangup or queue:NAME")),
        },
    }
}

impl super::Config {
    fn validate_ice(&self) -> Result<(), ConfigError> {
        let ice = &self.ice;
        let check = |key: &str, urls: &[String], schemes: &[&str]| {
            for (i, u) in urls.iter().enumerate() {
                let ok = schemes.iter().any(|s| {
                    u.strip_prefix(s)
                        .and_then(|r| r.strip_prefix(':'))
                        .is_some_and(|host| !host.is_empty())
                }) && !u.contains(|c: char| c.is_whitespace() || c.is_control());
                if !ok {
                    return Err(ConfigError::invalid(
                        format!("ice.{key}[{i}]"),
                        format!("{u:?} is not a {} URL", schemes.join("/")),
                    ));
                }
            }
            Ok(())
        };
        check("stun", &ice.stun, &["stun", "stuns"])?;
        check("turn", &ice.turn, &["turn", "turns"])?;
        if !ice.turn.is_empty() && ice.turn_secret.is_empty() {
            return Err(ConfigError::invalid(
                "ice.turn_secret",
                "TURN URLs need the TURN server's shared secret (or CLICKTOCALL_TURN_SECRET)",
            ));
        }
        if !(60..=86_400).contains(&ice.turn_ttl_secs) {
            return Err(ConfigError::invalid(
                "ice.turn_ttl_secs",
                "must be between 60 and 86400",
            ));
        }
        Ok(())
    }

    /// Call-control rules: ports, menus, queues, actions and prompts refer to things that exist.
    pub(super) fn validate_calls(&self) -> Result<(), ConfigError> {
        let m = &self.media;
        if m.port_min < 1024 || m.port_min >= m.port_max {
            return Err(ConfigError::invalid(
                "media.port_min",
                "the range must start at 1024 or above and below port_max",
            ));
        }
        if m.workers > 256 {
            return Err(ConfigError::invalid(
                "media.workers",
                "at most 256 media workers (0: one per core)",
            ));
        }
        if let Some(code) = &self.recording.pause_code {
            let ok =
                (1..=4).contains(&code.len()) && code.chars().all(|c| "0123456789*#".contains(c));
            if !ok {
                return Err(ConfigError::invalid(
                    "recording.pause_code",
                    format!("{code:?}: 1 to 4 keys of 0-9 * #"),
                ));
            }
        }
        if !(1.0..=4.5).contains(&m.poor_mos) {
            return Err(ConfigError::invalid(
                "media.poor_mos",
                "a MOS from 1.0 to 4.5 (3.6 is where users start to complain)",
            ));
        }
        for lang in self.ivr.language_prompts.keys() {
            let ok = (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_lowercase());
            if !ok {
                return Err(ConfigError::invalid(
                    format!("ivr.language_prompts.{lang}"),
                    "keys are two- or three-letter lowercase language codes (de, fr)",
                ));
            }
        }
        let queue_exists = |q: &str| self.queues.iter().any(|c| c.name == q);
        let menus = self.ivr.menus(&self.queues)?;
        if !menus.contains_key(&self.ivr.start) {
            return Err(ConfigError::invalid(
                "ivr.start",
                format!("no menu named {:?}", self.ivr.start),
            ));
        }
        let check_action = |key: String, a: &MenuAction| match a {
            MenuAction::Queue { queue, .. } if !queue_exists(queue) => Err(ConfigError::invalid(
                key,
                format!("no queue named {queue:?}"),
            )),
            MenuAction::Submenu(name) if !menus.contains_key(name) => {
                Err(ConfigError::invalid(key, format!("no menu named {name:?}")))
            }
            _ => Ok(()),
        };
        for (i, menu) in self.ivr.effective_menus(&self.queues).iter().enumerate() {
            let parsed = &menus[&menu.name];
            for (d, action) in &parsed.options {
                check_action(format!("ivr.menus[{i}].options.{d}"), action)?;
            }
            check_action(format!("ivr.menus[{i}].on_exhausted"), &parsed.on_exhausted)?;
        }
        for (i, q) in self.queues.iter().enumerate() {
            let rules = q
                .rules()
                .map_err(|(k, e)| ConfigError::invalid(format!("queues[{i}].{k}"), e))?;
            for (k, o) in [
                ("on_max_wait", &rules.on_max_wait),
                ("on_no_agents", &rules.on_no_agents),
            ] {
                if let Overflow::Queue(target) = o {
                    if !queue_exists(target) || target == &q.name {
                        return Err(ConfigError::invalid(
                            format!("queues[{i}].{k}"),
                            format!("{target:?} is not another configured queue"),
                        ));
                    }
                }
            }
            for name in q.headers.keys() {
                if !super::validate::is_token(name) {
                    return Err(ConfigError::invalid(
                        format!("queues[{i}].headers"),
                        format!("{name:?} is not a header name"),
                    ));
                }
            }
            if let Some(uri) = &q.external_ivr {
                crate::sip::uri::parse_sip_uri(uri)
                    .map_err(|e| ConfigError::invalid(format!("queues[{i}].external_ivr"), e))?;
            }
            for (j, uri) in q.siprec.iter().enumerate() {
                crate::sip::uri::parse_sip_uri(uri)
                    .map_err(|e| ConfigError::invalid(format!("queues[{i}].siprec[{j}]"), e))?;
            }
            if !q.siprec.is_empty() && q.record == "never" {
                return Err(ConfigError::invalid(
                    format!("queues[{i}].siprec"),
                    "recorders get the queue's recorded calls: set record = \"always\" or \"on_demand\"",
                ));
            }
        }
        self.validate_ice()?;
        for (i, u) in self.webhooks.urls.iter().enumerate() {
            crate::records::webhooks::parse_url(u)
                .map_err(|e| ConfigError::invalid(format!("webhooks.urls[{i}]"), e))?;
        }
        if !self.webhooks.urls.is_empty() {
            if self.webhooks.secret.is_empty() {
                return Err(ConfigError::invalid(
                    "webhooks.secret",
                    "webhooks are signed: set a secret (or CLICKTOCALL_WEBHOOK_SECRET)",
                ));
            }
            if self.records.database.as_os_str() == ":memory:" {
                return Err(ConfigError::invalid(
                    "records.database",
                    "webhooks need a database file (their outbox must survive restarts)",
                ));
            }
            if crate::storage::Database::is_postgres(&self.records.database) {
                return Err(ConfigError::invalid(
                    "records.database",
                    "webhooks need a SQLite records database for now (their outbox is not kept in PostgreSQL yet)",
                ));
            }
        }
        for (field, header) in &self.context.headers {
            if !super::validate::is_token(header) {
                return Err(ConfigError::invalid(
                    format!("context.headers.{field}"),
                    format!("{header:?} is not a header name"),
                ));
            }
        }
        for (i, t) in self.trunks.iter().enumerate() {
            if let Some(menu) = &t.menu {
                if !menus.contains_key(menu) {
                    return Err(ConfigError::invalid(
                        format!("trunks[{i}].menu"),
                        format!("no menu named {menu:?}"),
                    ));
                }
            }
            if let Some(queue) = &t.queue {
                if !queue_exists(queue) {
                    return Err(ConfigError::invalid(
                        format!("trunks[{i}].queue"),
                        format!("no queue named {queue:?}"),
                    ));
                }
                if t.menu.is_some() {
                    return Err(ConfigError::invalid(
                        format!("trunks[{i}].queue"),
                        "set menu or queue, not both",
                    ));
                }
            }
        }
        crate::call::prompts::PromptLibrary::load(self)
            .map(|_| ())
            .map_err(|e| ConfigError::invalid(e.key, e.reason))
    }
}
