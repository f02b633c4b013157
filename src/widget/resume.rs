//! Resume tokens: a widget whose socket dropped opens a new one and names its call with the token
//! it was given, so the call (whose media never stopped) gets its signalling back. Sans-IO: time
//! is an argument.
//!
//! A token is `r1.<call id>.<expiry, unix seconds>.<signature>`, the signature being HMAC-SHA256
//! (first 16 bytes, base64url) keyed with the node's secret over the call id, the expiry and the
//! site key. So a token:
//! - cannot be forged or moved to another call (the signature);
//! - works only from the site it was issued to (a token from another site's page fails the
//!   signature, exactly like a forged one: nothing tells the two apart, on purpose);
//! - is short-lived: it expires `widget.resume_grace_secs` + 60 s after issue, and the gateway
//!   hands the widget a fresh one in every `pong`, so a live widget holds one a few seconds old.
//!
//! The call id names its node (its top bits), so in a cluster the token says where the call lives;
//! only that node's key checks it, and only that node can resume the call anyway (its media is
//! there).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// Garbled, forged, for another site, or signed by another key.
    #[error("this resume token is not valid here")]
    Invalid,
    /// Past its expiry.
    #[error("this resume token has expired")]
    Expired,
}

impl ResumeError {
    /// The stable `error` code for the widget.
    pub fn code(self) -> &'static str {
        match self {
            ResumeError::Invalid => "resume_invalid",
            ResumeError::Expired => "resume_expired",
        }
    }
}

/// A node's key for resume tokens, and their lifetime.
pub struct ResumeKey {
    key: hmac::Key,
    ttl: u64,
}

impl std::fmt::Debug for ResumeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeKey").field("ttl", &self.ttl).finish()
    }
}

const PREFIX: &str = "r1";
/// Longest token accepted before any parsing.
const MAX_TOKEN: usize = 128;

impl ResumeKey {
    /// A key from `secret` (a random one per process is right: only this node can resume its
    /// calls); tokens live `ttl_secs`.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        ResumeKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            ttl: ttl_secs,
        }
    }

    /// A key from 32 random bytes.
    pub fn random(ttl_secs: u64) -> Self {
        let secret: [u8; 32] = rand::random();
        Self::new(&secret, ttl_secs)
    }

    fn sign(&self, call: u64, exp: u64, site: Option<&str>) -> String {
        let msg = format!("{PREFIX}|{call}|{exp}|{}", site.unwrap_or(""));
        let tag = hmac::sign(&self.key, msg.as_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
    }

    /// A token for `call`, issued at `now` (unix seconds) to a page of `site`.
    pub fn issue(&self, call: u64, site: Option<&str>, now: u64) -> String {
        let exp = now.saturating_add(self.ttl);
        format!("{PREFIX}.{call}.{exp}.{}", self.sign(call, exp, site))
    }

    /// The call a token names, if it is genuine, for `site`, and not expired at `now`.
    pub fn check(&self, token: &str, site: Option<&str>, now: u64) -> Result<u64, ResumeError> {
        if token.len() > MAX_TOKEN {
            return Err(ResumeError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(call), Some(exp), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(ResumeError::Invalid);
        };
        let call: u64 = call.parse().map_err(|_| ResumeError::Invalid)?;
        let exp: u64 = exp.parse().map_err(|_| ResumeError::Invalid)?;
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return Err(ResumeError::Invalid);
        };
        let msg = format!("{PREFIX}|{call}|{exp}|{}", site.unwrap_or(""));
        let tag = hmac::sign(&self.key, msg.as_bytes());
        if !crate::secret::same_bytes(&tag.as_ref()[..16], &sig) {
            return Err(ResumeError::Invalid);
        }
        if now > exp {
            return Err(ResumeError::Expired);
        }
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_call_until_it_expires() {
        let key = ResumeKey::new(b"secret", 90);
        let t = key.issue(4711, Some("shop"), 1_000);
        assert_eq!(key.check(&t, Some("shop"), 1_000), Ok(4711));
        assert_eq!(key.check(&t, Some("shop"), 1_090), Ok(4711));
        assert_eq!(
            key.check(&t, Some("shop"), 1_091),
            Err(ResumeError::Expired)
        );
    }

    #[test]
    fn forged_moved_or_foreign_tokens_are_invalid() {
        let key = ResumeKey::new(b"secret", 90);
        let t = key.issue(4711, Some("shop"), 1_000);
        // Another site's page, or none.
        assert_eq!(
            key.check(&t, Some("other"), 1_000),
            Err(ResumeError::Invalid)
        );
        assert_eq!(key.check(&t, None, 1_000), Err(ResumeError::Invalid));
        // Another node's (or a restarted node's) key.
        let other = ResumeKey::new(b"another", 90);
        assert_eq!(
            other.check(&t, Some("shop"), 1_000),
            Err(ResumeError::Invalid)
        );
        // Another call id, or a later expiry, under the same signature.
        let sig = t.rsplit('.').next().unwrap();
        for forged in [
            format!("r1.4712.1090.{sig}"),
            format!("r1.4711.9999.{sig}"),
            "r1.4711.1090.AAAAAAAAAAAAAAAAAAAAAA".to_string(),
            "r1.4711.1090".into(),
            "r1.x.1090.abc".into(),
            "r2.4711.1090.abc".into(),
            "".into(),
            "r1.4711.1090.abc.extra".into(),
            "r1.4711.1090.!!!!".into(),
            "r".repeat(1000),
        ] {
            assert_eq!(
                key.check(&forged, Some("shop"), 1_000),
                Err(ResumeError::Invalid),
                "{forged:.40}"
            );
        }
        assert_eq!(ResumeError::Invalid.code(), "resume_invalid");
        assert_eq!(ResumeError::Expired.code(), "resume_expired");
    }

    #[test]
    fn a_site_less_token_works_without_a_site() {
        let key = ResumeKey::random(30);
        let t = key.issue(1, None, 5);
        assert_eq!(key.check(&t, None, 6), Ok(1));
    }
}
