//! The rules for the start line and each header field. Each returns the [`Fault`] it finds.

use super::head::{Head, MALFORMED};
use super::syntax::{
    check_host_port, check_params, check_uri, has_uri_headers, is_display_name, is_token, scheme,
    split_commas,
};
use super::{bad, Fault};

/// `Method SP Request-URI SP SIP-Version` with single SPs and nothing after (RFC 3261 §7.1, §25.1
/// `Request-Line`); an unknown version is 505 (§21.5.7, RFC 4475 §3.1.2.16). Returns method and URI.
pub(super) fn check_request_line(line: &str) -> Result<(&str, &str), Fault> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Err(bad("Bad Request-Line"));
    };
    if !is_token(method) {
        return Err(bad("Bad Request-Line method"));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        let looks_like_version = version
            .strip_prefix("SIP/")
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
        if !looks_like_version {
            return Err(bad("Bad SIP-Version"));
        }
        return Err(Fault {
            status: 505,
            reason: "Version Not Supported".into(),
        });
    }
    check_uri(uri).map_err(|_| bad("Bad Request-URI"))?;
    let sip = matches!(scheme(uri).as_str(), "sip" | "sips");
    if sip && has_uri_headers(uri) {
        // RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI; RFC 4475 §3.1.2.11.
        return Err(bad("Header fields in the Request-URI"));
    }
    Ok((method, uri))
}

/// `SIP-Version SP Status-Code SP Reason-Phrase` with a 3-digit code (RFC 3261 §7.2).
pub(super) fn check_status_line(line: &str) -> Result<(), Fault> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if version != "SIP/2.0" || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("Bad Status-Line"));
    }
    let code: u16 = code.parse().map_err(|_| bad("Bad Status-Line"))?;
    if !(100..=699).contains(&code) {
        return Err(bad("Bad status code"));
    }
    Ok(())
}

/// A header line without a colon or with a bad name (recorded by the head splitter) is reported
/// first, so the answer names the real problem (RFC 3261 §7.3).
pub(super) fn check_malformed_lines(head: &Head<'_>) -> Result<(), Fault> {
    match head.headers.iter().find(|h| h.name == MALFORMED) {
        Some(h) => Err(bad(format!("Malformed header line {}", h.value))),
        None => Ok(()),
    }
}

/// Mandatory fields present (RFC 3261 §8.1.1), single-value fields once (§7.3.1: only list
/// fields may repeat), and each of them well-formed.
pub(super) fn check_common(head: &Head<'_>, method: Option<&str>) -> Result<(), Fault> {
    for (long, short) in [
        ("Via", Some("v")),
        ("From", Some("f")),
        ("To", Some("t")),
        ("Call-ID", Some("i")),
        ("CSeq", None),
    ] {
        if head.count(long, short) == 0 {
            return Err(bad(format!("Missing {long}")));
        }
    }
    for (long, short) in [
        ("From", Some("f")),
        ("To", Some("t")),
        ("Call-ID", Some("i")),
        ("CSeq", None),
        ("Max-Forwards", None),
        ("Content-Length", Some("l")),
        ("Content-Type", Some("c")),
        ("Expires", None),
        ("Date", None),
    ] {
        if head.count(long, short) > 1 {
            return Err(bad(format!("Duplicate {long}")));
        }
    }
    for via in head.all("Via", Some("v")) {
        check_via(&via.value)?;
    }
    check_name_addr(
        "From",
        head.one("From", Some("f")).unwrap_or_default(),
        true,
    )?;
    check_name_addr("To", head.one("To", Some("t")).unwrap_or_default(), true)?;
    let call_id = head.one("Call-ID", Some("i")).unwrap_or_default().trim();
    if call_id.is_empty() || call_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("Bad Call-ID"));
    }
    check_cseq(head.one("CSeq", None).unwrap_or_default(), method)
}

