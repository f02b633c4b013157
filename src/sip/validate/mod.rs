//! Strict validation of raw SIP messages, on top of rsipstack's lenient parser (RFC 3261 §7, §8.1.1,
//! §18.3, §25.1; the categories of RFC 4475). Sans-IO: bytes in, a [`Verdict`] out.
//!
//! Strict where the RFC is strict: a request that breaks a rule is answered `400` (or `505` for an
//! unknown version, `416` for a Request-URI scheme we cannot serve, `501` for an unknown method, `513`
//! when too large) with a response built from its own raw Via/From/To/Call-ID/CSeq lines, so even
//! messages rsipstack cannot parse get an answer, and before any policy (ACL, digest) looks at them.
//! A message with no usable Via, a malformed response, an ACK, or bytes that are not SIP at all are
//! dropped: there is nobody to answer. Either way the caller logs the reason.
//!
//! Lenient where the RFC allows: folded lines, LWS around separators, `Name :` and RFC 2543
//! requests (no branch cookie, no From tag, no Max-Forwards) are legal; when rsipstack could not
//! read them as written, the verdict carries a normalised equivalent ([`Verdict::Normalised`]).
//!
//! | file | role |
//! |---|---|
//! | `head` | start line and header lines, unfolding and normalising |
//! | `fields` | the rule for each start line and header field |
//! | `syntax` | RFC 3261 §25.1 grammar pieces: token, quoted-string, URI, params |
//! | `response` | error answers from the raw request |

mod fields;
mod head;
mod response;
mod syntax;

use fields::{
    check_body_type, check_common, check_contacts, check_content_length, check_malformed_lines,
    check_request_line, check_scalars, check_status_line,
};
use head::{split_head, Head};
use response::build_response;

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
    /// Well-formed, but written in a way rsipstack cannot read (folding, LWS around separators, no
    /// From tag): hand the stack these equivalent bytes instead.
    Normalised {
        /// The normalised message (body cut to Content-Length).
        bytes: Vec<u8>,
    },
    /// Answer with `response` and discard the message.
    Reply {
        /// Status code of the answer (400, 416, 501, 505, 513).
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

/// Prefix of the From tag we give an RFC 2543 request that has none (RFC 3261 §8.2.6.2 and
/// rsipstack key transactions on it); [`crate::sip::inspect::Outgoing`] removes it from answers.
pub const SYNTHETIC_TAG_PREFIX: &str = "c2c2543-";

/// Judges one message. `max_len` is the largest message accepted; `server` goes into any answer.
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
    let mut head = match split_head(head_text) {
        Ok(h) => h,
        Err(reason) => return Verdict::Drop { reason },
    };
    let body = &buf[head_end + 4..];
    if head.start.starts_with("SIP/") {
        return check_response(&head, head_end + 4, body);
    }
    let method = head.start.split(' ').next().unwrap_or_default();
    let outcome = if buf.len() > max_len {
        Err(Fault {
            status: 513,
            reason: format!("Message Too Large ({} > {max_len} bytes)", buf.len()),
        })
    } else {
        check_request(&head, body)
    };
    match outcome {
        Ok(cut) => {
            add_missing_from_tag(&mut head);
            add_missing_content_length(&mut head, body);
            pass(&head, head_end + 4, &body[..cut.unwrap_or(body.len())])
        }
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

/// A message that passed: as it came (its first `head_len` bytes and the body kept), or rewritten
/// when the head had to be normalised.
fn pass(head: &Head<'_>, head_len: usize, keep: &[u8]) -> Verdict {
    if head.changed() {
        let mut bytes = head.render().into_bytes();
        bytes.extend_from_slice(keep);
        Verdict::Normalised { bytes }
    } else {
        Verdict::Accept {
            len: head_len + keep.len(),
        }
    }
}

/// A response is never answered (RFC 3261 §17.1.3); a malformed one is dropped before it reaches a
/// transaction. A legal one passes, normalised if needed.
fn check_response(head: &Head<'_>, head_len: usize, body: &[u8]) -> Verdict {
    let checked = check_malformed_lines(head)
        .and_then(|_| check_status_line(head.start))
        .and_then(|_| check_common(head, None))
        .and_then(|_| check_content_length(head, body.len()));
    match checked {
        Ok(cut) => pass(head, head_len, &body[..cut.unwrap_or(body.len())]),
        Err(f) => Verdict::Drop {
            reason: format!("malformed response: {}", f.reason),
        },
    }
}

/// Checks a request head; `Ok(Some(n))` means the body is cut to `n` bytes (Content-Length).
fn check_request(head: &Head<'_>, body: &[u8]) -> Result<Option<usize>, Fault> {
    check_malformed_lines(head)?;
    let (method, uri) = check_request_line(head.start)?;
    check_common(head, Some(method))?;
    check_scalars(head)?;
    check_contacts(head)?;
    let cut = check_content_length(head, body.len())?;
    check_body_type(head, &body[..cut.unwrap_or(body.len())], cut.is_some())?;
    if !matches!(syntax::scheme(uri).as_str(), "sip" | "sips" | "tel") {
        // RFC 3261 §8.2.2.1; RFC 4475 §3.3.2, §3.3.3.
        return Err(Fault {
            status: 416,
            reason: "Unsupported URI Scheme".into(),
        });
    }
    if !KNOWN_METHODS.contains(&method) {
        // RFC 3261 §8.2.1, §21.5.2; RFC 4475 §3.1.1.2.
        return Err(Fault {
            status: 501,
            reason: "Not Implemented".into(),
        });
    }
    Ok(cut)
}

/// An RFC 2543 request may have no From tag (RFC 3261 §12.2.2, RFC 4475 §3.4.1); give it a stable
/// one (same Call-ID and From, same tag) so rsipstack can key its transaction and dialog.
fn add_missing_from_tag(head: &mut Head<'_>) {
    use std::hash::{Hash, Hasher};
    let call_id = head
        .one("Call-ID", Some("i"))
        .unwrap_or_default()
        .to_string();
    let Some(from) = head
        .headers
        .iter_mut()
        .find(|h| h.name.eq_ignore_ascii_case("From") || h.name.eq_ignore_ascii_case("f"))
    else {
        return;
    };
    if response::has_tag(&from.value) {
        return;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (call_id.as_str(), from.value.as_ref()).hash(&mut hasher);
    let value = format!(
        "{};tag={SYNTHETIC_TAG_PREFIX}{:016x}",
        from.value,
        hasher.finish()
    );
    from.value = std::borrow::Cow::Owned(value);
    from.raw = None;
}

/// A datagram without Content-Length carries a body up to its end (RFC 3261 §18.3, §20.14;
/// RFC 4475 §3.4.1): say so, since rsipstack would read no body at all.
fn add_missing_content_length(head: &mut Head<'_>, body: &[u8]) {
    // Only line ends after the head are padding, not a body.
    if body.iter().all(u8::is_ascii_whitespace) || head.count("Content-Length", Some("l")) > 0 {
        return;
    }
    head.headers.push(head::HeaderLine {
        name: "Content-Length",
        value: std::borrow::Cow::Owned(body.len().to_string()),
        raw: None,
    });
}

/// Splits on commas that are not inside quotes or angle brackets.
pub(crate) fn split_commas(v: &str) -> Vec<&str> {
    syntax::split_commas(v)
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
mod tests;
