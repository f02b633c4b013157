//! What the ACD leader writes down so the next leader can rebuild the core
//! ([`super::leader`]): the waiting calls with their queue and arrival (`c2c:acd:waiting`), every
//! agent's claim (ringing or busy, for which call: `c2c:acd:claims`) and who is away
//! (`c2c:acd:away`). Best effort: a write the store refuses is logged and the core goes on (the
//! sweep and the next rebuild correct what an outage left).

use super::kv::{Kv, KvError};
use super::PREFIX;
use crate::acd::service::AcdEvent;
use crate::acd::{CallId, OfferResult};
use std::sync::Arc;
use tracing::debug;

/// A queue and the skill asked for.
pub type Place = (String, Option<String>);

/// The leader's notes.
pub struct Mirror {
    kv: Arc<dyn Kv>,
}

fn waiting() -> String {
    format!("{PREFIX}acd:waiting")
}
fn claims() -> String {
    format!("{PREFIX}acd:claims")
}
fn away() -> String {
    format!("{PREFIX}acd:away")
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn logged(r: Result<(), KvError>) {
    if let Err(e) = r {
        debug!(error = %e, "ACD mirror not written");
    }
}

impl Mirror {
    /// Notes in `kv`.
    pub fn new(kv: Arc<dyn Kv>) -> Mirror {
        Mirror { kv }
    }

    /// `call` waits in `queue` since now.
    pub async fn waiting(&self, call: CallId, queue: &str, skill: Option<&str>) {
        let v = serde_json::json!([queue, skill, unix_ms()]).to_string();
        logged(self.kv.hset(&waiting(), &call.to_string(), &v).await);
    }

    /// `call` left its queue (answered, abandoned, ended).
    pub async fn left(&self, call: CallId) {
        logged(self.kv.hdel(&waiting(), &call.to_string()).await);
    }

    /// `agent` rings for `call`.
    pub async fn ringing(&self, agent: &str, call: CallId) {
        logged(self.kv.hset(&claims(), agent, &format!("{call}:r")).await);
    }

    /// What an event the core sent a call says about claims.
    pub async fn event(&self, call: CallId, ev: &AcdEvent) {
        match ev {
            AcdEvent::Offer(agents) => {
                for a in agents {
                    self.ringing(a, call).await;
                }
            }
            AcdEvent::Cancel(agents) => {
                for a in agents {
                    self.released(a).await;
                }
            }
            AcdEvent::Overflowed { .. } => self.left(call).await,
            AcdEvent::Position { .. } => {}
        }
    }

    /// How `agent`'s offer for `call` ended.
    pub async fn offer_result(&self, call: CallId, agent: &str, r: OfferResult) {
        match r {
            OfferResult::Answered => {
                logged(self.kv.hset(&claims(), agent, &format!("{call}:b")).await);
                self.left(call).await;
            }
            OfferResult::Rejected(_) => self.released(agent).await,
        }
    }

    /// `agent` holds no call any more.
    pub async fn released(&self, agent: &str) {
        logged(self.kv.hdel(&claims(), agent).await);
    }

    /// `agent` set itself away or back.
    pub async fn away(&self, agent: &str, away_now: bool) {
        let r = if away_now {
            self.kv.sadd(&away(), agent).await
        } else {
            self.kv.srem(&away(), agent).await
        };
        logged(r);
    }

    /// The waiting calls: id, arrival (unix ms), queue and skill.
    pub async fn waiting_calls(&self) -> Vec<(CallId, u64, Place)> {
        let all = self.kv.hgetall(&waiting()).await.unwrap_or_default();
        all.into_iter()
            .filter_map(|(call, v)| {
                let (q, s, since): (String, Option<String>, u64) = serde_json::from_str(&v).ok()?;
                Some((call.parse().ok()?, since, (q, s)))
            })
            .collect()
    }

    /// Every claim: agent, call, busy (else ringing).
    pub async fn claims(&self) -> Vec<(String, CallId, bool)> {
        let all = self.kv.hgetall(&claims()).await.unwrap_or_default();
        all.into_iter()
            .filter_map(|(agent, v)| {
                let (call, state) = v.split_once(':')?;
                Some((agent, call.parse().ok()?, state == "b"))
            })
            .collect()
    }

    /// The agents who are away.
    pub async fn away_agents(&self) -> Vec<String> {
        self.kv.smembers(&away()).await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kv::MemoryKv;

    #[tokio::test]
    async fn the_mirror_follows_offers_answers_releases_and_waiting_calls() {
        let m = Mirror::new(Arc::new(MemoryKv::default()));
        m.waiting(1, "support", None).await;
        m.waiting(2, "sales", Some("billing")).await;
        m.event(1, &AcdEvent::Offer(vec!["a".into(), "b".into()]))
            .await;
        m.offer_result(1, "a", OfferResult::Answered).await;
        m.event(1, &AcdEvent::Cancel(vec!["b".into()])).await;
        let mut claims = m.claims().await;
        claims.sort();
        assert_eq!(claims, vec![("a".to_string(), 1, true)], "a busy, b let go");
        let waiting = m.waiting_calls().await;
        assert_eq!(waiting.len(), 1, "the answered call left its queue");
        assert_eq!(waiting[0].0, 2);
        assert_eq!(waiting[0].2, ("sales".into(), Some("billing".into())));
        m.released("a").await;
        m.away("c", true).await;
        assert!(m.claims().await.is_empty());
        assert_eq!(m.away_agents().await, vec!["c".to_string()]);
    }
}
