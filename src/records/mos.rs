//! A call leg's MOS estimate from what was measured on it: the ITU-T G.107 E-model, in the
//! simplified form of Cole & Rosenbluth ("Voice over IP performance monitoring", ACM SIGCOMM CCR
//! 2001) that monitoring tools use, for G.711 with packet-loss concealment:
//!
//! - one-way delay `d` = half the round-trip time (20 ms when unknown: a LAN) + a jitter buffer of
//!   twice the jitter + 20 ms of packetisation, in milliseconds;
//! - `Id` = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3) (H: 0 below, 1 above);
//! - `Ie,eff` = Ie + (95 − Ie)·Ppl / (Ppl + Bpl) with Ie = 0 and Bpl = 25.1 for G.711 with PLC
//!   (ITU-T G.113 Appendix I), Ppl the loss in percent;
//! - R = 93.2 − Id − Ie,eff; MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R), R clamped to 0–100.
//!
//! A clean LAN call scores about 4.4; 3.6 is where users start to complain; 10 % loss gives
//! about 3.4. Opus conceals loss better than this model assumes, so for Opus legs it is
//! conservative.

/// Packet loss robustness of G.711 with packet-loss concealment (G.113 Appendix I).
const BPL_G711_PLC: f64 = 25.1;
/// Packetisation and codec delay of 20 ms frames.
const PACKETISATION_MS: f64 = 20.0;
/// One-way network delay assumed when the round-trip time is unknown.
const DEFAULT_ONE_WAY_MS: f64 = 20.0;

/// The R-factor for `loss_percent` lost, `jitter_ms` of jitter and `rtt_ms` round trip (if known).
pub fn r_factor(loss_percent: f64, jitter_ms: f64, rtt_ms: Option<f64>) -> f64 {
    let finite = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
    let network = rtt_ms.map_or(DEFAULT_ONE_WAY_MS, |r| finite(r) / 2.0);
    let d = network + 2.0 * finite(jitter_ms) + PACKETISATION_MS;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = finite(loss_percent).min(100.0);
    let ie_eff = 95.0 * ppl / (ppl + BPL_G711_PLC);
    (93.2 - id - ie_eff).clamp(0.0, 100.0)
}

/// The MOS (1 to 4.5) for an R-factor.
pub fn mos_from_r(r: f64) -> f64 {
    let r = r.clamp(0.0, 100.0);
    let mos = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r);
    mos.clamp(1.0, 4.5)
}

/// The MOS estimate, rounded to two decimals (what records and metrics keep).
pub fn estimate(loss_percent: f64, jitter_ms: f64, rtt_ms: Option<f64>) -> f64 {
    (mos_from_r(r_factor(loss_percent, jitter_ms, rtt_ms)) * 100.0).round() / 100.0
}

/// The MOS of a leg from the gateway's receive quality.
pub fn of_quality(q: &super::cdr::Quality, rtt_ms: Option<f64>) -> f64 {
    let loss = if q.expected == 0 {
        0.0
    } else {
        q.lost.max(0) as f64 * 100.0 / f64::from(q.expected)
    };
    estimate(loss, q.jitter_ms, rtt_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_lan_call_scores_high_and_loss_jitter_and_delay_lower_it() {
        let clean = estimate(0.0, 1.0, Some(2.0));
        assert!((4.35..=4.45).contains(&clean), "{clean}");
        let lossy = estimate(10.0, 1.0, Some(2.0));
        assert!((3.2..=3.6).contains(&lossy), "10 % loss: {lossy}");
        let jittery = estimate(0.0, 60.0, Some(2.0));
        assert!(jittery < clean && jittery > 4.0, "{jittery}");
        let far = estimate(0.0, 1.0, Some(600.0));
        assert!(far < 4.0, "300 ms one way: {far}");
        assert!(estimate(50.0, 100.0, Some(1000.0)) < 2.0);
        // Monotonic in loss.
        let mut last = 5.0;
        for loss in 0..=40 {
            let m = estimate(f64::from(loss), 5.0, None);
            assert!(m <= last, "{loss}% → {m}");
            last = m;
        }
    }

    #[test]
    fn nonsense_inputs_stay_in_range() {
        for (l, j, r) in [
            (f64::NAN, f64::INFINITY, Some(-5.0)),
            (-3.0, -1.0, None),
            (500.0, 1e9, Some(1e9)),
        ] {
            let m = estimate(l, j, r);
            assert!((1.0..=4.5).contains(&m), "{m}");
        }
        let q = super::super::cdr::Quality {
            expected: 0,
            lost: -2,
            jitter_ms: 0.0,
        };
        assert!(of_quality(&q, None) > 4.3);
    }
}
