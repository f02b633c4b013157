//! G.711 μ-law (PCMU) and A-law (PCMA), ITU-T G.711, by table: decoding is one lookup per sample,
//! encoding one lookup on the top 14 (μ-law) or 13 (A-law) bits. The tables are built at compile time.

/// Decodes one μ-law byte to linear 16-bit PCM.
#[inline]
pub fn ulaw_to_linear(b: u8) -> i16 {
    ULAW_DECODE[b as usize]
}

/// Decodes one A-law byte to linear 16-bit PCM.
#[inline]
pub fn alaw_to_linear(b: u8) -> i16 {
    ALAW_DECODE[b as usize]
}

/// Encodes one linear 16-bit sample to μ-law.
#[inline]
pub fn linear_to_ulaw(s: i16) -> u8 {
    ULAW_ENCODE[((s as u16) >> 2) as usize]
}

/// Encodes one linear 16-bit sample to A-law.
#[inline]
pub fn linear_to_alaw(s: i16) -> u8 {
    ALAW_ENCODE[((s as u16) >> 3) as usize]
}

/// Decodes a μ-law payload, appending to `out`.
pub fn decode_ulaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ulaw_to_linear(b)));
}

/// Decodes an A-law payload, appending to `out`.
pub fn decode_alaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| alaw_to_linear(b)));
}

/// Encodes samples to μ-law, appending to `out`.
pub fn encode_ulaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| linear_to_ulaw(s)));
}

/// Encodes samples to A-law, appending to `out`.
pub fn encode_alaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| linear_to_alaw(s)));
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

const fn ulaw_decode(b: u8) -> i16 {
    let u = !b;
    let t = (((u & 0x0f) as i32) << 3) + ULAW_BIAS;
    let t = t << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

const fn alaw_decode(b: u8) -> i16 {
    let a = b ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn ulaw_encode(sample: i32) -> u8 {
    let sign = if sample < 0 { 0x80 } else { 0 };
    let mut mag = if sample < 0 { -sample } else { sample };
    if mag > ULAW_CLIP {
        mag = ULAW_CLIP;
    }
    mag += ULAW_BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && mag & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (mag >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

const fn alaw_encode(sample: i32) -> u8 {
    let (sign, mag) = if sample >= 0 {
        (0x80, sample)
    } else {
        (0x00, -sample - 1)
    };
    let mag = if mag > 0x7fff { 0x7fff } else { mag };
    let a = if mag >= 256 {
        let mut exponent = 7;
        let mut mask = 0x4000;
        while exponent > 1 && mag & mask == 0 {
            exponent -= 1;
            mask >>= 1;
        }
        let mantissa = (mag >> (exponent + 3)) & 0x0f;
        (exponent << 4) | mantissa
    } else {
        mag >> 4
    };
    ((sign | a) ^ 0x55) as u8
}

static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode(i as u8);
        i += 1;
    }
    t
};

static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode(i as u8);
        i += 1;
    }
    t
};

/// Indexed by the sample's top 14 bits (as unsigned): the sample is `(index << 2) as i16`.
static ULAW_ENCODE: [u8; 16384] = {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        let s = ((i << 2) as u16) as i16;
        t[i] = ulaw_encode(s as i32);
        i += 1;
    }
    t
};

/// Indexed by the sample's top 13 bits (as unsigned).
static ALAW_ENCODE: [u8; 8192] = {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        let s = ((i << 3) as u16) as i16;
        t[i] = alaw_encode(s as i32);
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Silence and full scale, from the G.711 tables.
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            let u = linear_to_ulaw(ulaw_to_linear(b));
            // 0x7f and 0xff both mean zero in μ-law.
            assert!(
                u == b || (ulaw_to_linear(u) == ulaw_to_linear(b)),
                "ulaw {b:#x} -> {u:#x}"
            );
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#x}");
        }
    }

    #[test]
    fn quantization_error_is_small_relative_to_level() {
        for s in (-32000i32..32000).step_by(37) {
            let s = s as i16;
            for (name, back) in [
                ("ulaw", ulaw_to_linear(linear_to_ulaw(s))),
                ("alaw", alaw_to_linear(linear_to_alaw(s))),
            ] {
                let err = (i32::from(back) - i32::from(s)).abs();
                let allowed = (i32::from(s).abs() / 16).max(16);
                assert!(err <= allowed, "{name}: {s} -> {back}");
            }
        }
    }
}
