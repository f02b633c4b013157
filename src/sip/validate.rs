//! Strict validation of raw SIP datagrams, on top of rsipstack's lenient parser (RFC 3261 §7, §8.1.1,
//! §18.3). Sans-IO: bytes in, a [`Verdict`] out.
//!
//! A request that breaks a rule is answered `400` (or `501` for an unknown method, `513` when too large)
//! with a response built from its own raw Via/From/To/Call-ID/CSeq lines, so even messages rsipstack
//! cannot parse get an answer. A message with no usable Via, a malformed response, an ACK, or bytes that
//! are not SIP at all are dropped: there is nobody to answer. Either way the caller logs the reason.

use std::borrow::Cow;

/// Methods we parse and route. Anything else that is a well-formed token gets 501.
pub const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// What to do with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed: hand the first `len` bytes to the stack (a body longer than Content-Length is cut,
    /// RFC 3261 §18.3).
    Accept {
        /// Bytes to keep.
        len: usize,
    },
    /// Answer with `response` and discard the message.
    Reply {
        /// Status code of the answer (400, 501, 513).
        status: u16,
        /// Why, for the log (also the reason phrase).
        reason: String,
        /// The response bytes to send back to the source.
        response: Vec<u8>,
    },
    /// Discard without answering.
    Drop {
        /// Why, for the log.
        reason: String,
    },
}

/// A rule a message broke: status code and reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    status: u16,
    reason: String,
}

fn bad(reason: impl Into<String>) -> Fault {
    Fault {
        status: 400,
        reason: reason.into(),
    }
}

/// A header line split into name and value.
struct HeaderLine<'a> {
    name: &'a str,
    value: Cow<'a, str>,
}

/// The parts of a message head we need to judge and answer it.
struct Head<'a> {
    start: &'a str,
    headers: Vec<HeaderLine<'a>>,
}

impl<'a> Head<'a> {
    fn all<'s>(
        &'s self,
        long: &'static str,
        short: Option<&'static str>,
    ) -> impl Iterator<Item = &'s HeaderLine<'a>> + 's {
        let short = short.unwrap_or("\0");
        self.headers.iter().filter(move |h| {
            h.name.eq_ignore_ascii_case(long) || h.name.eq_ignore_ascii_case(short)
        })
    }

    fn count(&self, long: &'static str, short: Option<&'static str>) -> usize {
        self.all(long, short).count()
    }

    fn one(&self, long: &'static str, short: Option<&'static str>) -> Option<&str> {
        self.all(long, short).next().map(|h| h.value.as_ref())
    }
}

/// Judges one UDP datagram. `max_len` is the largest message accepted; `server` goes into any answer.
pub fn check(buf: &[u8], max_len: usize, server: &str) -> Verdict {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Verdict::Drop {
            reason: if looks_textual(buf) {
                "no blank line ends the headers".into()
            } else {
                "not a SIP message (binary data)".into()
            },
        };
    };
    let Ok(head_text) = std::str::from_utf8(&buf[..head_end]) else {
        return Verdict::Drop {
            reason: "headers are not UTF-8".into(),
        };
    };
    let head = match split_head(head_text) {
        Ok(h) => h,
        Err(reason) => return Verdict::Drop { reason },
    };
    if head.start.starts_with("SIP/") {
        // A response: never answered. Check its status line so garbage never reaches a transaction.
        let checked = check_malformed_lines(&head)
            .and_then(|_| check_status_line(head.start))
            .and_then(|_| check_common(&head, None));
        return match checked {
            Ok(()) => Verdict::Accept { len: buf.len() },
            Err(f) => Verdict::Drop {
                reason: format!("malformed response: {}", f.reason),
            },
        };
    }
    let body_len = buf.len() - head_end - 4;
    let method = head.start.split(' ').next().unwrap_or_default();
    let outcome = if buf.len() > max_len {
        Err(Fault {
            status: 513,
            reason: format!("Message Too Large ({} > {max_len} bytes)", buf.len()),
        })
    } else {
        check_request(&head, body_len)
    };
    match outcome {
        Ok(cut) => Verdict::Accept {
            len: head_end + 4 + cut.unwrap_or(body_len),
        },
        Err(fault) if method == "ACK" => Verdict::Drop {
            reason: format!("malformed ACK (never answered): {}", fault.reason),
        },
        Err(fault) => match build_response(&head, &fault, server) {
            Some(response) => Verdict::Reply {
                status: fault.status,
                reason: fault.reason,
                response,
            },
            None => Verdict::Drop {
                reason: format!("{} (no Via to answer to)", fault.reason),
            },
        },
    }
}

