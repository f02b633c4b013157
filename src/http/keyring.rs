//! The REST API's keys and what each may do. Sans-IO: the configured keys in, a verdict per request
//! out. Keys are kept only as SHA-256 digests and a presented key is compared with every one of them
//! in constant time, so neither memory dumps nor response timing give a key away.

use crate::config::ApiSection;
use std::fmt;

/// One thing a key may do. Each route under `/api` needs exactly one (see `super::routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read agents, their states, and queues (a wallboard).
    AgentsRead,
    /// Set an agent's state (a workforce tool).
    AgentsWrite,
    /// Read running calls.
    CallsRead,
    /// Hang up, hold, transfer, add and remove parties, play prompts, consult, start/stop recording.
    CallsControl,
    /// Put a supervisor into a call (listen, whisper, barge, take over).
    CallsSupervise,
    /// Download call recordings.
    RecordingsRead,
    /// Read call detail records (a CRM, a reporting job).
    RecordsRead,
    /// Read callbacks.
    CallbacksRead,
    /// Schedule and cancel callbacks (a site's backend).
    CallbacksWrite,
    /// Everything, including the SIP ban list.
    Admin,
}

impl Scope {
    /// Every scope, in the order of the docs.
    pub const ALL: [Scope; 10] = [
        Scope::AgentsRead,
        Scope::AgentsWrite,
        Scope::CallsRead,
        Scope::CallsControl,
        Scope::CallsSupervise,
        Scope::RecordingsRead,
        Scope::RecordsRead,
        Scope::CallbacksRead,
        Scope::CallbacksWrite,
        Scope::Admin,
    ];

    /// The name used in the config and in error messages (`calls:control`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AgentsRead => "agents:read",
            Scope::AgentsWrite => "agents:write",
            Scope::CallsRead => "calls:read",
            Scope::CallsControl => "calls:control",
            Scope::CallsSupervise => "calls:supervise",
            Scope::RecordingsRead => "recordings:read",
            Scope::RecordsRead => "records:read",
            Scope::CallbacksRead => "callbacks:read",
            Scope::CallbacksWrite => "callbacks:write",
            Scope::Admin => "admin",
        }
    }

    /// The scope of that name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// All names, comma-separated, for error messages.
    pub fn names() -> String {
        Scope::ALL.map(Scope::as_str).join(", ")
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request may not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No key is configured at all: the API is off (401).
    Disabled,
    /// No key, or one that matches none configured (401).
    Unauthenticated,
    /// A known key without the scope the route needs (403).
    Forbidden {
        /// The key's name.
        key: String,
        /// The scope it lacks.
        scope: Scope,
    },
}

struct Entry {
    name: String,
    digest: [u8; 32],
    scopes: u16,
}

/// The configured keys, hashed.
pub struct Keyring {
    entries: Vec<Entry>,
}

fn digest(key: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Keyring {
    /// The keys of `[api]`: `api.key` as an `admin` key named `api.key`, then `[[api.keys]]`
    /// (validated: unknown scope names cannot occur; one would be ignored).
    pub fn new(api: &ApiSection) -> Keyring {
        let mut entries = Vec::new();
        if !api.key.is_empty() {
            entries.push(Entry {
                name: "api.key".into(),
                digest: digest(&api.key),
                scopes: Scope::Admin.bit(),
            });
        }
        for k in &api.keys {
            let scopes = k
                .scopes
                .iter()
                .filter_map(|s| Scope::parse(s))
                .fold(0, |acc, s| acc | s.bit());
            entries.push(Entry {
                name: k.name.clone(),
                digest: digest(&k.key),
                scopes,
            });
        }
        Keyring { entries }
    }

    /// The name of the key `presented` when it may use `scope`. Every entry is compared, in
    /// constant time, whatever matches first.
    pub fn check(&self, presented: Option<&str>, scope: Scope) -> Result<&str, Denied> {
        if self.entries.is_empty() {
            return Err(Denied::Disabled);
        }
        let Some(presented) = presented else {
            return Err(Denied::Unauthenticated);
        };
        let d = digest(presented);
        let mut found = None;
        for e in &self.entries {
            if crate::secret::same_bytes(&e.digest, &d) && found.is_none() {
                found = Some(e);
            }
        }
        let e = found.ok_or(Denied::Unauthenticated)?;
        if e.scopes & (scope.bit() | Scope::Admin.bit()) != 0 {
            Ok(&e.name)
        } else {
            Err(Denied::Forbidden {
                key: e.name.clone(),
                scope,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    fn ring() -> Keyring {
        Keyring::new(&ApiSection {
            key: "legacy-admin".into(),
            keys: vec![
                ApiKeyConfig {
                    name: "crm".into(),
                    key: "crm-key-0123456789".into(),
                    scopes: vec!["records:read".into(), "calls:read".into()],
                },
                ApiKeyConfig {
                    name: "ops".into(),
                    key: "ops-key-0123456789".into(),
                    scopes: vec!["admin".into()],
                },
            ],
        })
    }

    #[test]
    fn a_key_may_use_its_scopes_and_admin_may_use_all() {
        let r = ring();
        assert_eq!(
            r.check(Some("crm-key-0123456789"), Scope::RecordsRead),
            Ok("crm")
        );
        assert_eq!(
            r.check(Some("crm-key-0123456789"), Scope::CallsSupervise),
            Err(Denied::Forbidden {
                key: "crm".into(),
                scope: Scope::CallsSupervise
            })
        );
        for s in Scope::ALL {
            assert_eq!(r.check(Some("ops-key-0123456789"), s), Ok("ops"));
            assert_eq!(r.check(Some("legacy-admin"), s), Ok("api.key"));
        }
    }

    #[test]
    fn unknown_missing_and_no_keys_are_told_apart() {
        let r = ring();
        assert_eq!(
            r.check(Some("crm-key-012345678"), Scope::RecordsRead),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            r.check(None, Scope::RecordsRead),
            Err(Denied::Unauthenticated)
        );
        let off = Keyring::new(&ApiSection::default());
        assert_eq!(
            off.check(Some("anything"), Scope::Admin),
            Err(Denied::Disabled)
        );
    }

    #[test]
    fn scope_names_round_trip() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("calls:write"), None);
    }
}
