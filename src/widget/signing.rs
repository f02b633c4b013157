//! Signed context: a site's backend signs the context it hands its page, so a visitor cannot pose as
//! another customer (another CRM id) by editing it. The signature travels in the context itself:
//!
//! - `c2c_exp`: expiry, unix seconds;
//! - `c2c_sig`: lowercase hex HMAC-SHA256, keyed with the site's secret, over every other field
//!   (including `c2c_exp`) sorted by name, each written as `name=value\n`: strings as they are,
//!   numbers and booleans as JSON writes them (`4711`, `true`).
//!
//! The gateway checks it, removes both fields, and tells the agent (`X-Context-Verified`).

use serde_json::{Map, Value};

/// The result of checking a context's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Signed with the site's secret and not expired.
    Verified,
    /// No signature (or the site has no secret).
    Unsigned,
    /// A signature that does not match.
    BadSignature,
    /// A valid signature past its expiry.
    Expired,
}

impl Verification {
    /// True only for [`Verification::Verified`].
    pub fn is_verified(self) -> bool {
        self == Verification::Verified
    }

    /// For logs and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::Unsigned => "unsigned",
            Verification::BadSignature => "bad signature",
            Verification::Expired => "expired",
        }
    }
}

/// The text the signature covers.
pub fn canonical(context: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = context.keys().filter(|k| *k != "c2c_sig").collect();
    keys.sort();
    let mut out = String::new();
    for k in keys {
        out.push_str(k);
        out.push('=');
        match &context[k] {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        out.push('\n');
    }
    out
}

/// The signature of `context` (as a site's backend computes it).
pub fn sign(context: &Map<String, Value>, secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    to_hex(ring::hmac::sign(&key, canonical(context).as_bytes()).as_ref())
}

/// Checks and strips the signature fields of `context` at `now_unix`.
pub fn verify(
    context: &mut Map<String, Value>,
    secret: Option<&str>,
    now_unix: u64,
) -> Verification {
    let sig = context.get("c2c_sig").cloned();
    let exp = context.get("c2c_exp").and_then(Value::as_u64);
    let result = match (secret.filter(|s| !s.is_empty()), sig) {
        (Some(secret), Some(Value::String(sig))) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            let ok = decode_hex(&sig).is_some_and(|tag| {
                ring::hmac::verify(&key, canonical(context).as_bytes(), &tag).is_ok()
            });
            match (ok, exp) {
                (false, _) | (true, None) => Verification::BadSignature,
                (true, Some(e)) if e < now_unix => Verification::Expired,
                (true, Some(_)) => Verification::Verified,
            }
        }
        (_, Some(_)) => Verification::BadSignature,
        (_, None) => Verification::Unsigned,
    };
    context.remove("c2c_sig");
    context.remove("c2c_exp");
    result
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn matches_the_documented_python_recipe() {
        // From docs/signed-context.md's Python example (hmac + hashlib, an independent
        // implementation), for this context, secret "site-secret" and c2c_exp 1800000000.
        let c =
            ctx(json!({"name": "Ann Lee", "crm_id": 4711, "vip": true, "c2c_exp": 1800000000u64}));
        assert_eq!(
            canonical(&c),
            "c2c_exp=1800000000\ncrm_id=4711\nname=Ann Lee\nvip=true\n"
        );
        assert_eq!(
            sign(&c, "site-secret"),
            "575ca577ddb97ef2dacb1c2f54ae7ad1d8d8b15c105c8cac75684374ea911654"
        );
    }

    #[test]
    fn verified_unsigned_bad_and_expired() {
        let mut c = ctx(json!({"name": "Ann Lee", "crm_id": 4711, "c2c_exp": 2000}));
        let sig = sign(&c, "s3cret");
        c.insert("c2c_sig".into(), Value::String(sig.clone()));
        let mut ok = c.clone();
        assert_eq!(
            verify(&mut ok, Some("s3cret"), 1999),
            Verification::Verified
        );
        assert!(!ok.contains_key("c2c_sig") && !ok.contains_key("c2c_exp"));
        assert_eq!(ok.len(), 2);
        assert_eq!(
            verify(&mut c.clone(), Some("s3cret"), 2001),
            Verification::Expired
        );
        assert_eq!(
            verify(&mut c.clone(), Some("other"), 1999),
            Verification::BadSignature
        );
        assert_eq!(
            verify(&mut c.clone(), None, 1999),
            Verification::BadSignature
        );
        // Another customer's CRM id with the same signature.
        let mut forged = c.clone();
        forged.insert("crm_id".into(), json!(4712));
        assert_eq!(
            verify(&mut forged, Some("s3cret"), 1999),
            Verification::BadSignature
        );
        let mut unsigned = ctx(json!({"name": "Ann Lee"}));
        assert_eq!(
            verify(&mut unsigned, Some("s3cret"), 0),
            Verification::Unsigned
        );
        for junk in [json!("zz"), json!(12), json!("abc"), json!("0".repeat(500))] {
            let mut j = c.clone();
            j.insert("c2c_sig".into(), junk);
            assert_eq!(
                verify(&mut j, Some("s3cret"), 1999),
                Verification::BadSignature
            );
        }
    }
}
