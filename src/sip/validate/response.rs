//! Error answers built from the request's own raw header lines (RFC 3261 §8.2.6.2), so even a
//! request rsipstack could not parse gets one.

use super::head::Head;
use super::syntax::{check_host_port, split_commas};
use super::Fault;

/// Builds the answer; `None` without a usable Via (nobody to answer, RFC 3261 §18.2.2).
pub(super) fn build_response(head: &Head<'_>, fault: &Fault, server: &str) -> Option<Vec<u8>> {
    let vias: Vec<&str> = head
        .all("Via", Some("v"))
        .map(|h| h.value.as_ref())
        .filter(|v| answerable(v))
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
            format!(";tag={}", crate::sip::ids::tag())
        };
        out.push_str(&format!("To: {to}{tag}\r\n"));
    }
    for (name, short) in [("Call-ID", Some("i")), ("CSeq", None)] {
        if let Some(v) = head.one(name, short) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    if fault.status == 501 || fault.status == 405 {
        out.push_str(&format!(
            "Allow: {}\r\n",
            crate::sip::ALLOWED_METHODS.join(", ")
        ));
    }
    out.push_str(&format!("Server: {server}\r\nContent-Length: 0\r\n\r\n"));
    Some(out.into_bytes())
}

/// A Via we can answer along: its first value has a SIP/2.0 protocol and a valid sent-by, even if
/// its parameters or later values are what made the request invalid (RFC 4475 §3.1.2.1).
fn answerable(via: &str) -> bool {
    let first = split_commas(via)
        .into_iter()
        .next()
        .unwrap_or_default()
        .trim();
    let Some((proto, rest)) = first.split_once([' ', '\t']) else {
        return false;
    };
    let mut p = proto.split('/');
    let proto_ok = p.next().is_some_and(|n| n.eq_ignore_ascii_case("SIP"))
        && p.next() == Some("2.0")
        && p.next().is_some_and(|t| !t.is_empty())
        && p.next().is_none();
    let sent_by = rest.split(';').next().unwrap_or_default().trim();
    proto_ok && check_host_port(sent_by).is_ok()
}

/// The reason phrase: the fault's reason on one line.
fn phrase(fault: &Fault) -> String {
    fault.reason.replace(['\r', '\n'], " ")
}

/// Whether a name-addr value carries a `tag` parameter.
pub(super) fn has_tag(name_addr: &str) -> bool {
    crate::sip::name_addr::split(name_addr).is_some_and(|(_, params)| {
        crate::sip::name_addr::params(params)
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("tag"))
    })
}
