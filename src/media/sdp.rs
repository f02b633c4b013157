//! SDP offer/answer for the SIP side (RFC 3264, RFC 4566): plain RTP/AVP audio with PCMU/PCMA and
//! telephone-event. Parsing is rtc-sdp's; the negotiation is ours. Sans-IO: text in, text and a
//! [`Negotiated`] description out.
//!
//! Answer rules: one answer m-line per offered m-line, in order (RFC 3264 §6); the first usable audio
//! stream is accepted with one codec (our preference among the offer's, keeping the offerer's payload
//! type) plus telephone-event at that codec's clock rate when offered; every other stream is refused
//! with port 0. Hold is understood in both forms (`a=sendonly`/`inactive`, and `c=0.0.0.0`).

use rtc_sdp::SessionDescription;
use std::fmt::Write as _;
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

/// Largest SDP body accepted.
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Most m-lines accepted in one body.
pub const MAX_MEDIA: usize = 16;

/// Why an SDP body cannot be used; each maps to a SIP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Larger than [`MAX_SDP_BYTES`].
    #[error("SDP larger than {MAX_SDP_BYTES} bytes")]
    TooLarge,
    /// More m-lines than [`MAX_MEDIA`].
    #[error("SDP has {0} media lines (at most {MAX_MEDIA})")]
    TooManyMedia(usize),
    /// Not parseable SDP.
    #[error("unparseable SDP: {0}")]
    Unparseable(String),
    /// No audio m-line at all.
    #[error("no audio stream offered")]
    NoAudio,
    /// Audio, but no codec we support (or only secure/unknown profiles).
    #[error("no common audio codec")]
    NoCommonCodec,
    /// The connection address is missing or not an IP address.
    #[error("bad or missing connection address")]
    BadConnection,
}

impl SdpError {
    /// The SIP status to answer an INVITE with: 488 for what we cannot do, 400 for what is broken.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::NoAudio | SdpError::NoCommonCodec => 488,
            _ => 400,
        }
    }
}

/// A payload format: RTP payload type, encoding name, clock rate, channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// RTP payload type (the offerer's, in an answer).
    pub pt: u8,
    /// Encoding name as we write it (`PCMU`, `PCMA`, `opus`, `telephone-event`).
    pub name: String,
    /// RTP clock rate.
    pub rate: u32,
    /// Channels (1 for G.711).
    pub channels: u8,
}

impl Format {
    /// PCMU/8000 on its static type 0.
    pub fn pcmu() -> Self {
        Format {
            pt: 0,
            name: "PCMU".into(),
            rate: 8000,
            channels: 1,
        }
    }
    /// PCMA/8000 on its static type 8.
    pub fn pcma() -> Self {
        Format {
            pt: 8,
            name: "PCMA".into(),
            rate: 8000,
            channels: 1,
        }
    }
    /// telephone-event/8000 on type 101.
    pub fn telephone_event() -> Self {
        Format {
            pt: 101,
            name: "telephone-event".into(),
            rate: 8000,
            channels: 1,
        }
    }

    fn same_codec(&self, other: &Format) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.rate == other.rate
            && self.channels == other.channels
    }
}

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// The describing side only sends (puts the other on hold).
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The answerer's direction for an offer in this direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// True when the peer will send us media in this direction (as the peer's own direction).
    pub fn peer_sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// What was agreed for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP; `None` while the peer holds with `c=0.0.0.0` or port 0.
    pub remote: Option<SocketAddr>,
    /// The audio codec.
    pub codec: Format,
    /// telephone-event, when both sides have it at the codec's rate.
    pub dtmf: Option<Format>,
    /// Packetisation time in milliseconds.
    pub ptime_ms: u32,
    /// The peer's direction (e.g. `SendOnly` = the peer holds us).
    pub peer_direction: Direction,
}

impl Negotiated {
    /// True when the peer holds us (RFC 3264 §8.4): it only sends, or nothing flows, or it gave
    /// no address (`c=0.0.0.0`, the RFC 2543 way).
    pub fn peer_holds(&self) -> bool {
        self.remote.is_none()
            || matches!(
                self.peer_direction,
                Direction::SendOnly | Direction::Inactive
            )
    }
}

/// Our side of the session: the o= line's id and version, bumped when our SDP changes (RFC 3264 §8).
#[derive(Debug, Clone)]
pub struct SdpSession {
    id: u64,
    version: u64,
    last_media: Option<String>,
}

impl SdpSession {
    /// A session with this id (random per call leg).
    pub fn new(id: u64) -> Self {
        SdpSession {
            id,
            version: 1,
            last_media: None,
        }
    }

