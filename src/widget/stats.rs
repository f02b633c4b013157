//! What the browser says it received on a call (`stats`): read from `getStats` by the widget,
//! checked here against hard bounds so a page cannot put nonsense into records or metrics.

use serde::{Deserialize, Serialize};

/// Largest packet count accepted (a day of 50 packets/s is 4.3 million).
pub const MAX_PACKETS: u64 = 1_000_000_000;
/// Largest jitter or round-trip time accepted, milliseconds.
pub const MAX_MS: f64 = 60_000.0;
/// The warnings a widget may report.
pub const WARNINGS: [&str; 4] = ["loss", "jitter", "rtt", "silent_mic"];

/// A `stats` message: the browser's receive totals for the call's audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetStats {
    /// Packets received (`inbound-rtp.packetsReceived`).
    pub received: u64,
    /// Packets lost (`inbound-rtp.packetsLost`).
    pub lost: u64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time, milliseconds, when the browser knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// The warnings the widget showed during the call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl WidgetStats {
    /// Why the numbers cannot be true, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.received > MAX_PACKETS || self.lost > MAX_PACKETS {
            return Err(format!("packet counts are at most {MAX_PACKETS}"));
        }
        let ms_ok = |v: f64| v.is_finite() && (0.0..=MAX_MS).contains(&v);
        if !ms_ok(self.jitter_ms) || !self.rtt_ms.is_none_or(ms_ok) {
            return Err(format!(
                "jitter_ms and rtt_ms are milliseconds from 0 to {MAX_MS}"
            ));
        }
        if self.warnings.len() > WARNINGS.len() {
            return Err("at most 4 warnings".into());
        }
        for (i, w) in self.warnings.iter().enumerate() {
            if !WARNINGS.contains(&w.as_str()) || self.warnings[..i].contains(w) {
                return Err(format!(
                    "warnings are distinct names among {}",
                    WARNINGS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Packets lost as a percentage of those expected.
    pub fn loss_percent(&self) -> f64 {
        let expected = self.received + self.lost;
        if expected == 0 {
            return 0.0;
        }
        self.lost as f64 * 100.0 / expected as f64
    }
}
