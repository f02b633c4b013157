//! DTMF as RFC 4733 telephone-events: parsing and writing event payloads, converting them between
//! clock rates (browsers send telephone-event/48000, phones telephone-event/8000), recognising each
//! digit exactly once despite the repeated and retransmitted packets of one event, generating the
//! packets for a digit, and SIP INFO `application/dtmf-relay` bodies. Sans-IO.

/// One RFC 4733 §2.3 event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// Event code: 0-9, 10 = `*`, 11 = `#`, 12-15 = A-D.
    pub code: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level, 0 to -63 dBm0 (as 0..=63).
    pub volume: u8,
    /// Duration so far, in units of the RTP clock.
    pub duration: u16,
}

/// Why a payload is not a DTMF event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// Shorter than the 4 bytes of an event.
    #[error("telephone-event payload shorter than 4 bytes")]
    TooShort,
    /// An event code that is not a DTMF digit (16+ are other tones).
    #[error("event code {0} is not a DTMF digit")]
    NotDtmf(u8),
}

impl DtmfEvent {
    /// Parses the first event of a payload (RFC 4733 §2.3).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [code, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort);
        };
        if code > 15 {
            return Err(DtmfError::NotDtmf(code));
        }
        Ok(DtmfEvent {
            code,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.code,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }

    /// The digit this event stands for.
    pub fn digit(self) -> char {
        code_to_digit(self.code).unwrap_or('?')
    }

    /// The same event at another clock rate (duration rescaled, saturating at 0xffff).
    pub fn rescaled(self, from_rate: u32, to_rate: u32) -> Self {
        DtmfEvent {
            duration: rescale(u32::from(self.duration), from_rate, to_rate).min(0xffff) as u16,
            ..self
        }
    }
}

/// Rescales a duration or timestamp delta between clock rates, rounding to nearest.
pub fn rescale(ticks: u32, from_rate: u32, to_rate: u32) -> u32 {
    if from_rate == to_rate || from_rate == 0 {
        return ticks;
    }
    ((u64::from(ticks) * u64::from(to_rate) + u64::from(from_rate) / 2) / u64::from(from_rate))
        as u32
}

/// `0-9 * # A-D` to event codes.
pub fn digit_to_code(d: char) -> Option<u8> {
    match d.to_ascii_uppercase() {
        c @ '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        c @ 'A'..='D' => Some(c as u8 - b'A' + 12),
        _ => None,
    }
}

/// Event codes to `0-9 * # A-D`.
pub fn code_to_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

/// Recognises digits in a stream of telephone-event packets, each digit once.
///
/// All packets of one event share its RTP timestamp (RFC 4733 §2.5.1.1), and the final packet is sent
/// three times (§2.5.1.4). A digit is reported at the first packet of a new timestamp, so a lost start
/// packet still yields the digit from a later one, and retransmitted end packets yield nothing.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    current: Option<u32>,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet (its RTP timestamp and payload); returns the digit when a new event starts.
    pub fn handle_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = DtmfEvent::parse(payload).ok()?;
        if self.current == Some(timestamp) {
            return None;
        }
        self.current = Some(timestamp);
        code_to_digit(ev.code)
    }
}

/// One packet of a generated event: send it `offset_ms` after the event starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPacket {
    /// Milliseconds after the start of the event.
    pub offset_ms: u32,
    /// Set on the first packet (RFC 4733 §2.5.1.3).
    pub marker: bool,
    /// The payload.
    pub event: DtmfEvent,
}

/// The packets for one digit lasting `duration_ms`, one every `interval_ms`, the end packet sent three
/// times (RFC 4733 §2.5.1). All share the event's RTP timestamp, chosen by the sender.
pub fn event_packets(
    digit: char,
    duration_ms: u32,
    interval_ms: u32,
    clock_rate: u32,
) -> Option<Vec<EventPacket>> {
    let code = digit_to_code(digit)?;
    let interval = interval_ms.max(10);
    let ticks = |ms: u32| (u64::from(ms) * u64::from(clock_rate) / 1000).min(0xffff) as u16;
    let mut out = Vec::new();
    let mut t = 0;
    while t + interval < duration_ms {
        t += interval;
        out.push(EventPacket {
            offset_ms: t - interval,
            marker: out.is_empty(),
            event: DtmfEvent {
                code,
                end: false,
                volume: 10,
                duration: ticks(t),
            },
        });
    }
    for i in 0..3 {
        out.push(EventPacket {
            offset_ms: duration_ms.max(t) + i * interval,
            marker: out.is_empty(),
            event: DtmfEvent {
                code,
                end: true,
                volume: 10,
                duration: ticks(duration_ms),
            },
        });
    }
    Some(out)
}