    /// The full body around `media`, bumping the version only when `media` differs from last time.
    fn body(&mut self, local_ip: IpAddr, media: String) -> String {
        if self.last_media.as_ref().is_some_and(|m| m != &media) {
            self.version += 1;
        }
        self.last_media = Some(media.clone());
        let ipv = if local_ip.is_ipv4() { "IP4" } else { "IP6" };
        format!(
            "v=0\r\no=- {} {} IN {ipv} {local_ip}\r\ns=clicktocall\r\nc=IN {ipv} {local_ip}\r\nt=0 0\r\n{media}",
            self.id, self.version
        )
    }

    /// An offer for audio with `codecs` (preference order) and optionally telephone-event/8000.
    pub fn offer(
        &mut self,
        local: SocketAddr,
        codecs: &[Format],
        dtmf: bool,
        ptime_ms: u32,
        dir: Direction,
    ) -> String {
        let mut fmts: Vec<Format> = codecs.to_vec();
        if dtmf {
            fmts.push(Format::telephone_event());
        }
        let media = media_section(local.port(), &fmts, ptime_ms, dir);
        self.body(local.ip(), media)
    }

    /// Answers `offer` (see module docs). `prefs` is our codec preference order (payload types ignored).
    pub fn answer(
        &mut self,
        offer: &str,
        local: SocketAddr,
        prefs: &[Format],
        dir_override: Option<Direction>,
    ) -> Result<(String, Negotiated), SdpError> {
        let sdp = parse(offer)?;
        let mut media = String::new();
        let mut chosen: Option<Negotiated> = None;
        let mut saw_audio = false;
        for md in &sdp.media_descriptions {
            let is_audio = md.media_name.media == "audio";
            saw_audio |= is_audio;
            if chosen.is_none() && is_audio && is_plain_rtp(&md.media_name.protos) {
                if let Some(n) = negotiate_stream(&sdp, md, prefs)? {
                    let dir = dir_override.unwrap_or(n.peer_direction.answer());
                    let mut fmts = vec![n.codec.clone()];
                    fmts.extend(n.dtmf.clone());
                    let port = if md.media_name.port.value == 0 {
                        0
                    } else {
                        local.port()
                    };
                    media.push_str(&media_section(port, &fmts, n.ptime_ms, dir));
                    chosen = Some(n);
                    continue;
                }
            }
            // Refused stream: same media and formats, port 0 (RFC 3264 §6).
            let fmts = md.media_name.formats.join(" ");
            let _ = write!(
                media,
                "m={} 0 {} {}\r\n",
                md.media_name.media,
                md.media_name.protos.join("/"),
                fmts
            );
        }
        let negotiated = chosen.ok_or(if saw_audio {
            SdpError::NoCommonCodec
        } else {
            SdpError::NoAudio
        })?;
        Ok((self.body(local.ip(), media), negotiated))
    }
}

impl SdpSession {
    /// An offer of several audio streams from `ip`, each `(port, label)` (RFC 4574 `a=label`), all
    /// with `codecs` and in `dir`: a SIPREC recording session's streams.
    pub fn offer_labelled(
        &mut self,
        ip: IpAddr,
        streams: &[(u16, &str)],
        codecs: &[Format],
        dir: Direction,
    ) -> String {
        let mut media = String::new();
        for (port, label) in streams {
            media.push_str(&media_section(*port, codecs, 20, dir));
            let _ = write!(media, "a=label:{label}\r\n");
        }
        self.body(ip, media)
    }
}

/// Reads the answer to a several-stream offer: per m-line, in order, what was agreed (`None`: the
/// answerer refused that stream, or it is not plain RTP audio with a format we offered).
pub fn read_answer_streams(
    answer: &str,
    offered: &[Format],
) -> Result<Vec<Option<Negotiated>>, SdpError> {
    let sdp = parse(answer)?;
    let mut out = Vec::new();
    for md in &sdp.media_descriptions {
        let usable = md.media_name.media == "audio"
            && md.media_name.port.value != 0
            && is_plain_rtp(&md.media_name.protos);
        out.push(if usable {
            negotiate_stream(&sdp, md, offered)?
        } else {
            None
        });
    }
    Ok(out)
}

/// Reads the answer to an offer we made with `offered` formats.
pub fn read_answer(answer: &str, offered: &[Format]) -> Result<Negotiated, SdpError> {
    let sdp = parse(answer)?;
    let mut saw_audio = false;
    for md in &sdp.media_descriptions {
        if md.media_name.media != "audio" {
            continue;
        }
        saw_audio = true;
        if md.media_name.port.value == 0 || !is_plain_rtp(&md.media_name.protos) {
            continue;
        }
        // The answerer's order wins for what it sends; we take its first format we offered.
        if let Some(n) = negotiate_stream(&sdp, md, offered)? {
            return Ok(n);
        }
    }
    Err(if saw_audio {
        SdpError::NoCommonCodec
    } else {
        SdpError::NoAudio
    })
}

