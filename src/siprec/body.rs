//! The recording session's bodies, sans-IO: our offer (SDP with the two labelled `sendonly`
//! streams, and the metadata, as `multipart/mixed`, RFC 7866 §8.1) and what we read out of the
//! recorder's answer (its SDP, bare or in a multipart; the address and codec of each stream).

use crate::media::sdp::{read_answer_streams, Direction, Format, SdpSession};
use std::net::{IpAddr, SocketAddr};

/// The boundary of our multipart bodies (it never occurs in an SDP or our XML: both are ours).
pub const BOUNDARY: &str = "clicktocall-siprec-7f3a9c";

/// The codecs we offer the recorder: G.711, which every recorder takes.
pub fn offered_formats() -> Vec<Format> {
    vec![Format::pcmu(), Format::pcma()]
}

/// Our `Content-Type` for a body from [`multipart`].
pub fn content_type() -> String {
    format!("multipart/mixed;boundary={BOUNDARY}")
}

/// The SDP offer: stream 1 (the customer) from `ports.0`, stream 2 (the agents) from `ports.1`,
/// `sendonly`, or `inactive` while the recording is paused.
pub fn offer_sdp(sdp: &mut SdpSession, ip: IpAddr, ports: (u16, u16), paused: bool) -> String {
    let dir = if paused {
        Direction::Inactive
    } else {
        Direction::SendOnly
    };
    sdp.offer_labelled(
        ip,
        &[
            (ports.0, super::metadata::CUSTOMER_LABEL),
            (ports.1, super::metadata::AGENTS_LABEL),
        ],
        &offered_formats(),
        dir,
    )
}

/// The `multipart/mixed` body: the SDP, then the metadata (RFC 7866 §8.1, RFC 7865 §5).
pub fn multipart(sdp: &str, metadata_xml: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n\
         --{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\n\
         Content-Disposition: recording-session\r\n\r\n{metadata_xml}\r\n--{BOUNDARY}--\r\n"
    )
}

/// The SDP in a response body: the body itself, or its `application/sdp` part when it is a
/// multipart (the boundary is read from the body's first delimiter line, RFC 2046 §5.1.1).
pub fn sdp_of(body: &str) -> Option<&str> {
    let trimmed = body.trim_start();
    if trimmed.starts_with("v=") {
        return Some(trimmed);
    }
    let first = trimmed.lines().next()?.trim_end();
    let boundary = first.strip_prefix("--")?;
    if boundary.is_empty() {
        return None;
    }
    let delimiter = format!("--{boundary}");
    trimmed.split(delimiter.as_str()).find_map(|part| {
        let (head, content) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))?;
        head.lines()
            .any(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("content-type:") && l.contains("application/sdp")
            })
            .then_some(content)
    })
}

/// Where each stream goes, from the recorder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Stream 1 (the customer): address and format.
    pub customer: (SocketAddr, Format),
    /// Stream 2 (the agents).
    pub agents: (SocketAddr, Format),
}

/// Reads the recorder's answer: both streams must be accepted, with an address and a G.711
/// format; anything else is a reason (the recorder is then treated as one that refused).
pub fn read_targets(body: &str) -> Result<Targets, String> {
    let sdp = sdp_of(body).ok_or("the answer has no SDP")?;
    let streams = read_answer_streams(sdp, &offered_formats())
        .map_err(|e| format!("the answer's SDP: {e}"))?;
    let stream = |i: usize| {
        let n = streams
            .get(i)
            .cloned()
            .flatten()
            .ok_or(format!("the recorder refused stream {}", i + 1))?;
        let to = n
            .remote
            .ok_or(format!("the recorder gave stream {} no address", i + 1))?;
        Ok::<_, String>((to, n.codec))
    };
    Ok(Targets {
        customer: stream(0)?,
        agents: stream(1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(port2: u16) -> String {
        format!(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na=recvonly\r\n\
             m=audio {port2} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=label:2\r\na=recvonly\r\n"
        )
    }

    #[test]
    fn the_offer_has_two_labelled_sendonly_streams_and_pauses_inactive() {
        let mut s = SdpSession::new(7);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let live = offer_sdp(&mut s, ip, (30000, 30002), false);
        assert_eq!(live.matches("m=audio ").count(), 2);
        assert!(live.contains("m=audio 30000 RTP/AVP 0 8\r\n"));
        assert!(live.contains("m=audio 30002 RTP/AVP 0 8\r\n"));
        assert!(live.contains("a=label:1\r\n") && live.contains("a=label:2\r\n"));
        assert_eq!(live.matches("a=sendonly").count(), 2);
        let paused = offer_sdp(&mut s, ip, (30000, 30002), true);
        assert_eq!(paused.matches("a=inactive").count(), 2);
        assert!(
            paused.contains("o=- 7 2 "),
            "a changed offer is a new version: {paused}"
        );
    }

    #[test]
    fn the_body_is_multipart_with_sdp_then_metadata() {
        let body = multipart("v=0\r\n", "<recording/>");
        assert!(body.starts_with(&format!(
            "--{BOUNDARY}\r\nContent-Type: application/sdp\r\n"
        )));
        assert!(body.contains("Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n<recording/>"));
        assert!(body.ends_with(&format!("--{BOUNDARY}--\r\n")));
        assert_eq!(sdp_of(&body), Some("v=0\r\n\r\n"));
    }

    #[test]
    fn targets_come_from_a_bare_or_a_multipart_answer() {
        let want = Targets {
            customer: ("127.0.0.1:7000".parse().unwrap(), Format::pcmu()),
            agents: ("127.0.0.1:7002".parse().unwrap(), Format::pcma()),
        };
        assert_eq!(read_targets(&answer(7002)), Ok(want.clone()));
        let multi = format!(
            "--b1\r\nContent-Type: application/rs-metadata+xml\r\n\r\n<x/>\r\n--b1\r\n\
             Content-Type: application/sdp\r\n\r\n{}\r\n--b1--\r\n",
            answer(7002)
        );
        assert_eq!(read_targets(&multi), Ok(want));
    }

    #[test]
    fn an_answer_that_refuses_a_stream_or_has_none_is_a_reason() {
        assert_eq!(
            read_targets(&answer(0)),
            Err("the recorder refused stream 2".into())
        );
        assert!(read_targets("").is_err());
        assert!(read_targets("--\r\n").is_err());
        assert!(read_targets("--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--").is_err());
        assert!(read_targets("v=0\r\nm=audio x\r\n").is_err());
    }
}
