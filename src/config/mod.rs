//! Configuration: one TOML file, an embedded demo default, `CLICKTOCALL_*` environment overrides for
//! secrets, and validation that names the offending key.
//!
//! Loading is three steps, each its own function so tests can drive them: [`Config::from_toml`] (syntax,
//! types and unknown keys, reported with the dotted key path), [`Config::apply_env`] (secrets from the
//! environment) and [`Config::validate`] (cross-field rules and files that must be readable).

mod callback;
mod calls;
mod env;
mod ivr;
mod net;
mod security;
mod supervision;
mod validate;

pub use callback::{CallbackSection, SiteConfig, UnsignedPolicy, WidgetSection};
pub use calls::{
    ContextSection, DemoAgentSection, IceSection, LimitsSection, MediaSection, QueueConfig,
    RecordingSection, RecordsSection, WebhooksSection,
};
pub use ivr::{parse_action, IvrSection, MenuSection};
pub use net::{Cidr, CidrParseError, ClusterSection};
pub use security::{ApiKeyConfig, ApiSection, FloodSection};
pub use supervision::{SupervisionSection, SupervisorConfig, MODES};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The configuration used when `clicktocall serve` is given no file: a local demo on 127.0.0.1.
pub const EMBEDDED_DEFAULT: &str = include_str!("demo.toml");

/// A configuration problem, always naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// TOML syntax error, wrong type or unknown key.
    #[error("{key}: {message}")]
    Parse {
        /// Dotted path of the key (`sip.listen_udp`), or `<document>` for a syntax error.
        key: String,
        /// What the parser said, including the line and column.
        message: String,
    },
    /// A value that parsed but makes no sense (bad address, missing file, duplicate name...).
    #[error("{key}: {reason}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// Why the value is rejected.
        reason: String,
    },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole gateway configuration. Every key has a default; see `clicktocall.example.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server: demo page, widget, WebSocket, REST.
    pub http: HttpConfig,
    /// SIP endpoint: listeners, advertised address, message limits.
    pub sip: SipConfig,
    /// Agent registrar (RFC 3261 §10).
    pub registrar: RegistrarConfig,
    /// SIP trunks: where customers' calls come from and callbacks go to.
    pub trunks: Vec<TrunkConfig>,
    /// Queues customers wait in.
    pub queues: Vec<QueueConfig>,
    /// Agents who answer calls.
    pub agents: Vec<AgentConfig>,
    /// Supervisors who listen in on, coach, barge into and take over their queues' calls.
    pub supervisors: Vec<SupervisorConfig>,
    /// How supervisors' phones switch modes.
    pub supervision: SupervisionSection,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Logging.
    pub log: LogConfig,
    /// Media ports.
    pub media: MediaSection,
    /// The IVR menus.
    pub ivr: IvrSection,
    /// Context → SIP headers toward agents.
    pub context: ContextSection,
    /// REST API.
    pub api: ApiSection,
    /// The built-in demo agent.
    pub demo_agent: DemoAgentSection,
    /// STUN/TURN servers for the widget's browser.
    pub ice: IceSection,
    /// Call me back.
    pub callback: CallbackSection,
    /// Websites allowed to embed the widget (none: any origin, unsigned context).
    pub sites: Vec<SiteConfig>,
    /// The widget's socket: how long a dropped one may come back.
    pub widget: WidgetSection,
    /// Call detail records.
    pub records: RecordsSection,
    /// Call recordings.
    pub recording: RecordingSection,
    /// Overload protection.
    pub limits: LimitsSection,
    /// Call events to your systems.
    pub webhooks: WebhooksSection,
    /// This node among several.
    pub cluster: ClusterSection,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Origins (scheme://host[:port]) allowed to embed the widget (CORS). The gateway's own origin is
    /// always allowed.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Load balancers / reverse proxies in front of the gateway (CIDRs) whose `X-Forwarded-For`
    /// names the visitor (for per-IP limits and logs). Empty: the socket's address is the visitor's.
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            cors_origins: Vec::new(),
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// UDP listener address; `""` disables UDP.
    #[serde(deserialize_with = "net::optional_addr")]
    pub listen_udp: Option<SocketAddr>,
    /// TCP listener address; `""` disables TCP.
    #[serde(deserialize_with = "net::optional_addr")]
    pub listen_tcp: Option<SocketAddr>,
    /// TLS listener address (needs `tls_cert` and `tls_key`); off unless set.
    #[serde(deserialize_with = "net::optional_addr")]
    pub listen_tls: Option<SocketAddr>,
    /// PEM certificate for the TLS listener.
    pub tls_cert: Option<PathBuf>,
    /// PEM key for the TLS listener.
    pub tls_key: Option<PathBuf>,
    /// Public IP address written into Via/Contact/Call-ID instead of the bound address (NAT 1:1).
    pub advertised_host: Option<String>,
    /// Port written into Via/Contact instead of the bound port.
    pub advertised_port: Option<u16>,
    /// User-Agent and Server header value.
    pub user_agent: String,
    /// Digest realm for agents.
    pub realm: String,
    /// Largest SIP message accepted over UDP, in bytes (at most 8192); larger ones are answered 513.
    pub max_message_bytes: usize,
    /// Answer OPTIONS from any source (capability query and keepalive); false applies the ACL.
    pub options_from_anyone: bool,
    /// RFC 3261 timer T1 (round-trip estimate) in milliseconds; UDP retransmissions start at T1 and a
    /// transaction gives up after 64*T1 (Timer B/F: 32 s at the default 500).
    pub timer_t1_ms: u64,
    /// Flood defence: per-source rate limits and bans (`[sip.flood]`).
    pub flood: FloodSection,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen_udp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            listen_tcp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            listen_tls: None,
            tls_cert: None,
            tls_key: None,
            advertised_host: None,
            advertised_port: None,
            user_agent: format!("clicktocall/{}", env!("CARGO_PKG_VERSION")),
            realm: "clicktocall".into(),
            max_message_bytes: 8192,
            options_from_anyone: true,
            timer_t1_ms: 500,
            flood: FloodSection::default(),
        }
    }
}

/// `[registrar]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    /// Shortest registration accepted (shorter ones get 423 with Min-Expires).
    pub min_expires: u32,
    /// Longest registration granted (longer requests are cut to this).
    pub max_expires: u32,
    /// Expiry used when the agent asks for none.
    pub default_expires: u32,
    /// Seconds between OPTIONS keepalives to each registered contact; 0 disables them.
    pub keepalive_interval_secs: u64,
    /// Consecutive unanswered keepalives after which a contact is dropped.
    pub keepalive_max_failures: u32,
    /// How long a digest nonce stays valid, in seconds.
    pub nonce_ttl_secs: u64,
    /// Secret for stateless nonces; random per start when empty (`CLICKTOCALL_NONCE_SECRET`).
    pub nonce_secret: String,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            keepalive_interval_secs: 30,
            keepalive_max_failures: 3,
            nonce_ttl_secs: 300,
            nonce_secret: String::new(),
        }
    }
}