/// Checks a request head; `Ok(Some(n))` means the body is cut to `n` bytes (Content-Length).
fn check_request(head: &Head<'_>, body_len: usize) -> Result<Option<usize>, Fault> {
    check_malformed_lines(head)?;
    let method = check_request_line(head.start)?;
    check_common(head, Some(method))?;
    if head.count("Max-Forwards", None) == 0 {
        return Err(bad("Missing Max-Forwards"));
    }
    let mf = head.one("Max-Forwards", None).unwrap_or_default();
    if mf.trim().parse::<u8>().is_err() {
        return Err(bad("Bad Max-Forwards"));
    }
    let cut = check_content_length(head, body_len)?;
    if !KNOWN_METHODS.contains(&method) {
        return Err(Fault {
            status: 501,
            reason: "Not Implemented".into(),
        });
    }
    Ok(cut)
}

/// Header rules shared by requests and responses.
fn check_common(head: &Head<'_>, method: Option<&str>) -> Result<(), Fault> {
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
    ] {
        if head.count(long, short) > 1 {
            return Err(bad(format!("Duplicate {long}")));
        }
    }
    for via in head.all("Via", Some("v")) {
        check_via(&via.value)?;
    }
    check_name_addr("From", head.one("From", Some("f")).unwrap_or_default())?;
    check_name_addr("To", head.one("To", Some("t")).unwrap_or_default())?;
    let call_id = head.one("Call-ID", Some("i")).unwrap_or_default().trim();
    if call_id.is_empty() || call_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("Bad Call-ID"));
    }
    let cseq = head.one("CSeq", None).unwrap_or_default();
    let (num, cseq_method) = cseq
        .trim()
        .split_once([' ', '\t'])
        .ok_or_else(|| bad("Bad CSeq"))?;
    let num: u64 = num.parse().map_err(|_| bad("Bad CSeq number"))?;
    if num >= 1 << 31 {
        return Err(bad("CSeq number out of range"));
    }
    let cseq_method = cseq_method.trim();
    if !is_token(cseq_method) {
        return Err(bad("Bad CSeq method"));
    }
    if let Some(m) = method {
        if m != cseq_method {
            return Err(bad("CSeq method does not match request"));
        }
    }
    Ok(())
}

fn check_content_length(head: &Head<'_>, body_len: usize) -> Result<Option<usize>, Fault> {
    let Some(cl) = head.one("Content-Length", Some("l")) else {
        return Ok(None);
    };
    let cl: usize = cl.trim().parse().map_err(|_| bad("Bad Content-Length"))?;
    if cl > body_len {
        return Err(bad("Content-Length exceeds body"));
    }
    Ok(Some(cl))
}

/// `Method SP Request-URI SP SIP/2.0` (RFC 3261 §7.1); returns the method.
fn check_request_line(line: &str) -> Result<&str, Fault> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Err(bad("Bad Request-Line"));
    };
    if !is_token(method) {
        return Err(bad("Bad Request-Line method"));
    }
    if version != "SIP/2.0" {
        return Err(Fault {
            status: 505,
            reason: "Version Not Supported".into(),
        });
    }
    check_uri(uri).map_err(|_| bad("Bad Request-URI"))?;
    Ok(method)
}

fn check_status_line(line: &str) -> Result<(), Fault> {
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

/// `SIP/2.0/TRANSPORT host[:port][;params]` for each comma-separated Via value (RFC 3261 §20.42).
fn check_via(value: &str) -> Result<(), Fault> {
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
        let sent_by = rest.trim().split(';').next().unwrap_or_default().trim();
        check_host_port(sent_by).map_err(|_| bad("Bad Via sent-by"))?;
    }
    Ok(())
}

/// `[display-name] <uri>;params` or `uri;params` (RFC 3261 §20.20, §20.39).
fn check_name_addr(name: &str, value: &str) -> Result<(), Fault> {
    let (uri, _) = super::name_addr::split(value).ok_or_else(|| bad(format!("Bad {name}")))?;
    check_uri(uri).map_err(|_| bad(format!("Bad {name} URI")))
}