/// Reads the digit of a SIP INFO body (`application/dtmf-relay`: `Signal=5\r\nDuration=160`, or
/// `application/dtmf`: `5`).
pub fn parse_info_body(content_type: &str, body: &str) -> Option<char> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let value = match ct.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?,
        "application/dtmf" => body.trim(),
        _ => return None,
    };
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => digit_to_code(c).and_then(code_to_digit),
        // Some phones send the event code for * and # ("10", "11").
        _ => value.parse::<u8>().ok().and_then(code_to_digit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_rescale() {
        let ev = DtmfEvent {
            code: 11,
            end: true,
            volume: 10,
            duration: 4800,
        };
        assert_eq!(DtmfEvent::parse(&ev.to_bytes()).unwrap(), ev);
        assert_eq!(ev.digit(), '#');
        // 100 ms: 4800 ticks at 48 kHz is 800 at 8 kHz, and back.
        assert_eq!(ev.rescaled(48000, 8000).duration, 800);
        assert_eq!(ev.rescaled(48000, 8000).rescaled(8000, 48000), ev);
        assert_eq!(DtmfEvent::parse(&[1, 2]), Err(DtmfError::TooShort));
        assert_eq!(
            DtmfEvent::parse(&[70, 0, 0, 0]),
            Err(DtmfError::NotDtmf(70))
        );
    }

    #[test]
    fn each_digit_once_despite_repeats_and_retransmitted_ends() {
        let mut rx = DtmfReceiver::new();
        let mut heard = String::new();
        for (i, d) in "159#*0".chars().enumerate() {
            let ts = 1000 + i as u32 * 8000;
            for p in event_packets(d, 100, 20, 8000).unwrap() {
                if let Some(d) = rx.handle_packet(ts, &p.event.to_bytes()) {
                    heard.push(d);
                }
            }
        }
        assert_eq!(heard, "159#*0");
    }

    #[test]
    fn the_same_digit_twice_in_a_row_counts_twice() {
        let mut rx = DtmfReceiver::new();
        let p = DtmfEvent {
            code: 5,
            end: false,
            volume: 10,
            duration: 160,
        }
        .to_bytes();
        assert_eq!(rx.handle_packet(100, &p), Some('5'));
        assert_eq!(rx.handle_packet(100, &p), None);
        assert_eq!(rx.handle_packet(900, &p), Some('5'));
    }

    #[test]
    fn generated_packets_follow_rfc4733() {
        let pkts = event_packets('7', 100, 20, 8000).unwrap();
        assert!(pkts[0].marker && pkts.iter().skip(1).all(|p| !p.marker));
        let ends: Vec<_> = pkts.iter().filter(|p| p.event.end).collect();
        assert_eq!(ends.len(), 3);
        assert!(ends.iter().all(|p| p.event.duration == 800));
        let durations: Vec<u16> = pkts.iter().map(|p| p.event.duration).collect();
        assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");
        assert!(event_packets('x', 100, 20, 8000).is_none());
    }

    #[test]
    fn sip_info_bodies() {
        assert_eq!(
            parse_info_body("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            parse_info_body("Application/DTMF-Relay; x=1", "signal= #\nDuration=100"),
            Some('#')
        );
        assert_eq!(
            parse_info_body("application/dtmf-relay", "Signal=11\r\n"),
            Some('#')
        );
        assert_eq!(parse_info_body("application/dtmf", "*"), Some('*'));
        assert_eq!(parse_info_body("text/plain", "5"), None);
        assert_eq!(parse_info_body("application/dtmf-relay", "Signal=Z"), None);
    }
}
