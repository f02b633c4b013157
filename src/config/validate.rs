//! Cross-field rules of the configuration, each error naming its key: files readable, pairs
//! complete, names and origins well formed, queues and agents consistent.

use super::{env, Config, ConfigError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

impl Config {
    /// Checks cross-field rules and that every file named is readable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_http()?;
        self.validate_sip()?;
        self.validate_registrar()?;
        self.validate_trunks()?;
        self.validate_queues_and_agents()?;
        self.validate_calls()?;
        self.validate_supervision()?;
        self.validate_callback()?;
        self.validate_security()?;
        self.validate_cluster()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.cluster;
        if c.node_id > crate::call::id::MAX_NODE {
            return Err(ConfigError::invalid(
                "cluster.node_id",
                format!("{} is over {}", c.node_id, crate::call::id::MAX_NODE),
            ));
        }
        if let Some(url) = &c.redis {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::invalid(
                    "cluster.redis",
                    format!("{url:?} is not a URL like redis://127.0.0.1:6379"),
                ));
            }
        }
        if let Some(url) = &c.http_url {
            if !is_origin(url) {
                return Err(ConfigError::invalid(
                    "cluster.http_url",
                    format!("{url:?} is not a base URL like http://10.0.0.11:8080"),
                ));
            }
        }
        if !(1..=300).contains(&c.node_timeout_secs) {
            return Err(ConfigError::invalid(
                "cluster.node_timeout_secs",
                "must be 1 to 300",
            ));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        check_pair("http", &self.http.tls_cert, &self.http.tls_key)?;
        for (i, origin) in self.http.cors_origins.iter().enumerate() {
            if !is_origin(origin) {
                return Err(ConfigError::invalid(
                    format!("http.cors_origins[{i}]"),
                    format!("{origin:?} is not an origin like https://shop.example.com"),
                ));
            }
        }
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                "http.max_body_bytes",
                "must be at least 1024",
            ));
        }
        Ok(())
    }

    fn validate_sip(&self) -> Result<(), ConfigError> {
        let s = &self.sip;
        if s.listen_udp.is_none() && s.listen_tcp.is_none() && s.listen_tls.is_none() {
            return Err(ConfigError::invalid(
                "sip.listen_udp",
                "at least one of listen_udp, listen_tcp, listen_tls is needed",
            ));
        }
        check_pair("sip", &s.tls_cert, &s.tls_key)?;
        if s.listen_tls.is_some() && s.tls_cert.is_none() {
            return Err(ConfigError::invalid(
                "sip.tls_cert",
                "listen_tls needs tls_cert and tls_key",
            ));
        }
        if let Some(host) = &s.advertised_host {
            if host.parse::<std::net::IpAddr>().is_err() {
                return Err(ConfigError::invalid(
                    "sip.advertised_host",
                    format!(
                        "{host:?} is not an IP address (the public address of a NAT 1:1 mapping)"
                    ),
                ));
            }
        }
        if !(1500..=8192).contains(&s.max_message_bytes) {
            return Err(ConfigError::invalid(
                "sip.max_message_bytes",
                "must be between 1500 and 8192 (the SIP stack's UDP buffer)",
            ));
        }
        if !is_token(&s.realm) && !s.realm.chars().all(|c| c.is_ascii_graphic() && c != '"') {
            return Err(ConfigError::invalid(
                "sip.realm",
                "must be printable ASCII without quotes",
            ));
        }
        if !(10..=5000).contains(&s.timer_t1_ms) {
            return Err(ConfigError::invalid(
                "sip.timer_t1_ms",
                "must be between 10 and 5000",
            ));
        }
        if s.user_agent.chars().any(|c| c.is_control()) {
            return Err(ConfigError::invalid(
                "sip.user_agent",
                "must not contain control characters",
            ));
        }
        Ok(())
    }

    fn validate_registrar(&self) -> Result<(), ConfigError> {
        let r = &self.registrar;
        if r.min_expires > r.max_expires {
            return Err(ConfigError::invalid(
                "registrar.min_expires",
                format!("{} is above max_expires {}", r.min_expires, r.max_expires),
            ));
        }
        if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
            return Err(ConfigError::invalid(
                "registrar.default_expires",
                "must lie between min_expires and max_expires",
            ));
        }
        if r.nonce_ttl_secs == 0 {
            return Err(ConfigError::invalid(
                "registrar.nonce_ttl_secs",
                "must be above 0",
            ));
        }
        Ok(())
    }

    fn validate_trunks(&self) -> Result<(), ConfigError> {
        let mut names = BTreeSet::new();
        for (i, t) in self.trunks.iter().enumerate() {
            let key = |k: &str| format!("trunks[{i}].{k}");
            if !is_name(&t.name) {
                return Err(ConfigError::invalid(
                    key("name"),
                    "use letters, digits, '-' and '_'",
                ));
            }
            if !names.insert(t.name.to_ascii_lowercase()) {
                return Err(ConfigError::invalid(
                    key("name"),
                    format!("duplicate trunk {:?}", t.name),
                ));
            }
            crate::sip::uri::parse_proxy(&t.proxy)
                .map_err(|e| ConfigError::invalid(key("proxy"), e))?;
            if t.register && t.username.is_none() {
                return Err(ConfigError::invalid(
                    key("username"),
                    "register = true needs a username",
                ));
            }
            if t.dial_prefix.len() > 16
                || !t
                    .dial_prefix
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                return Err(ConfigError::invalid(
                    key("dial_prefix"),
                    "up to 16 of 0-9, '*' and '#'",
                ));
            }
            if t.username.is_some() && t.password.is_none() {
                return Err(ConfigError::invalid(
                    key("password"),
                    format!(
                        "missing (set it here or in CLICKTOCALL_TRUNK_{}_PASSWORD)",
                        env::var_part(&t.name)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_queues_and_agents(&self) -> Result<(), ConfigError> {
        let mut queues = BTreeSet::new();
        for (i, q) in self.queues.iter().enumerate() {
            if !is_name(&q.name) {
                return Err(ConfigError::invalid(
                    format!("queues[{i}].name"),
                    "use letters, digits, '-' and '_'",
                ));
            }
            if !queues.insert(q.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("queues[{i}].name"),
                    format!("duplicate queue {:?}", q.name),
                ));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let key = |k: &str| format!("agents[{i}].{k}");
            if !is_token(&a.id) {
                return Err(ConfigError::invalid(
                    key("id"),
                    "must be a SIP user token (letters, digits, -_.!~*')",
                ));
            }
            if !ids.insert(a.id.as_str()) {
                return Err(ConfigError::invalid(
                    key("id"),
                    format!("duplicate agent {:?}", a.id),
                ));
            }
            match (&a.password, &a.uri) {
                (None, None) => {
                    return Err(ConfigError::invalid(
                        key("password"),
                        format!(
                            "an agent needs a password (to REGISTER; or CLICKTOCALL_AGENT_{}_PASSWORD) or a static uri",
                            env::var_part(&a.id)
                        ),
                    ))
                }
                (_, Some(uri)) => {
                    crate::sip::uri::parse_sip_uri(uri).map_err(|e| ConfigError::invalid(key("uri"), e))?;
                }
                _ => {}
            }
            for (j, q) in a.queues.iter().enumerate() {
                if !queues.contains(q.as_str()) {
                    return Err(ConfigError::invalid(
                        format!("agents[{i}].queues[{j}]"),
                        format!("no queue named {q:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A cert/key pair: both or neither, and both readable.
fn check_pair(
    section: &str,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    match (cert, key) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(ConfigError::invalid(
            format!("{section}.tls_key"),
            "tls_cert is set, tls_key is missing",
        )),
        (None, Some(_)) => Err(ConfigError::invalid(
            format!("{section}.tls_cert"),
            "tls_key is set, tls_cert is missing",
        )),
        (Some(c), Some(k)) => {
            check_readable(&format!("{section}.tls_cert"), c)?;
            check_readable(&format!("{section}.tls_key"), k)
        }
    }
}

/// A file named in the config must exist and be readable now, not at the first call.
fn check_readable(key: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// RFC 3261 user-unreserved token subset we accept for agent ids and realms.
/// `scheme://host[:port]` with an http(s) scheme.
pub(super) fn is_origin(origin: &str) -> bool {
    (origin.starts_with("http://") || origin.starts_with("https://"))
        && !origin.trim_end_matches('/').contains(['?', '#', ' '])
        && origin.split("://").nth(1).is_some_and(|h| !h.is_empty())
}

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'".contains(c))
}