/// `CSeq = 1*DIGIT LWS Method`, the number a 32-bit unsigned integer (RFC 3261 §20.16), the
/// method the request's own (RFC 4475 §3.1.2.17, §3.1.2.18).
fn check_cseq(cseq: &str, method: Option<&str>) -> Result<(), Fault> {
    let (num, cseq_method) = cseq
        .trim()
        .split_once([' ', '\t'])
        .ok_or_else(|| bad("Bad CSeq"))?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("Bad CSeq number"));
    }
    num.parse::<u32>()
        .map_err(|_| bad("CSeq number out of range"))?;
    let cseq_method = cseq_method.trim();
    if !is_token(cseq_method) {
        return Err(bad("Bad CSeq method"));
    }
    match method {
        Some(m) if m != cseq_method => Err(bad("CSeq method does not match request")),
        _ => Ok(()),
    }
}

/// `sent-protocol LWS sent-by *( SEMI via-params )` for each comma-separated Via value, no empty
/// values or parameters (RFC 3261 §20.42, §25.1; RFC 4475 §3.1.2.1).
pub(super) fn check_via(value: &str) -> Result<(), Fault> {
    for via in split_commas(value) {
        let via = via.trim();
        let (proto, rest) = via.split_once([' ', '\t']).ok_or_else(|| bad("Bad Via"))?;
        let mut p = proto.split('/');
        let ok_proto = p.next().is_some_and(|n| n.eq_ignore_ascii_case("SIP"))
            && p.next() == Some("2.0")
            && p.next().is_some_and(is_token)
            && p.next().is_none();
        if !ok_proto {
            return Err(bad("Bad Via protocol"));
        }
        let rest = rest.trim();
        let (sent_by, params) = rest.split_at(rest.find(';').unwrap_or(rest.len()));
        check_host_port(sent_by.trim()).map_err(|_| bad("Bad Via sent-by"))?;
        check_params(params).map_err(|why| bad(format!("Bad Via: {why}")))?;
    }
    Ok(())
}

/// `name-addr / addr-spec` with parameters (RFC 3261 §20.10, §25.1): a display name that is a
/// quoted string or tokens (§25.1 `display-name`, RFC 4475 §3.1.2.15), a URI without LWS
/// (§3.1.2.14), a URI with `?`, `;` or `,` in `<>` (§20, RFC 4475 §3.1.2.13), parameters
/// well-formed (§3.1.2.1). `single`: a comma outside quotes and `<>` is a second value (§7.3.1).
pub(super) fn check_name_addr(name: &str, value: &str, single: bool) -> Result<(), Fault> {
    let value = value.trim();
    let values = split_commas(value);
    if single && values.len() > 1 {
        return Err(bad(format!("More than one {name} value")));
    }
    for v in values {
        check_one_name_addr(name, v.trim())?;
    }
    Ok(())
}

fn check_one_name_addr(name: &str, value: &str) -> Result<(), Fault> {
    if value.is_empty() {
        return Err(bad(format!("Empty {name} value")));
    }
    let (uri, params) =
        crate::sip::name_addr::split(value).ok_or_else(|| bad(format!("Bad {name}")))?;
    let bracketed = value.contains('<');
    if bracketed {
        let display = &value[..laquot(value).unwrap_or(value.len())];
        if !is_display_name(display) {
            return Err(bad(format!("Bad {name} display name")));
        }
    } else if has_uri_headers(uri) || uri.contains(',') {
        return Err(bad(format!("{name} URI with headers must be in <>")));
    }
    check_uri(uri).map_err(|_| bad(format!("Bad {name} URI")))?;
    check_params(params).map_err(|why| bad(format!("Bad {name}: {why}")))
}

