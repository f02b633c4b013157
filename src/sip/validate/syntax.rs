//! Grammar pieces of RFC 3261 §25.1 the field checks share: tokens, quoted strings, URIs, hosts,
//! display names, parameters and comma lists. Every function takes hostile text and never panics.

/// RFC 3261 `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Splits on commas that are not inside quotes or angle brackets.
pub(crate) fn split_commas(v: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped, mut angle) =
        (Vec::new(), 0, false, false, false);
    for (i, c) in v.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out
}

/// A `quoted-string` spanning all of `s` (RFC 3261 §25.1: `DQUOTE *(qdtext / quoted-pair) DQUOTE`).
pub(super) fn is_quoted_string(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return false;
    };
    if s.len() < 2 {
        return false;
    }
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        let bad_pair = c == '\\' && chars.next().is_none_or(|e| e == '\r' || e == '\n');
        if bad_pair || c == '"' {
            return false;
        }
    }
    true
}

/// `display-name = *(token LWS) / quoted-string` (RFC 3261 §25.1).
pub(super) fn is_display_name(s: &str) -> bool {
    let s = s.trim();
    s.is_empty()
        || (s.starts_with('"') && is_quoted_string(s))
        || s.split_whitespace().all(is_token)
}

/// `*( SEMI generic-param )` where `generic-param = token [ EQUAL gen-value ]` (RFC 3261 §25.1):
/// no empty parameter (`;;`), no empty name or value, quotes balanced.
pub(super) fn check_params(s: &str) -> Result<(), &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(());
    }
    let Some(rest) = s.strip_prefix(';') else {
        return Err("text after the URI is not a parameter");
    };
    for p in split_semis(rest)? {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if !is_token(name) {
            return Err("empty or malformed parameter");
        }
        match value {
            Some(v) if v.starts_with('"') && !is_quoted_string(v) => {
                return Err("unbalanced quotes in a parameter")
            }
            Some(v) if v.is_empty() || v.contains('"') && !v.starts_with('"') => {
                return Err("empty or malformed parameter value")
            }
            _ => {}
        }
    }
    Ok(())
}

/// Splits on `;` outside quoted strings; `Err` when a quote is left open.
fn split_semis(s: &str) -> Result<Vec<&str>, &'static str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err("unbalanced quotes in a parameter");
    }
    out.push(&s[start..]);
    Ok(out)
}

/// The scheme of a URI, lower-cased.
pub(super) fn scheme(uri: &str) -> String {
    uri.split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A `sip:`/`sips:` URI with a valid host part (other schemes: a non-empty opaque or hierarchical
/// part, RFC 3261 §25.1 `absoluteURI`). No LWS or controls anywhere (§19.1.1).
pub(super) fn check_uri(uri: &str) -> Result<(), ()> {
    if uri.is_empty() || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(());
    }
    let (scheme, rest) = uri.split_once(':').ok_or(())?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() || uri.contains(['<', '>', '"']) {
        return Err(());
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let host_port = after_userinfo(rest)
            .split([';', '?'])
            .next()
            .unwrap_or_default();
        check_escapes(rest)?;
        return check_host_port(host_port);
    }
    Ok(())
}

/// What follows the userinfo of a SIP URI (after `scheme:`): host, params, headers. The user part
/// may hold `? / ; , & = + $` and a password `:` (RFC 3261 §25.1 `user-unreserved`), but never an
/// unescaped `@`, which neither params nor headers may hold either: the last `@` ends it.
fn after_userinfo(rest: &str) -> &str {
    rest.rsplit_once('@').map_or(rest, |(_, h)| h)
}

/// Whether a SIP URI carries header fields (`?` after the host; RFC 3261 §19.1.1).
pub(super) fn has_uri_headers(uri: &str) -> bool {
    uri.split_once(':')
        .is_some_and(|(_, rest)| after_userinfo(rest).contains('?'))
}

/// Every `%` in a SIP URI starts `%HEXHEX` (RFC 3261 §25.1 `escaped`).
fn check_escapes(s: &str) -> Result<(), ()> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if !ok {
            return Err(());
        }
    }
    Ok(())
}

/// `host[:port]` where host is a name, IPv4 or `[IPv6]`.
pub(super) fn check_host_port(s: &str) -> Result<(), ()> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(())?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| ())?;
        if !after.is_empty() && !after.starts_with(':') {
            return Err(());
        }
        (None, after.strip_prefix(':'))
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(h) = host {
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(());
        }
    }
    if let Some(p) = port {
        p.parse::<u16>().map_err(|_| ())?;
    }
    Ok(())
}
