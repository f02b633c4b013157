//! Our own identifiers for SIP: Call-ID, tags and branches (RFC 3261 §8.1.1.4, §19.3, §8.1.1.7).
//!
//! Random, URL-safe and free of any foreign domain: a Call-ID is `<random>@<our advertised host>`, so
//! nothing in our headers names another organisation, and nothing reveals the customer or agent.

/// Characters used in random identifiers: alphanumerics only, safe in every header.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` random alphanumeric characters from the thread-local CSPRNG.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    // 62 does not divide 256: the bias (4/256 toward the first 8 characters) costs well under one bit
    // of the ~5.95 bits per character, which is irrelevant for identifiers of 16+ characters.
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % 62] as char)
        .collect()
}

/// A From/To tag: 16 random characters (~95 bits, RFC 3261 §19.3 asks for at least 32).
pub fn tag() -> String {
    random_token(16)
}

/// A Via branch with the RFC 3261 magic cookie `z9hG4bK`.
pub fn branch() -> String {
    format!("z9hG4bK{}", random_token(22))
}

/// A Call-ID local to `host` (our advertised host).
pub fn call_id(host: &str) -> String {
    format!("{}@{}", random_token(24), host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn identifiers_are_unique_and_well_formed() {
        let branches: HashSet<String> = (0..1000).map(|_| branch()).collect();
        assert_eq!(branches.len(), 1000);
        assert!(branches
            .iter()
            .all(|b| b.starts_with("z9hG4bK") && b.len() == 29));
        let id = call_id("gw.example.com");
        assert!(id.ends_with("@gw.example.com"));
        assert!(tag().chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