/// Where the `<` opening the URI is: the first outside a quoted display name (which may hold
/// `<`, and `\"` escapes).
fn laquot(value: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Contact: `*` or name-addr values; an `expires` parameter is delta-seconds fitting 32 bits
/// (RFC 3261 §20.10, §10.2.1.1; RFC 4475 §3.1.2.4).
pub(super) fn check_contacts(head: &Head<'_>) -> Result<(), Fault> {
    for contact in head.all("Contact", Some("m")) {
        if contact.value.trim() == "*" {
            continue;
        }
        check_name_addr("Contact", &contact.value, false)?;
        for v in split_commas(&contact.value) {
            let params = crate::sip::name_addr::split(v.trim()).map_or("", |(_, p)| p);
            for (k, val) in crate::sip::name_addr::params(params) {
                if k.eq_ignore_ascii_case("expires") {
                    delta_seconds(val.unwrap_or_default().trim_matches('"'))
                        .map_err(|_| bad("Bad Contact expires"))?;
                }
            }
        }
    }
    for (long, short) in [("Route", None), ("Record-Route", None)] {
        for h in head.all(long, short) {
            check_name_addr(long, &h.value, false)?;
        }
    }
    Ok(())
}

/// Max-Forwards 0-255 (RFC 3261 §20.22), Expires delta-seconds (§20.19), Date an RFC 1123 date in
/// GMT (§20.17, RFC 4475 §3.1.2.12). Max-Forwards may be absent: RFC 2543 did not have it
/// (RFC 4475 §3.4.1).
pub(super) fn check_scalars(head: &Head<'_>) -> Result<(), Fault> {
    if let Some(mf) = head.one("Max-Forwards", None) {
        let mf = mf.trim();
        if mf.is_empty() || !mf.bytes().all(|b| b.is_ascii_digit()) || mf.parse::<u8>().is_err() {
            return Err(bad("Bad Max-Forwards"));
        }
    }
    if let Some(e) = head.one("Expires", None) {
        delta_seconds(e.trim()).map_err(|_| bad("Bad Expires"))?;
    }
    if let Some(d) = head.one("Date", None) {
        if !is_rfc1123_gmt(d.trim()) {
            return Err(bad("Bad Date"));
        }
    }
    Ok(())
}

/// `delta-seconds = 1*DIGIT`, at most 2^32-1 (RFC 3261 §25.1, RFC 4475 §3.1.2.4).
fn delta_seconds(s: &str) -> Result<u32, ()> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    s.parse().map_err(|_| ())
}

/// `wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"` (RFC 3261
/// §25.1 `rfc1123-date`; only GMT, RFC 4475 §3.1.2.12).
fn is_rfc1123_gmt(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = s.split(' ').collect();
    let [wkday, day, month, year, time, zone] = parts[..] else {
        return false;
    };
    let time_ok = {
        let t: Vec<&str> = time.split(':').collect();
        t.len() == 3 && t.iter().all(|p| digits(p, 2))
    };
    wkday.strip_suffix(',').is_some_and(|d| DAYS.contains(&d))
        && digits(day, 2)
        && MONTHS.contains(&month)
        && digits(year, 4)
        && time_ok
        && zone == "GMT"
}

/// `Content-Length = 1*DIGIT`, not more than the octets received (RFC 3261 §20.14, §18.3); returns
/// the length to keep, if given.
pub(super) fn check_content_length(
    head: &Head<'_>,
    body_len: usize,
) -> Result<Option<usize>, Fault> {
    let Some(cl) = head.one("Content-Length", Some("l")) else {
        return Ok(None);
    };
    let cl = cl.trim();
    if cl.is_empty() || !cl.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("Bad Content-Length"));
    }
    let cl: usize = cl.parse().map_err(|_| bad("Bad Content-Length"))?;
    if cl > body_len {
        return Err(bad("Content-Length exceeds body"));
    }
    Ok(Some(cl))
}

/// A non-empty body needs a Content-Type (RFC 3261 §20.15). A body of only whitespace after a
/// message without Content-Length is padding, not a body.
pub(super) fn check_body_type(head: &Head<'_>, body: &[u8], cut: bool) -> Result<(), Fault> {
    let empty = body.is_empty() || (!cut && body.iter().all(u8::is_ascii_whitespace));
    if !empty && head.count("Content-Type", Some("c")) == 0 {
        return Err(bad("Body without Content-Type"));
    }
    if let Some(ct) = head.one("Content-Type", Some("c")) {
        let media = ct.split(';').next().unwrap_or_default();
        let ok = media
            .split_once('/')
            .is_some_and(|(t, s)| is_token(t) && is_token(s));
        if !ok {
            return Err(bad("Bad Content-Type"));
        }
        let params = &ct[media.len()..];
        check_params(params).map_err(|why| bad(format!("Bad Content-Type: {why}")))?;
    }
    Ok(())
}
