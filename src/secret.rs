//! Comparing secrets (API keys, MACs, signatures) without telling an attacker, through timing, how
//! much of a guess was right.

/// True when `a` and `b` are equal, in time that depends only on their lengths.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        assert!(super::same_bytes(b"key", b"key"));
        assert!(!super::same_bytes(b"key", b"kez"));
        assert!(!super::same_bytes(b"key", b"keys"));
        assert!(super::same_bytes(b"", b""));
    }
}
