//! Splitting `name-addr` / `addr-spec` header values (From, To, Contact; RFC 3261 §20.10, §25.1) into
//! the URI and the header parameters, respecting quoted strings: a display name or a parameter value
//! such as `+sip.instance="<urn:uuid:...>"` may contain `<`, `>`, `;` and `,`.

/// `"Display" <uri>;params` or `uri;params` → `(uri, params)`; `params` keeps its leading `;`.
/// `None` when brackets or quotes do not balance.
pub fn split(value: &str) -> Option<(&str, &str)> {
    let value = value.trim();
    let mut start = 0;
    if value.starts_with('"') {
        start = closing_quote(value, 0)? + 1;
    }
    let rest = &value[start..];
    match rest.find('<') {
        Some(lt) if rest[..lt].trim().chars().all(|c| c != '>' && c != '"') => {
            let uri_start = start + lt + 1;
            let gt = value[uri_start..].find('>')? + uri_start;
            Some((&value[uri_start..gt], &value[gt + 1..]))
        }
        Some(_) => None,
        None if start > 0 => None,
        None => {
            if value.contains('>') {
                return None;
            }
            let end = value.find(';').unwrap_or(value.len());
            Some((&value[..end], &value[end..]))
        }
    }
}

/// The `;name[=value]` parameters of a header value, outside quotes; values keep their quotes.
pub fn params(s: &str) -> Vec<(&str, Option<&str>)> {
    let mut out = Vec::new();
    let (mut quoted, mut begin) = (false, None::<usize>);
    let bytes = s.as_bytes();
    let mut i = 0;
    while i <= bytes.len() {
        let c = bytes.get(i).copied();
        match c {
            Some(b'\\') if quoted => i += 1,
            Some(b'"') => quoted = !quoted,
            Some(b';') | None if !quoted => {
                if let Some(b) = begin {
                    let p = s[b..i].trim();
                    if !p.is_empty() {
                        out.push(match p.split_once('=') {
                            Some((k, v)) => (k.trim(), Some(v.trim())),
                            None => (p, None),
                        });
                    }
                }
                begin = Some(i + 1);
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Index of the quote closing the one at `open`, skipping backslash escapes.
fn closing_quote(s: &str, open: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baresip_contact_with_quoted_instance() {
        let v = r#"<sip:1001-0x55@127.0.0.1:5080;transport=udp>;expires=600;+sip.instance="<urn:uuid:a-b>";reg-id=1"#;
        let (uri, ps) = split(v).unwrap();
        assert_eq!(uri, "sip:1001-0x55@127.0.0.1:5080;transport=udp");
        let ps = params(ps);
        assert_eq!(ps[0], ("expires", Some("600")));
        assert_eq!(ps[1], ("+sip.instance", Some("\"<urn:uuid:a-b>\"")));
        assert_eq!(ps[2], ("reg-id", Some("1")));
    }

    #[test]
    fn display_names_and_addr_spec() {
        assert_eq!(
            split(r#""Ann <VIP>; \"x\"" <sip:a@h>;tag=1"#),
            Some(("sip:a@h", ";tag=1"))
        );
        assert_eq!(split("sip:a@h;tag=1"), Some(("sip:a@h", ";tag=1")));
        assert_eq!(split("Ann <sip:a@h>"), Some(("sip:a@h", "")));
        assert_eq!(split("<sip:a@h"), None);
        assert_eq!(split("\"unterminated <sip:a@h>"), None);
        assert_eq!(split("sip:a@h>"), None);
    }
}
