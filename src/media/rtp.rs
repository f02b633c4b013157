//! RTP packets on the SIP side (RFC 3550 §5.1): a borrowed, allocation-free view for parsing and a
//! writer. Parsing happens for every packet of every call, so it copies nothing.

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the header it announces.
    #[error("truncated RTP packet")]
    Truncated,
    /// Version is not 2.
    #[error("not RTP version 2")]
    Version,
    /// An RTCP packet (payload types 72-76 with the marker, RFC 5761 §4).
    #[error("RTCP, not RTP")]
    Rtcp,
    /// Padding longer than the payload.
    #[error("bad RTP padding")]
    Padding,
}

/// A parsed RTP packet borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload (after CSRCs, the extension and without padding).
    pub payload: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// Parses a datagram.
    pub fn parse(b: &'a [u8]) -> Result<Self, RtpError> {
        if b.len() < 12 {
            return Err(RtpError::Truncated);
        }
        if b[0] >> 6 != 2 {
            return Err(RtpError::Version);
        }
        let pt_byte = b[1] & 0x7f;
        if (72..=76).contains(&pt_byte) {
            return Err(RtpError::Rtcp);
        }
        let csrc = usize::from(b[0] & 0x0f);
        let mut start = 12 + 4 * csrc;
        if b[0] & 0x10 != 0 {
            let ext = b.get(start + 2..start + 4).ok_or(RtpError::Truncated)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        }
        let mut end = b.len();
        if b[0] & 0x20 != 0 {
            let pad = usize::from(*b.last().ok_or(RtpError::Truncated)?);
            if pad == 0 || pad > end.saturating_sub(start) {
                return Err(RtpError::Padding);
            }
            end -= pad;
        }
        if start > end {
            return Err(RtpError::Truncated);
        }
        Ok(RtpView {
            marker: b[1] & 0x80 != 0,
            pt: pt_byte,
            seq: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            payload: &b[start..end],
        })
    }
}

/// Writes a packet with a plain 12-byte header into `out` (cleared first).
pub fn write(
    out: &mut Vec<u8>,
    marker: bool,
    pt: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) {
    out.clear();
    out.reserve(12 + payload.len());
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (pt & 0x7f));
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        write(&mut buf, true, 0, 65535, 0xdead_beef, 42, &[1, 2, 3]);
        let v = RtpView::parse(&buf).unwrap();
        assert_eq!(
            (v.marker, v.pt, v.seq, v.timestamp, v.ssrc, v.payload),
            (true, 0, 65535, 0xdead_beef, 42, &[1u8, 2, 3][..])
        );
    }

    #[test]
    fn csrc_extension_and_padding() {
        // V=2 P=1 X=1 CC=1, PT 8; one CSRC; a one-word extension; payload 2 bytes; 2 bytes padding.
        let mut b = vec![0xb1, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        b.extend_from_slice(&[0, 0, 0, 7]); // CSRC
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, 1 word
        b.extend_from_slice(&[0xaa, 0xbb, 0, 2]); // payload + padding (count 2)
        let v = RtpView::parse(&b).unwrap();
        assert_eq!(v.payload, &[0xaa, 0xbb]);
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        assert_eq!(RtpView::parse(&[0x80; 5]), Err(RtpError::Truncated));
        assert_eq!(RtpView::parse(&[0x40; 20]), Err(RtpError::Version));
        assert_eq!(
            RtpView::parse(&[0x80, 0xc8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtpError::Rtcp)
        );
        assert_eq!(
            RtpView::parse(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50]),
            Err(RtpError::Padding)
        );
        assert_eq!(
            RtpView::parse(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(RtpError::Truncated)
        );
        // Every short prefix of a valid packet with all flags set.
        let full: Vec<u8> = [0xbf, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(3u8, 80))
            .collect();
        for n in 0..full.len() {
            let _ = RtpView::parse(&full[..n]);
        }
    }
}
