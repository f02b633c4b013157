//! The ICE servers a widget session is given: STUN as configured, and TURN with time-limited
//! credentials in the scheme coturn's REST API uses (`use-auth-secret`): the username is
//! `<expiry unix time>:<label>` and the password is base64(HMAC-SHA1(secret, username)). The TURN
//! server checks both with the shared secret alone, so the gateway never talks to it.

use crate::config::IceSection;
use base64::Engine;
use serde::Serialize;

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// `stun:` / `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The username and password for a TURN session of `label` that expires `ttl_secs` after `now_unix`.
pub fn turn_credentials(
    secret: &str,
    label: &str,
    now_unix: u64,
    ttl_secs: u64,
) -> (String, String) {
    let username = format!("{}:{label}", now_unix.saturating_add(ttl_secs));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (username, password)
}

/// The servers for one widget session at `now_unix`; `label` names the session in the TURN
/// server's logs (it must not contain `:`).
pub fn ice_servers(cfg: &IceSection, label: &str, now_unix: u64) -> Vec<IceServer> {
    let mut out = Vec::new();
    if !cfg.stun.is_empty() {
        out.push(IceServer {
            urls: cfg.stun.clone(),
            username: None,
            credential: None,
        });
    }
    if !cfg.turn.is_empty() {
        let label = label.replace(':', "_");
        let (username, password) =
            turn_credentials(&cfg.turn_secret, &label, now_unix, cfg.turn_ttl_secs);
        out.push(IceServer {
            urls: cfg.turn.clone(),
            username: Some(username),
            credential: Some(password),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_follow_the_coturn_rest_scheme() {
        // Expected value from Python's hmac/hashlib/base64 (an independent implementation):
        // base64(hmac.new(b"north-secret", b"1700003600:clicktocall", sha1).digest())
        let (u, p) = turn_credentials("north-secret", "clicktocall", 1_700_000_000, 3600);
        assert_eq!(u, "1700003600:clicktocall");
        assert_eq!(p, "OP7ZY+q/q8gxNR36CwnoG2+ZVEs=");
    }

    #[test]
    fn stun_and_turn_become_two_entries_and_nothing_configured_is_empty() {
        assert!(ice_servers(&IceSection::default(), "s1", 0).is_empty());
        let cfg = IceSection {
            stun: vec!["stun:stun.example.com:3478".into()],
            turn: vec!["turn:turn.example.com:3478?transport=udp".into()],
            turn_secret: "north-secret".into(),
            turn_ttl_secs: 600,
        };
        let s = ice_servers(&cfg, "web:1", 1_000);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].urls, cfg.stun);
        assert_eq!(s[0].username, None);
        assert_eq!(s[1].username.as_deref(), Some("1600:web_1"));
        let json = serde_json::to_value(&s).unwrap();
        assert!(json[0].get("credential").is_none());
        assert!(json[1]["credential"]
            .as_str()
            .is_some_and(|c| c.len() == 28));
    }
}
