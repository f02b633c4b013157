//! One call's record, built by its call task.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An agent the call was offered to, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferRecord {
    /// Agent id (or transfer target, or `ivr:<queue>`).
    pub agent: String,
    /// When it was offered (unix milliseconds).
    pub at_ms: i64,
    /// `answered`, `busy`, `no_answer`, `rejected`, `cancelled`, or `ringing` while undecided.
    pub outcome: String,
}

/// One party of the call (the customer, each agent, an external IVR): when it joined and left,
/// and what the gateway received from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyRecord {
    /// `customer`, an agent id, or `ivr:<queue>`.
    pub party: String,
    /// `customer`, `agent` or `external_ivr`.
    pub role: String,
    /// Joined (unix ms): the call's start for the customer, the answer for the others.
    pub joined_ms: i64,
    /// Left (unix ms), once it has.
    pub left_ms: Option<i64>,
    /// The receive quality of its leg, at the end.
    pub quality: Option<Quality>,
    /// The leg's MOS estimate (E-model, see `records::mos`): from what the gateway received,
    /// and for a browser also from what the browser says it received (the lower of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mos: Option<f64>,
    /// What the customer's browser says it received (its last `stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<crate::widget::stats::WidgetStats>,
    /// A supervisor's modes, in order: (mode, since unix ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<(String, i64)>,
}

/// Receive-side quality of one RTP stream at the end of the call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Packets expected (from sequence numbers).
    pub expected: u32,
    /// Packets lost.
    pub lost: i64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
}

/// A recording of the call (one per file: a call stopped and started again has two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingRecord {
    /// The WAV file.
    pub file: String,
    /// Started (unix ms).
    pub started_ms: i64,
    /// Seconds of audio in the file, once finished.
    pub duration_secs: Option<f64>,
    /// Paused spans, (start, end) milliseconds from the recording's start.
    pub paused_ms: Vec<(u64, u64)>,
    /// Why the file is incomplete or missing (disk full, directory not writable).
    pub error: Option<String>,
    /// When retention deleted the file (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_ms: Option<i64>,
    /// The SIPREC recorder that received the recording (the last one, after a failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder: Option<String>,
    /// What went wrong with the queue's recorders (a refusal, no answer, a recorder that left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder_error: Option<String>,
}

/// A call detail record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Unique across nodes and restarts.
    pub id: String,
    /// The node-local call id (logs, `/api/calls`).
    pub call: u64,
    /// `browser`, `sip` or `callback`.
    pub kind: String,
    /// The page's (or trunk's) context.
    pub context: Map<String, Value>,
    /// The queue the call went to, if any.
    pub queue: Option<String>,
    /// Menus and digits, in order.
    pub ivr_path: Vec<String>,
    /// Every agent offered, in order.
    pub offers: Vec<OfferRecord>,
    /// The agent the customer talked to last.
    pub agent: Option<String>,
    /// Created (unix ms).
    pub created_ms: i64,
    /// The customer's media flowed: the IVR answered (unix ms).
    pub ivr_answered_ms: Option<i64>,
    /// Entered a queue (unix ms).
    pub queued_ms: Option<i64>,
    /// An agent answered (unix ms).
    pub agent_answered_ms: Option<i64>,
    /// Ended (unix ms).
    pub ended_ms: Option<i64>,
    /// Seconds from queued to an agent's answer (or to the end, when nobody answered).
    pub wait_secs: Option<f64>,
    /// Seconds from the agent's answer to the end.
    pub talk_secs: Option<f64>,
    /// The stable end reason (`customer_hangup`, `agent_hangup`, `no_agents`, ...).
    pub end_reason: Option<String>,
    /// `customer`, `agent` or `gateway`.
    pub hung_up_by: Option<String>,
    /// What the gateway received from the customer's side (RTP legs only).
    pub customer_quality: Option<Quality>,
    /// What the gateway received from the agent's side (the last agent's leg).
    pub agent_quality: Option<Quality>,
    /// Every party, in the order they joined (an agent who joins twice is listed twice).
    #[serde(default)]
    pub parties: Vec<PartyRecord>,
    /// The call's recordings.
    #[serde(default)]
    pub recordings: Vec<RecordingRecord>,
}

impl CallRecord {
    /// A new record at `now_ms`.
    pub fn new(call: u64, kind: &str, context: Map<String, Value>, now_ms: i64) -> Self {
        CallRecord {
            id: format!(
                "{:016x}{:08x}",
                rand::random::<u64>(),
                rand::random::<u32>()
            ),
            call,
            kind: kind.into(),
            context,
            queue: None,
            ivr_path: Vec::new(),
            offers: Vec::new(),
            agent: None,
            created_ms: now_ms,
            ivr_answered_ms: None,
            queued_ms: None,
            agent_answered_ms: None,
            ended_ms: None,
            wait_secs: None,
            talk_secs: None,
            end_reason: None,
            hung_up_by: None,
            customer_quality: None,
            agent_quality: None,
            parties: vec![PartyRecord {
                party: "customer".into(),
                role: "customer".into(),
                joined_ms: now_ms,
                left_ms: None,
                quality: None,
                mos: None,
                reported: None,
                modes: Vec::new(),
            }],
            recordings: Vec::new(),
        }
    }

    /// `party` (with `role`) joined the call.
    pub fn party_joined(&mut self, party: &str, role: &str, now_ms: i64) {
        self.parties.push(PartyRecord {
            party: party.into(),
            role: role.into(),
            joined_ms: now_ms,
            left_ms: None,
            quality: None,
            mos: None,
            reported: None,
            modes: Vec::new(),
        });
    }

