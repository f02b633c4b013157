//! Agents' registrations shared by every node ([`LocationStore`] on the shared store): the hash
//! `c2c:loc` holds one field per agent and node (`<agent>|<node>`), each the node's current
//! contacts of that agent (with their `Path`) and when they were written. Any node reads every
//! node's fields, so it reaches an agent registered through another node (through the proxy in
//! the `Path`). An entry lives until its contacts expire, also when the node that wrote it died:
//! the phone behind the proxy is still there. Each node keeps its own entries in memory and
//! writes them again when the store comes back after an outage.

use super::kv::Kv;
use super::PREFIX;
use crate::registrar::{ContactInfo, LocationStore};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tracing::warn;

fn hash() -> String {
    format!("{PREFIX}loc")
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Serialize, Deserialize)]
struct Entry {
    at: u64,
    contacts: Vec<ContactInfo>,
}

impl Entry {
    /// The contacts still valid at `now` (unix ms), their seconds left brought up to date.
    fn live(self, now: u64) -> impl Iterator<Item = ContactInfo> {
        let age = now.saturating_sub(self.at) / 1000;
        self.contacts.into_iter().filter_map(move |mut c| {
            let left = u64::from(c.expires_in)
                .checked_sub(age)
                .filter(|l| *l > 0)?;
            c.expires_in = left as u32;
            Some(c)
        })
    }
}

/// The shared location service.
pub struct SharedLocations {
    kv: Arc<dyn Kv>,
    node: u16,
    mine: Mutex<HashMap<String, Vec<ContactInfo>>>,
}

impl SharedLocations {
    /// Node `node`'s view of the shared registrations.
    pub fn new(kv: Arc<dyn Kv>, node: u16) -> SharedLocations {
        SharedLocations {
            kv,
            node,
            mine: Mutex::new(HashMap::new()),
        }
    }

    async fn write(&self, agent: &str, contacts: &[ContactInfo]) {
        let field = format!("{agent}|{}", self.node);
        let r = if contacts.is_empty() {
            self.kv.hdel(&hash(), &field).await
        } else {
            let entry = Entry {
                at: unix_ms(),
                contacts: contacts.to_vec(),
            };
            match serde_json::to_string(&entry) {
                Ok(v) => self.kv.hset(&hash(), &field, &v).await,
                Err(_) => return,
            }
        };
        if let Err(e) = r {
            warn!(%agent, error = %e, "registration not shared (written again when the store is back)");
        }
    }

    /// Writes this node's registrations again (after the store came back).
    pub async fn republish(&self) {
        let mine: Vec<(String, Vec<ContactInfo>)> = self
            .mine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect();
        for (agent, contacts) in mine {
            self.write(&agent, &contacts).await;
        }
    }

    /// Every node's live contacts, per agent.
    async fn all(&self) -> HashMap<String, Vec<ContactInfo>> {
        let now = unix_ms();
        let mut out: HashMap<String, Vec<ContactInfo>> = HashMap::new();
        let fields = match self.kv.hgetall(&hash()).await {
            Ok(f) => f,
            Err(_) => return self.mine.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        for (field, v) in fields {
            let Some((agent, _node)) = field.rsplit_once('|') else {
                continue;
            };
            let Ok(entry) = serde_json::from_str::<Entry>(&v) else {
                continue;
            };
            let live: Vec<ContactInfo> = entry.live(now).collect();
            if !live.is_empty() {
                out.entry(agent.to_string()).or_default().extend(live);
            }
        }
        out
    }
}

#[async_trait]
impl LocationStore for SharedLocations {
    async fn set_contacts(&self, agent: &str, contacts: Vec<ContactInfo>) {
        {
            let mut mine = self.mine.lock().unwrap_or_else(|e| e.into_inner());
            if contacts.is_empty() {
                mine.remove(agent);
            } else {
                mine.insert(agent.to_string(), contacts.clone());
            }
        }
        self.write(agent, &contacts).await;
    }

    async fn contacts(&self, agent: &str) -> Vec<ContactInfo> {
        let mut all = self.all().await.remove(agent).unwrap_or_default();
        // The freshest registration first (the one most likely still there).
        all.sort_by_key(|c| std::cmp::Reverse(c.expires_in));
        all
    }

    async fn online_agents(&self) -> Vec<String> {
        let ids: BTreeSet<String> = self.all().await.into_keys().collect();
        ids.into_iter().collect()
    }

    async fn is_agent_source(&self, ip: IpAddr) -> bool {
        let all = self.all().await;
        all.values().flatten().any(|c| c.source.ip() == ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kv::MemoryKv;

    fn contact(uri: &str, secs: u32) -> ContactInfo {
        ContactInfo {
            uri: uri.into(),
            source: "127.0.0.5:5060".parse().unwrap(),
            transport: "udp".into(),
            expires_in: secs,
            path: vec!["<sip:127.0.0.5:5060;lr>".into()],
        }
    }

    #[tokio::test]
    async fn a_registration_through_one_node_is_seen_by_another_with_its_path() {
        let kv: Arc<dyn Kv> = Arc::new(MemoryKv::default());
        let (a, b) = (
            SharedLocations::new(kv.clone(), 1),
            SharedLocations::new(kv.clone(), 2),
        );
        a.set_contacts("1001", vec![contact("sip:1001@10.0.0.9", 60)])
            .await;
        let seen = b.contacts("1001").await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, vec!["<sip:127.0.0.5:5060;lr>".to_string()]);
        assert_eq!(b.online_agents().await, vec!["1001".to_string()]);
        assert!(b.is_agent_source("127.0.0.5".parse().unwrap()).await);
        // Another phone of the same agent through node 2; node 1's going leaves node 2's.
        b.set_contacts("1001", vec![contact("sip:1001@10.0.0.10", 60)])
            .await;
        assert_eq!(a.contacts("1001").await.len(), 2);
        a.set_contacts("1001", vec![]).await;
        assert_eq!(a.contacts("1001").await[0].uri, "sip:1001@10.0.0.10");
    }

    #[tokio::test]
    async fn expired_contacts_are_not_offered_and_a_store_outage_is_written_back() {
        let mem = Arc::new(MemoryKv::default());
        let kv: Arc<dyn Kv> = mem.clone();
        let a = SharedLocations::new(kv.clone(), 1);
        let stale = Entry {
            at: unix_ms() - 120_000,
            contacts: vec![contact("sip:1002@10.0.0.9", 60)],
        };
        let v = serde_json::to_string(&stale).unwrap();
        kv.hset(&hash(), "1002|7", &v).await.unwrap();
        assert!(a.contacts("1002").await.is_empty(), "expired a minute ago");
        mem.set_down(true);
        a.set_contacts("1003", vec![contact("sip:1003@10.0.0.9", 60)])
            .await;
        mem.set_down(false);
        assert!(a.contacts("1003").await.is_empty(), "lost with the outage");
        a.republish().await;
        assert_eq!(a.contacts("1003").await.len(), 1);
    }
}
