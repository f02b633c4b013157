//! `[[supervisors]]` and `[supervision]`: who may listen in on (and coach, barge into, take over)
//! the calls of which queues, and how a supervisor's phone switches modes.

use super::validate::is_token;
use super::{env, Config, ConfigError};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// `[[supervisors]]`: a supervisor, reached like an agent (registered phone or static URI).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    /// Unique id (not an agent's); also the SIP user name the phone registers with.
    pub id: String,
    /// Digest password (prefer `CLICKTOCALL_SUPERVISOR_<ID>_PASSWORD`).
    #[serde(default)]
    pub password: Option<String>,
    /// Static SIP URI instead of registration.
    #[serde(default)]
    pub uri: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The queues whose calls this supervisor may join.
    #[serde(default)]
    pub queues: Vec<String>,
}

/// `[supervision]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSection {
    /// Keys a supervisor presses on the phone to switch modes (like Asterisk's ChanSpy):
    /// `{ "4" = "monitor", "5" = "whisper", "6" = "barge" }` by default; `takeover` may be added.
    pub keys: BTreeMap<String, String>,
    /// A prompt only the supervisor hears on joining (none by default: no beep for anybody).
    pub join_prompt: Option<String>,
    /// What a supervisor dials before an agent id or a call id to listen in (`*55`); empty: off.
    pub feature_code: String,
}

impl Default for SupervisionSection {
    fn default() -> Self {
        SupervisionSection {
            keys: [("4", "monitor"), ("5", "whisper"), ("6", "barge")]
                .into_iter()
                .map(|(k, m)| (k.to_string(), m.to_string()))
                .collect(),
            join_prompt: None,
            feature_code: "*55".into(),
        }
    }
}

/// The four ways a supervisor is in a call.
pub const MODES: [&str; 4] = ["monitor", "whisper", "barge", "takeover"];

impl Config {
    /// The supervisor `id`, if configured.
    pub fn supervisor(&self, id: &str) -> Option<&SupervisorConfig> {
        self.supervisors.iter().find(|s| s.id == id)
    }

    /// The digest password of a SIP user of this gateway: an agent or a supervisor.
    pub fn user_password(&self, user: &str) -> Option<String> {
        self.agent(user)
            .and_then(|a| a.password.clone())
            .or_else(|| self.supervisor(user).and_then(|s| s.password.clone()))
    }

    /// Supervisors: unique ids that are no agent's, a way to reach each, known queues, mode keys.
    pub(super) fn validate_supervision(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for (i, s) in self.supervisors.iter().enumerate() {
            let key = |k: &str| format!("supervisors[{i}].{k}");
            if !is_token(&s.id) || self.agent(&s.id).is_some() || !ids.insert(s.id.as_str()) {
                return Err(ConfigError::invalid(
                    key("id"),
                    format!(
                        "{:?}: a SIP user token, unique among agents and supervisors",
                        s.id
                    ),
                ));
            }
            match (&s.password, &s.uri) {
                (None, None) => {
                    return Err(ConfigError::invalid(
                        key("password"),
                        format!(
                            "a supervisor needs a password (or CLICKTOCALL_SUPERVISOR_{}_PASSWORD) or a static uri",
                            env::var_part(&s.id)
                        ),
                    ))
                }
                (_, Some(uri)) => {
                    crate::sip::uri::parse_sip_uri(uri).map_err(|e| ConfigError::invalid(key("uri"), e))?;
                }
                _ => {}
            }
            for (j, q) in s.queues.iter().enumerate() {
                if !self.queues.iter().any(|c| &c.name == q) {
                    return Err(ConfigError::invalid(
                        format!("supervisors[{i}].queues[{j}]"),
                        format!("no queue named {q:?}"),
                    ));
                }
            }
        }
        let code = &self.supervision.feature_code;
        if code.len() > 4 || !code.chars().all(|c| "0123456789*#".contains(c)) {
            return Err(ConfigError::invalid(
                "supervision.feature_code",
                format!("{code:?}: up to 4 keys of 0-9 * # (empty: off)"),
            ));
        }
        for (k, mode) in &self.supervision.keys {
            let digit = k.len() == 1 && k.chars().all(|c| "0123456789*#".contains(c));
            if !digit || !MODES.contains(&mode.as_str()) {
                return Err(ConfigError::invalid(
                    format!("supervision.keys.{k}"),
                    format!("one key (0-9 * #) to one of {}", MODES.join(", ")),
                ));
            }
        }
        Ok(())
    }
}