    /// A supervisor in the call is in `mode` from `now_ms` on.
    pub fn party_mode(&mut self, party: &str, mode: &str, now_ms: i64) {
        if let Some(p) = self.stay(party) {
            p.modes.push((mode.into(), now_ms));
        }
    }

    /// `party` left the call (its latest stay). True when it was in the call.
    pub fn party_left(&mut self, party: &str, now_ms: i64) -> bool {
        match self.stay(party) {
            Some(p) => {
                p.left_ms = Some(now_ms);
                true
            }
            None => false,
        }
    }

    /// The receive quality of `party`'s latest leg.
    pub fn party_quality(&mut self, party: &str, q: Option<Quality>) {
        if let Some(p) = self.parties.iter_mut().rev().find(|p| p.party == party) {
            p.quality = q;
        }
    }

    /// The MOS estimate of `party`'s latest leg, and what its browser reported.
    pub fn party_mos(
        &mut self,
        party: &str,
        mos: Option<f64>,
        reported: Option<crate::widget::stats::WidgetStats>,
    ) {
        if let Some(p) = self.parties.iter_mut().rev().find(|p| p.party == party) {
            p.mos = mos;
            p.reported = reported;
        }
    }

    fn stay(&mut self, party: &str) -> Option<&mut PartyRecord> {
        self.parties
            .iter_mut()
            .rev()
            .find(|p| p.party == party && p.left_ms.is_none())
    }

    /// The customer's media flows (first time only). True when this is a milestone.
    pub fn media_flowing(&mut self, now_ms: i64) -> bool {
        self.ivr_answered_ms.is_none() && {
            self.ivr_answered_ms = Some(now_ms);
            true
        }
    }

    /// Entered `queue` (first time only is the milestone; a later queue replaces the name).
    pub fn queued(&mut self, queue: &str, now_ms: i64) -> bool {
        self.queue = Some(queue.into());
        self.queued_ms.is_none() && {
            self.queued_ms = Some(now_ms);
            true
        }
    }

    /// Offered to `agent`.
    pub fn offered(&mut self, agent: &str, now_ms: i64) {
        self.offers.push(OfferRecord {
            agent: agent.into(),
            at_ms: now_ms,
            outcome: "ringing".into(),
        });
    }

    /// The latest offer to `agent` came to `outcome`.
    pub fn offer_outcome(&mut self, agent: &str, outcome: &str) {
        if let Some(o) = self
            .offers
            .iter_mut()
            .rev()
            .find(|o| o.agent == agent && o.outcome == "ringing")
        {
            o.outcome = outcome.into();
        }
    }

    /// `agent` answered and is talking to the customer. True when this is the first answer.
    pub fn agent_answered(&mut self, agent: &str, now_ms: i64) -> bool {
        self.offer_outcome(agent, "answered");
        self.agent = Some(agent.into());
        self.agent_answered_ms.is_none() && {
            self.agent_answered_ms = Some(now_ms);
            true
        }
    }

    /// The call ended.
    pub fn ended(&mut self, reason: &str, ivr_path: &[String], now_ms: i64) {
        for o in self.offers.iter_mut().filter(|o| o.outcome == "ringing") {
            o.outcome = "cancelled".into();
        }
        self.ivr_path = ivr_path.to_vec();
        self.ended_ms = Some(now_ms);
        for p in self.parties.iter_mut().filter(|p| p.left_ms.is_none()) {
            p.left_ms = Some(now_ms);
        }
        self.end_reason = Some(reason.into());
        self.hung_up_by = Some(
            match reason {
                "customer_hangup" | "connection_lost" => "customer",
                "agent_hangup" | "agent_lost" => "agent",
                "api_hangup" => "api",
                _ => "gateway",
            }
            .into(),
        );
        let secs = |a: i64, b: i64| (b - a).max(0) as f64 / 1000.0;
        self.wait_secs = self
            .queued_ms
            .map(|q| secs(q, self.agent_answered_ms.unwrap_or(now_ms)));
        self.talk_secs = self.agent_answered_ms.map(|a| secs(a, now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_times_and_who_hung_up() {
        let mut r = CallRecord::new(7, "browser", Map::new(), 1_000);
        assert!(r.media_flowing(1_500));
        assert!(
            !r.media_flowing(1_600),
            "only the first flow is a milestone"
        );
        assert!(r.queued("support", 4_000));
        r.offered("2001", 4_100);
        r.offer_outcome("2001", "busy");
        r.offered("2002", 4_200);
        assert!(r.agent_answered("2002", 9_000));
        r.ended("agent_hangup", &["main".into(), "2".into()], 69_000);
        assert_eq!(r.wait_secs, Some(5.0));
        assert_eq!(r.talk_secs, Some(60.0));
        assert_eq!(r.hung_up_by.as_deref(), Some("agent"));
        let outcomes: Vec<_> = r.offers.iter().map(|o| o.outcome.as_str()).collect();
        assert_eq!(outcomes, ["busy", "answered"]);
        assert_eq!(r.ivr_path, ["main", "2"]);
        assert_eq!(r.id.len(), 24);
    }

    #[test]
    fn an_abandoned_call_waits_until_its_end_and_open_offers_are_cancelled() {
        let mut r = CallRecord::new(8, "sip", Map::new(), 0);
        r.queued("sales", 2_000);
        r.offered("2001", 2_500);
        r.ended("customer_hangup", &[], 32_000);
        assert_eq!((r.wait_secs, r.talk_secs), (Some(30.0), None));
        assert_eq!(r.offers[0].outcome, "cancelled");
        assert_eq!(r.hung_up_by.as_deref(), Some("customer"));
    }
}
