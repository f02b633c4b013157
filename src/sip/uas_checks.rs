//! The checks a UAS makes of a well-formed request before acting on it (RFC 3261 §8.2.2.3, §8.2.3,
//! §16.3), each answered with its own status: 420 for an extension we do not support, 415 for a body
//! we cannot read, 483 for an INVITE out of hops. Sans-IO: a parsed request in, a refusal out.

use rsipstack::rsip::{self, Header, StatusCode};

/// Option tags we support as a UAS (the `Supported` we advertise in OPTIONS).
pub const SUPPORTED: &[&str] = &["replaces", "timer"];

/// Body types an INVITE may carry: an SDP offer, or a multipart body holding one (RFC 5621).
pub const ACCEPTED_BODIES: &[&str] = &["application/sdp", "multipart/mixed"];

/// Why a request is refused: the status and the headers that explain it.
#[derive(Debug)]
pub struct Refusal {
    /// 420, 415 or 483.
    pub status: StatusCode,
    /// Unsupported, Accept.
    pub headers: Vec<Header>,
}

/// `Require`d option tags we do not support: 420 listing them in `Unsupported` (RFC 3261 §8.2.2.3;
/// RFC 4475 §3.3.5). `Proxy-Require` is for proxies and ignored (§20.29).
pub fn unsupported_extensions(req: &rsip::Request) -> Option<Refusal> {
    let unknown: Vec<String> = req
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Require(r) => Some(r.value().to_string()),
            _ => None,
        })
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty() && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    (!unknown.is_empty()).then(|| Refusal {
        status: StatusCode::BadExtension,
        headers: vec![Header::Unsupported(unknown.join(", ").into())],
    })
}

/// An INVITE body of a type we cannot read: 415 with `Accept` (RFC 3261 §8.2.3; RFC 4475 §3.3.6).
pub fn unsupported_body(req: &rsip::Request) -> Option<Refusal> {
    if req.body.is_empty() {
        return None;
    }
    let media = req.headers.iter().find_map(|h| match h {
        Header::ContentType(c) => Some(
            c.value()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
        ),
        _ => None,
    })?;
    (!ACCEPTED_BODIES.contains(&media.as_str())).then(|| Refusal {
        status: StatusCode::UnsupportedMediaType,
        headers: vec![Header::Accept(ACCEPTED_BODIES.join(", ").into())],
    })
}

/// An INVITE whose `Accept` rules out SDP, the only body our answer can carry: 406 (RFC 3261
/// §8.2.3, §21.4.7; RFC 4475 §3.3.15). An empty `Accept` (no body wanted) is refused the same way.
pub fn unacceptable_answer(req: &rsip::Request) -> Option<Refusal> {
    let accepts: Vec<String> = req
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Accept(a) => Some(a.value().to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    if accepts.is_empty() {
        return None;
    }
    let sdp = accepts.iter().flat_map(|a| a.split(',')).any(|range| {
        let media = range.split(';').next().unwrap_or_default().trim();
        matches!(media, "application/sdp" | "application/*" | "*/*")
    });
    (!sdp).then(|| Refusal {
        status: StatusCode::NotAcceptable,
        headers: vec![Header::Accept("application/sdp".into())],
    })
}

/// An INVITE with `Max-Forwards: 0`: the gateway would send it on as a new call, so like a proxy it
/// answers 483 (RFC 3261 §16.3 item 3; RFC 4475 §3.3.11 lets an endpoint serve OPTIONS instead).
pub fn too_many_hops(req: &rsip::Request) -> Option<Refusal> {
    let zero = req
        .headers
        .iter()
        .any(|h| matches!(h, Header::MaxForwards(m) if m.value().trim().parse::<u32>() == Ok(0)));
    zero.then(|| Refusal {
        status: StatusCode::TooManyHops,
        headers: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str, body: &str) -> rsip::Request {
        let text = format!(
            "INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\n\
             To: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match rsip::SipMessage::try_from(text.as_str()).unwrap() {
            rsip::SipMessage::Request(r) => r,
            _ => unreachable!(),
        }
    }

    #[test]
    fn unknown_required_extensions_are_listed_known_ones_pass() {
        let r = unsupported_extensions(&req("Require: timer, frob\r\nRequire: zap\r\n", ""))
            .expect("refused");
        assert_eq!(r.status, StatusCode::BadExtension);
        assert_eq!(r.headers[0].to_string(), "Unsupported: frob, zap");
        assert!(unsupported_extensions(&req("Require: Timer, replaces\r\n", "")).is_none());
        assert!(unsupported_extensions(&req("Proxy-Require: frob\r\n", "")).is_none());
    }

    #[test]
    fn bodies_other_than_sdp_get_415_and_max_forwards_zero_483() {
        let xml = req("Content-Type: application/x-thing\r\n", "<x/>");
        assert_eq!(
            unsupported_body(&xml).unwrap().status,
            StatusCode::UnsupportedMediaType
        );
        let sdp = req("Content-Type: Application/SDP;charset=x\r\n", "v=0\r\n");
        assert!(unsupported_body(&sdp).is_none());
        assert!(too_many_hops(&req("Max-Forwards: 0\r\n", "")).is_some());
        assert!(too_many_hops(&req("Max-Forwards: 1\r\n", "")).is_none());
    }

    #[test]
    fn an_accept_without_sdp_gets_406() {
        let refused = unacceptable_answer(&req("Accept: text/nobody-reads-this\r\n", ""));
        assert_eq!(refused.unwrap().status, StatusCode::NotAcceptable);
        for ok in [
            "",
            "Accept: application/sdp\r\n",
            "Accept: text/html, Application/SDP;level=1\r\n",
            "Accept: */*\r\n",
        ] {
            assert!(unacceptable_answer(&req(ok, "")).is_none(), "{ok:?}");
        }
    }
}
