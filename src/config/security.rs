//! Who may do what, and what the public internet may throw at the gateway: the REST API's keys and
//! their scopes (`[api]`, `[[api.keys]]`), and the SIP flood defence (`[sip.flood]`).

use super::{Config, ConfigError};
use crate::http::keyring::Scope;
use serde::Deserialize;

/// `[api]`: the REST API.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// The one all-powerful key (or `CLICKTOCALL_API_KEY`): a key with the `admin` scope named
    /// `api.key`. Empty, and no `[[api.keys]]`: the API is off (401 to all).
    pub key: String,
    /// Named keys, each with the scopes it may use.
    pub keys: Vec<ApiKeyConfig>,
}

/// `[[api.keys]]`: one named key and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The name audit lines carry (`crm`, `wallboard`); letters, digits, `-` and `_`.
    pub name: String,
    /// The secret itself, at least 16 characters (or `CLICKTOCALL_API_KEY_<NAME>`).
    #[serde(default)]
    pub key: String,
    /// What it may do: `records:read`, `calls:read`, `calls:control`, ... or `admin`.
    pub scopes: Vec<String>,
}

/// `[sip.flood]`: per source address, a token bucket on SIP messages and a ban list. The defaults
/// are far above what an honest phone or trunk sends; trunks' source networks and registered
/// agents' addresses are never limited or banned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodSection {
    /// Off: no limits, no bans.
    pub enabled: bool,
    /// Messages per second a source may send, sustained.
    pub rate_per_sec: u32,
    /// Messages a source may send at once above the rate; a source that empties its bucket is
    /// banned.
    pub burst: u32,
    /// Failed digest authentications (wrong password, unknown user) from one source within
    /// `auth_window_secs` that get it banned.
    pub auth_failures: u32,
    /// The window failed authentications are counted over.
    pub auth_window_secs: u64,
    /// How long a ban lasts; its messages are dropped unanswered meanwhile.
    pub ban_secs: u64,
    /// Sources tracked at once (memory bound); beyond it, new sources are served untracked.
    pub max_sources: usize,
}

impl Default for FloodSection {
    fn default() -> Self {
        FloodSection {
            enabled: true,
            rate_per_sec: 100,
            burst: 400,
            auth_failures: 20,
            auth_window_secs: 60,
            ban_secs: 600,
            max_sources: 100_000,
        }
    }
}

impl Config {
    pub(super) fn validate_security(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for (i, k) in self.api.keys.iter().enumerate() {
            let at = |field: &str| format!("api.keys[{i}].{field}");
            let name_ok = !k.name.is_empty()
                && k.name.len() <= 64
                && k.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                return Err(ConfigError::invalid(
                    at("name"),
                    format!("{:?}: 1 to 64 letters, digits, - or _", k.name),
                ));
            }
            if !names.insert(k.name.as_str()) {
                return Err(ConfigError::invalid(
                    at("name"),
                    format!("{:?} is listed twice", k.name),
                ));
            }
            if k.key.len() < 16 || k.key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::invalid(
                    at("key"),
                    format!(
                        "at least 16 characters without spaces (or CLICKTOCALL_API_KEY_{})",
                        super::env::var_part(&k.name)
                    ),
                ));
            }
            if k.scopes.is_empty() {
                return Err(ConfigError::invalid(
                    at("scopes"),
                    "list at least one scope",
                ));
            }
            for s in &k.scopes {
                if Scope::parse(s).is_none() {
                    return Err(ConfigError::invalid(
                        at("scopes"),
                        format!("{s:?} is no scope; known: {}", Scope::names()),
                    ));
                }
            }
        }
        if self.api.keys.iter().any(|k| k.key == self.api.key) {
            return Err(ConfigError::invalid(
                "api.keys",
                "a named key is the same as api.key: give each key its own secret",
            ));
        }
        let f = &self.sip.flood;
        if f.enabled && (f.rate_per_sec == 0 || f.burst == 0 || f.auth_failures == 0) {
            return Err(ConfigError::invalid(
                "sip.flood",
                "rate_per_sec, burst and auth_failures must be above 0 (or enabled = false)",
            ));
        }
        if f.enabled && (f.ban_secs == 0 || f.auth_window_secs == 0 || f.max_sources == 0) {
            return Err(ConfigError::invalid(
                "sip.flood",
                "ban_secs, auth_window_secs and max_sources must be above 0 (or enabled = false)",
            ));
        }
        Ok(())
    }
}
