//! Digest authentication of agents (RFC 3261 §22.4, RFC 2617 / RFC 8760 MD5). Sans-IO.
//!
//! Nonces are stateless: `<issued-ms-hex>.<md5(secret:issued)>`, so any worker (or, later, any node
//! sharing the secret) can check one without a lookup, and an expired nonce is answered `stale=true` so
//! phones retry silently instead of prompting for a password.

use md5::{Digest, Md5};
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::rsip;
use std::time::{Duration, Instant};

/// Issues challenges and checks answers for one realm.
#[derive(Debug, Clone)]
pub struct DigestAuth {
    realm: String,
    secret: String,
    ttl: Duration,
    epoch: Instant,
    /// Milliseconds on the nonces' clock at `epoch`: 0 counts from the start of the process;
    /// the wall clock at `epoch` makes nonces of several nodes (sharing the secret) comparable.
    epoch_ms: u64,
}

/// Result of checking an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Credentials are right; the authenticated user name.
    Ok(String),
    /// No usable credentials: challenge.
    Challenge,
    /// The answer was right for an expired nonce: challenge again with `stale=true`.
    Stale,
    /// Wrong password, unknown user, wrong realm or a forged nonce: 403.
    Forbidden(&'static str),
}

impl DigestAuth {
    /// `epoch` anchors nonce timestamps; pass the process start.
    pub fn new(realm: &str, secret: &str, ttl: Duration, epoch: Instant) -> Self {
        DigestAuth {
            realm: realm.to_string(),
            secret: secret.to_string(),
            ttl,
            epoch,
            epoch_ms: 0,
        }
    }

    /// Nonces count wall-clock milliseconds (`unix_ms` is the wall clock at `epoch`), so every
    /// node sharing the secret reads another node's nonce age right.
    pub fn on_wall_clock(mut self, unix_ms: u64) -> Self {
        self.epoch_ms = unix_ms;
        self
    }

    fn clock(&self, now: Instant) -> u64 {
        self.epoch_ms + now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The realm challenged for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A fresh nonce for `now`.
    pub fn nonce(&self, now: Instant) -> String {
        let issued = self.clock(now);
        format!("{issued:x}.{}", self.mac(issued))
    }

    /// The `WWW-Authenticate` value for a 401 (`stale` after an expired nonce).
    pub fn challenge(&self, now: Instant, stale: bool) -> String {
        format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"{}",
            self.realm,
            self.nonce(now),
            if stale { ", stale=true" } else { "" }
        )
    }

    /// Checks the request's `Authorization` header (or `Proxy-Authorization` when `proxy`) against
    /// `password_of(user)`.
    pub fn check(
        &self,
        now: Instant,
        req: &rsip::Request,
        proxy: bool,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
        // Credentials in a scheme we do not know are ignored, as if absent: challenge with one we
        // do (RFC 3261 §22.1; RFC 4475 §3.3.7).
        let raw = req
            .headers
            .iter()
            .filter_map(|h| match (h, proxy) {
                (rsip::Header::Authorization(a), false) => Some(a.value().to_string()),
                (rsip::Header::ProxyAuthorization(a), true) => Some(a.value().to_string()),
                _ => None,
            })
            .find(|v| is_digest(v));
        let Some(raw) = raw else {
            return AuthOutcome::Challenge;
        };
        let typed = match rsip::typed::Authorization::parse(&raw) {
            Ok(t) => t,
            Err(_) => return AuthOutcome::Forbidden("malformed Authorization header"),
        };
        if typed.realm != self.realm {
            return AuthOutcome::Challenge;
        }
        let Some(password) = password_of(&typed.username) else {
            return AuthOutcome::Forbidden("unknown user");
        };
        let fresh = match self.nonce_age(now, &typed.nonce) {
            None => return AuthOutcome::Challenge,
            Some(age) => age <= self.ttl,
        };
        if !verify_digest(&typed, &password, &req.method, &raw) {
            return AuthOutcome::Forbidden("wrong password");
        }
        if fresh {
            AuthOutcome::Ok(typed.username)
        } else {
            AuthOutcome::Stale
        }
    }

