//! The call's end, as far as quality goes: each leg's receive quality and MOS estimate into the
//! record, the metrics and the followers; a leg under `media.poor_mos` fires `call.quality_poor`.
//! For the customer's browser, the MOS is the lower of what the gateway received from it and
//! what it says it received (its `stats`): a visitor who heard a broken call had a broken call.

use super::customer::CUSTOMER;
use super::events::CallEvent;
use super::task::CallTask;
use crate::media::routes::LegId;
use crate::records::cdr::Quality;
use crate::records::mos;

impl CallTask {
    /// Records every leg's quality and MOS; tells when one was poor.
    pub(super) fn record_qualities(&mut self, legs: Vec<(LegId, Option<Quality>)>) {
        let mut poor = Vec::new();
        for (leg, q) in legs {
            let party = match leg {
                CUSTOMER => "customer".to_string(),
                _ => match self.leg_names.get(&leg) {
                    Some(p) => p.clone(),
                    None => continue,
                },
            };
            if leg == CUSTOMER {
                self.record.customer_quality = q;
            } else if self.record.agent.as_ref() == Some(&party) {
                self.record.agent_quality = q;
            }
            self.record.party_quality(&party, q);
            let reported = (leg == CUSTOMER).then(|| self.reported.clone()).flatten();
            let rtt = reported.as_ref().and_then(|r| r.rtt_ms);
            let ours = q.map(|q| mos::of_quality(&q, rtt));
            let theirs = reported
                .as_ref()
                .map(|r| mos::estimate(r.loss_percent(), r.jitter_ms, r.rtt_ms));
            let leg_mos = match (ours, theirs) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.record.party_mos(&party, leg_mos, reported);
            let side = if leg == CUSTOMER { "customer" } else { "agent" };
            if let Some(m) = leg_mos {
                crate::metrics::call_mos(side, m);
                if m < self.mgr.cfg.media.poor_mos {
                    poor.push(format!("{party}={m}"));
                }
            }
            if let Some(quality) = q {
                crate::metrics::media_quality(side, &quality);
                self.publish(CallEvent::Quality { party, quality });
            }
        }
        if !poor.is_empty() {
            tracing::info!(call = self.id, legs = %poor.join(" "), "poor call quality");
            self.mgr.records.write(&self.record, "call.quality_poor");
        }
    }
}