/// Size and m-line limits, then rtc-sdp's parser.
fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    let m_lines = text.lines().filter(|l| l.starts_with("m=")).count();
    if m_lines > MAX_MEDIA {
        return Err(SdpError::TooManyMedia(m_lines));
    }
    if text.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge);
    }
    // rtc-sdp wants CRLF or LF line ends and a trailing newline.
    let mut owned = text.to_string();
    if !owned.ends_with('\n') {
        owned.push_str("\r\n");
    }
    SessionDescription::unmarshal(&mut Cursor::new(owned.as_bytes()))
        .map_err(|e| SdpError::Unparseable(e.to_string()))
}

fn is_plain_rtp(protos: &[String]) -> bool {
    let p = protos.join("/");
    p == "RTP/AVP" || p == "RTP/AVPF"
}

/// The formats of one m-line, with static types filled in where no rtpmap is given.
fn formats(md: &rtc_sdp::MediaDescription) -> Vec<Format> {
    let codecs = md.codecs();
    md.media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| match codecs.get(&pt) {
            Some(c) => Some(Format {
                pt,
                name: c.name.clone(),
                rate: c.clock_rate,
                channels: c.encoding_parameters.parse().unwrap_or(1),
            }),
            None if pt == 0 => Some(Format::pcmu()),
            None if pt == 8 => Some(Format::pcma()),
            None => None,
        })
        .collect()
}

/// Picks the codec (our preference among `prefs` present in the m-line, with the m-line's payload
/// type), telephone-event at that rate, ptime, direction and address. `Ok(None)`: no common codec.
fn negotiate_stream(
    sdp: &SessionDescription,
    md: &rtc_sdp::MediaDescription,
    prefs: &[Format],
) -> Result<Option<Negotiated>, SdpError> {
    let offered = formats(md);
    let Some(codec) = prefs
        .iter()
        .find_map(|want| offered.iter().find(|f| f.same_codec(want)))
        .cloned()
    else {
        return Ok(None);
    };
    let dtmf = offered
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("telephone-event") && f.rate == codec.rate)
        .cloned();
    let ptime_ms = md
        .attribute("ptime")
        .flatten()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|p| (10..=120).contains(p))
        .unwrap_or(20);
    let attr = |k: &str| md.has_attribute(k) || sdp.has_attribute(k);
    let mut peer_direction = if attr("inactive") {
        Direction::Inactive
    } else if attr("sendonly") {
        Direction::SendOnly
    } else if attr("recvonly") {
        Direction::RecvOnly
    } else {
        Direction::SendRecv
    };
    let conn = md
        .connection_information
        .as_ref()
        .or(sdp.connection_information.as_ref());
    let ip: IpAddr = conn
        .and_then(|c| c.address.as_ref())
        .and_then(|a| a.address.split('/').next()?.parse().ok())
        .ok_or(SdpError::BadConnection)?;
    let port = u16::try_from(md.media_name.port.value).map_err(|_| SdpError::BadConnection)?;
    let remote = if ip.is_unspecified() || port == 0 {
        // RFC 2543 hold (c=0.0.0.0): the peer sends, we must not.
        if ip.is_unspecified() && peer_direction == Direction::SendRecv {
            peer_direction = Direction::SendOnly;
        }
        None
    } else {
        Some(SocketAddr::new(ip, port))
    };
    Ok(Some(Negotiated {
        remote,
        codec,
        dtmf,
        ptime_ms,
        peer_direction,
    }))
}

fn media_section(port: u16, fmts: &[Format], ptime_ms: u32, dir: Direction) -> String {
    let pts: Vec<String> = fmts.iter().map(|f| f.pt.to_string()).collect();
    let mut s = format!("m=audio {port} RTP/AVP {}\r\n", pts.join(" "));
    for f in fmts {
        if f.channels > 1 {
            let _ = write!(
                s,
                "a=rtpmap:{} {}/{}/{}\r\n",
                f.pt, f.name, f.rate, f.channels
            );
        } else {
            let _ = write!(s, "a=rtpmap:{} {}/{}\r\n", f.pt, f.name, f.rate);
        }
        if f.name.eq_ignore_ascii_case("telephone-event") {
            let _ = write!(s, "a=fmtp:{} 0-15\r\n", f.pt);
        }
    }
    let _ = write!(s, "a=ptime:{ptime_ms}\r\na={}\r\n", dir.attr());
    s
}

#[cfg(test)]
#[path = "sdp_tests.rs"]
mod tests;