    /// Age of a nonce we issued, or `None` for one we did not (forged, or from before a restart).
    fn nonce_age(&self, now: Instant, nonce: &str) -> Option<Duration> {
        let (issued, mac) = nonce.split_once('.')?;
        let issued = u64::from_str_radix(issued, 16).ok()?;
        if !crate::secret::same_bytes(mac.as_bytes(), self.mac(issued).as_bytes()) {
            return None;
        }
        self.clock(now)
            .checked_sub(issued)
            .map(Duration::from_millis)
    }

    fn mac(&self, issued: u64) -> String {
        let mut h = Md5::new();
        h.update(self.secret.as_bytes());
        h.update(b":");
        h.update(issued.to_le_bytes());
        h.finalize()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Whether credentials are in the Digest scheme (auth-scheme is case-insensitive, RFC 3261 §25.1).
fn is_digest(credentials: &str) -> bool {
    credentials
        .trim_start()
        .split([' ', '\t'])
        .next()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("Digest"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::rsip::headers::auth::{Algorithm, AuthQop};

    fn register_with(auth: Option<String>) -> rsip::Request {
        let mut text = String::from(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c1\r\n\
             CSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n",
        );
        if let Some(a) = auth {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        rsip::Request::try_from(text.as_str()).unwrap()
    }

    fn answer(nonce: &str, password: &str) -> String {
        let resp = compute_digest(
            "1001",
            password,
            "clicktocall",
            nonce,
            &rsip::Method::Register,
            "sip:127.0.0.1",
            Algorithm::Md5,
            Some(&AuthQop::Auth {
                cnonce: "xyz".into(),
                nc: 1,
            }),
        );
        format!(
            "Digest username=\"1001\", realm=\"clicktocall\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", \
             response=\"{resp}\", algorithm=MD5, qop=auth, cnonce=\"xyz\", nc=00000001"
        )
    }

    #[test]
    fn a_node_sharing_the_secret_accepts_another_nodes_nonce_on_the_wall_clock() {
        // Node A started 10 minutes before node B; both count wall-clock milliseconds.
        let (ta, tb) = (Instant::now(), Instant::now() + Duration::from_secs(600));
        let unix = 1_796_000_000_000u64;
        let ttl = Duration::from_secs(300);
        let a = DigestAuth::new("clicktocall", "shared", ttl, ta).on_wall_clock(unix);
        let b = DigestAuth::new("clicktocall", "shared", ttl, tb).on_wall_clock(unix + 600_000);
        let pw = |u: &str| (u == "1001").then(|| "pw".to_string());
        let at = tb + Duration::from_secs(5);
        let req = register_with(Some(answer(&a.nonce(at), "pw")));
        let soon = at + Duration::from_secs(1);
        assert_eq!(
            b.check(soon, &req, false, pw),
            AuthOutcome::Ok("1001".into())
        );
        let late = at + Duration::from_secs(301);
        assert_eq!(b.check(late, &req, false, pw), AuthOutcome::Stale);
    }

    #[test]
    fn challenge_then_accept_then_stale_then_forged() {
        let t0 = Instant::now();
        let auth = DigestAuth::new("clicktocall", "s3cret", Duration::from_secs(300), t0);
        let pw = |u: &str| (u == "1001").then(|| "pw".to_string());
        assert_eq!(
            auth.check(t0, &register_with(None), false, pw),
            AuthOutcome::Challenge
        );

        let nonce = auth.nonce(t0 + Duration::from_secs(1));
        let req = register_with(Some(answer(&nonce, "pw")));
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            auth.check(later, &req, false, pw),
            AuthOutcome::Ok("1001".into())
        );

        let much_later = t0 + Duration::from_secs(400);
        assert_eq!(auth.check(much_later, &req, false, pw), AuthOutcome::Stale);

        let wrong = register_with(Some(answer(&nonce, "nope")));
        assert_eq!(
            auth.check(later, &wrong, false, pw),
            AuthOutcome::Forbidden("wrong password")
        );

        let forged = register_with(Some(answer("1234.deadbeef", "pw")));
        assert_eq!(
            auth.check(later, &forged, false, pw),
            AuthOutcome::Challenge
        );

        let other_secret = DigestAuth::new("clicktocall", "other", Duration::from_secs(300), t0);
        assert_eq!(
            other_secret.check(later, &req, false, pw),
            AuthOutcome::Challenge
        );
    }
}