/// `[[trunks]]`: a SIP carrier or PBX.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Unique name, used in logs and in `CLICKTOCALL_TRUNK_<NAME>_PASSWORD`.
    pub name: String,
    /// Outbound proxy every request to this trunk is sent through (`sip:host:port;transport=udp`).
    pub proxy: String,
    /// Domain used in request URIs and From headers toward the trunk; the proxy host when empty.
    #[serde(default)]
    pub domain: Option<String>,
    /// Digest user name, when the trunk challenges.
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password (prefer the environment override).
    #[serde(default)]
    pub password: Option<String>,
    /// Register to the trunk (needs `username`).
    #[serde(default)]
    pub register: bool,
    /// Registration expiry asked of the trunk.
    #[serde(default = "default_trunk_expires")]
    pub register_expires: u32,
    /// Source networks whose requests are accepted as coming from this trunk (the ACL).
    #[serde(default)]
    pub sources: Vec<Cidr>,
    /// Called numbers (request-URI user parts) this trunk delivers to the gateway.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Headers copied from this trunk's INVITEs to the agent's INVITE (UCMA's pass-through headers).
    #[serde(default)]
    pub pass_through_headers: Vec<String>,
    /// The IVR menu this trunk's callers start in (`ivr.start` when unset).
    #[serde(default)]
    pub menu: Option<String>,
    /// A queue this trunk's callers go straight into, skipping the IVR (a number that is already
    /// the queue's, or a carrier that ran its own menu). Exclusive with `menu`.
    #[serde(default)]
    pub queue: Option<String>,
    /// Offer reliable provisional responses (RFC 3262 `Supported: 100rel`) on calls we place, and
    /// PRACK them when the trunk requires it.
    #[serde(default = "yes")]
    pub prack: bool,
    /// How numbers are written in the INVITEs we send (callbacks): `e164` (`+15550102000`, the
    /// default), `digits` (no `+`), or `national` (as dialled at home, with the `[callback]` plan's
    /// national and international prefixes).
    #[serde(default)]
    pub dial_format: crate::callback::number::DialFormat,
    /// A carrier's tech prefix put before every number dialled (`""` by default).
    #[serde(default)]
    pub dial_prefix: String,
}

fn yes() -> bool {
    true
}

fn default_trunk_expires() -> u32 {
    600
}

/// `[[agents]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Unique id; also the SIP user name the agent registers with.
    pub id: String,
    /// Digest password for REGISTER (prefer `CLICKTOCALL_AGENT_<ID>_PASSWORD`).
    #[serde(default)]
    pub password: Option<String>,
    /// Static SIP URI instead of registration (an extension behind a PBX).
    #[serde(default)]
    pub uri: Option<String>,
    /// Queues this agent serves.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Skills with levels (1-100) for skills-based queues: `skills = { billing = 80 }`.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
}

/// `[shutdown]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Seconds calls in progress may continue after SIGTERM before they are ended.
    pub grace_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_secs: 30 }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directive (`info`, `clicktocall=debug,rsipstack=info`); `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info,rsipstack=warn".into(),
        }
    }
}

impl Config {
    /// The embedded demo configuration (what runs with no file).
    pub fn embedded_default() -> Config {
        // The embedded file is checked by a unit test, so this cannot fail in a released binary.
        Config::from_toml(EMBEDDED_DEFAULT).expect("embedded default config is valid (unit-tested)")
    }

    /// Parses TOML text; errors name the key path.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Parse {
            key: "<document>".into(),
            message: e.to_string().trim_end().to_string(),
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                key: if key == "." { "<document>".into() } else { key },
                message: e.into_inner().to_string().trim_end().to_string(),
            }
        })
    }

    /// Reads, parses, applies the environment and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Config::from_toml(&text)?;
        cfg.apply_env(std::env::vars())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads `path`, or the embedded default when `None`.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => {
                let mut cfg = Config::embedded_default();
                cfg.apply_env(std::env::vars())?;
                cfg.validate()?;
                Ok(cfg)
            }
        }
    }

    /// The agent with this SIP user name, if configured.
    pub fn agent(&self, id: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// Applies `CLICKTOCALL_*` overrides from `vars` (see `env.rs` for the list).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        env::apply(self, vars)
    }
}

#[cfg(test)]
mod tests;
