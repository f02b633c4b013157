//! What the ACD leader writes down so the next leader can rebuild the core
//! ([`super::leader`]): the waiting calls with their queue and arrival (`c2c:acd:waiting`), every
//! agent's claim (ringing or busy, for which call: `c2c:acd:claims`) and who is away
//! (`c2c:acd:away`). Best effort: a write the store refuses is logged and the core goes on. The
//! leader keeps a copy of what it wrote, and writes it all again when the store comes back
//! (a restarted Redis is empty), so the next leader can still rebuild.

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
    mem: std::sync::Mutex<Copy>,
}

/// What the mirror holds, as written.
#[derive(Default)]
struct Copy {
    waiting: std::collections::HashMap<String, String>,
    claims: std::collections::HashMap<String, String>,
    away: std::collections::BTreeSet<String>,
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
        Mirror {
            kv,
            mem: Default::default(),
        }
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Copy> {
        self.mem.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what a previous leader wrote as this one's own (at the start of a term).
    pub async fn adopt(&self) {
        let (w, c, a) = (
            self.kv.hgetall(&waiting()).await.unwrap_or_default(),
            self.kv.hgetall(&claims()).await.unwrap_or_default(),
            self.kv.smembers(&away()).await.unwrap_or_default(),
        );
        let mut m = self.mem();
        m.waiting.extend(w);
        m.claims.extend(c);
        m.away.extend(a);
    }

    /// Writes everything again (the store came back, perhaps empty).
    pub async fn republish(&self) {
        let (w, c, a) = {
            let m = self.mem();
            (m.waiting.clone(), m.claims.clone(), m.away.clone())
        };
        for (call, v) in &w {
            logged(self.kv.hset(&waiting(), call, v).await);
        }
        for (agent, v) in &c {
            logged(self.kv.hset(&claims(), agent, v).await);
        }
        for agent in &a {
            logged(self.kv.sadd(&away(), agent).await);
        }
        tracing::info!(
            waiting = w.len(),
            claims = c.len(),
            "ACD mirror written again"
        );
    }

    /// `call` waits in `queue` since now.
    pub async fn waiting(&self, call: CallId, queue: &str, skill: Option<&str>) {
        let v = serde_json::json!([queue, skill, unix_ms()]).to_string();
        self.mem().waiting.insert(call.to_string(), v.clone());
        logged(self.kv.hset(&waiting(), &call.to_string(), &v).await);
    }

    /// `call` left its queue (answered, abandoned, ended).
    pub async fn left(&self, call: CallId) {
        self.mem().waiting.remove(&call.to_string());
        logged(self.kv.hdel(&waiting(), &call.to_string()).await);
    }

    /// `agent` rings for `call`.
    pub async fn ringing(&self, agent: &str, call: CallId) {
        self.claim(agent, format!("{call}:r")).await;
    }

    async fn claim(&self, agent: &str, v: String) {
        self.mem().claims.insert(agent.to_string(), v.clone());
        logged(self.kv.hset(&claims(), agent, &v).await);
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
                self.claim(agent, format!("{call}:b")).await;
                self.left(call).await;
            }
            OfferResult::Rejected(_) => self.released(agent).await,
        }
    }

    /// Whether `agent` rings for or is on a call, as far as this leader wrote.
    pub fn holds(&self, agent: &str) -> bool {
        self.mem().claims.contains_key(agent)
    }

    /// `agent` holds no call any more.
    pub async fn released(&self, agent: &str) {
        self.mem().claims.remove(agent);
        logged(self.kv.hdel(&claims(), agent).await);
    }

    /// `agent` set itself away or back.
    pub async fn away(&self, agent: &str, away_now: bool) {
        if away_now {
            self.mem().away.insert(agent.to_string());
        } else {
            self.mem().away.remove(agent);
        }
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

    #[tokio::test]
    async fn after_the_store_comes_back_empty_the_mirror_is_written_again() {
        let kv = Arc::new(MemoryKv::default());
        let m = Mirror::new(kv.clone());
        m.waiting(5, "support", None).await;
        m.ringing("a", 5).await;
        // The store comes back empty.
        kv.hdel(&waiting(), "5").await.unwrap();
        kv.hdel(&claims(), "a").await.unwrap();
        assert!(m.waiting_calls().await.is_empty());
        m.republish().await;
        assert_eq!(m.waiting_calls().await.len(), 1);
        assert_eq!(m.claims().await, vec![("a".to_string(), 5, false)]);
        // A new leader adopts what it found.
        let next = Mirror::new(kv.clone());
        next.adopt().await;
        kv.hdel(&waiting(), "5").await.unwrap();
        next.republish().await;
        assert_eq!(next.waiting_calls().await.len(), 1);
    }
}