/// A `sip:`/`sips:`/`tel:` URI with a non-empty host part (other schemes: a non-empty opaque part).
fn check_uri(uri: &str) -> Result<(), ()> {
    if uri.is_empty() || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(());
    }
    let (scheme, rest) = uri.split_once(':').ok_or(())?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(());
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host_port = host_part.split([';', '?']).next().unwrap_or_default();
        return check_host_port(host_port);
    }
    if rest.is_empty() {
        return Err(());
    }
    Ok(())
}

/// `host[:port]` where host is a name, IPv4 or `[IPv6]`.
fn check_host_port(s: &str) -> Result<(), ()> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(())?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| ())?;
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

/// A header line without a colon or with a bad name (recorded by [`split_head`]) is reported first,
/// so the answer names the real problem.
fn check_malformed_lines(head: &Head<'_>) -> Result<(), Fault> {
    match head.headers.iter().find(|h| h.name == MALFORMED) {
        Some(h) => Err(bad(format!("Malformed header line {}", h.value))),
        None => Ok(()),
    }
}

/// Placeholder name for a header line that could not be split; never a valid token.
const MALFORMED: &str = "\0malformed";

/// Splits the head into the start line and header lines, unfolding continuation lines.
fn split_head(text: &str) -> Result<Head<'_>, String> {
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default();
    if start.is_empty() || start.chars().any(|c| c.is_control()) {
        return Err("bad start line".into());
    }
    if !start.starts_with("SIP/") && !start.split(' ').next().is_some_and(is_token) {
        return Err("start line is neither a request nor a status line".into());
    }
    let mut headers: Vec<HeaderLine<'_>> = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            match headers.last_mut() {
                Some(h) => h.value = Cow::Owned(format!("{} {}", h.value, line.trim())),
                None => return Err("continuation line before any header".into()),
            }
            continue;
        }
        let line_no = i + 2;
        // No colon, a name that is not a token, or a control character in the value.
        let split = line
            .split_once(':')
            .map(|(n, v)| (n.trim_end(), v))
            .filter(|(n, v)| is_token(n) && !v.chars().any(|c| c.is_control() && c != '\t'));
        let Some((name, value)) = split else {
            headers.push(HeaderLine {
                name: MALFORMED,
                value: Cow::Owned(format!("{line_no}")),
            });
            continue;
        };
        headers.push(HeaderLine {
            name,
            value: Cow::Borrowed(value.trim()),
        });
    }
    Ok(Head { start, headers })
}

/// Builds the answer from the request's own raw headers (RFC 3261 §8.2.6.2); `None` without a Via.
fn build_response(head: &Head<'_>, fault: &Fault, server: &str) -> Option<Vec<u8>> {
    let vias: Vec<&str> = head
        .all("Via", Some("v"))
        .map(|h| h.value.as_ref())
        .filter(|v| check_via(v).is_ok())
        .collect();
    if vias.is_empty() {
        return None;
    }
    let mut out = format!("SIP/2.0 {} {}\r\n", fault.status, phrase(fault));
    for via in vias {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    if let Some(from) = head.one("From", Some("f")) {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = head.one("To", Some("t")) {
        let tag = if has_tag(to) {
            String::new()
        } else {
            format!(";tag={}", super::ids::tag())
        };
        out.push_str(&format!("To: {to}{tag}\r\n"));
    }
    for (name, short) in [("Call-ID", Some("i")), ("CSeq", None)] {
        if let Some(v) = head.one(name, short) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    if fault.status == 501 || fault.status == 405 {
        out.push_str(&format!("Allow: {}\r\n", super::ALLOWED_METHODS.join(", ")));
    }
    out.push_str(&format!("Server: {server}\r\nContent-Length: 0\r\n\r\n"));
    Some(out.into_bytes())
}

/// The reason phrase: the fault's reason, with a malformed-line note resolved.
fn phrase(fault: &Fault) -> String {
    fault.reason.replace(['\r', '\n'], " ")
}

fn has_tag(name_addr: &str) -> bool {
    super::name_addr::split(name_addr).is_some_and(|(_, params)| {
        super::name_addr::params(params)
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("tag"))
    })
}

/// Splits on commas that are not inside quotes or angle brackets.
pub(crate) fn split_commas(v: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut angle) = (Vec::new(), 0, false, false);
    for (i, c) in v.char_indices() {
        match c {
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

/// RFC 3261 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

fn looks_textual(buf: &[u8]) -> bool {
    buf.iter()
        .take(64)
        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\n' || b == b'\t')
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
