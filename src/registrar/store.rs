//! Where agents can be reached: the location service (RFC 3261 §10.2) behind an interface, so a shared
//! store (Redis) can replace the in-memory one when several gateway nodes serve the same agents.

use async_trait::async_trait;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;

/// One reachable contact of an agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContactInfo {
    /// Contact URI the agent registered.
    pub uri: String,
    /// Address the registration came from; requests to the agent go here (NAT-safe).
    pub source: SocketAddr,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Seconds left when this snapshot was written.
    pub expires_in: u32,
    /// The proxies between us and the agent (the REGISTER's `Path`, RFC 3327): requests to the
    /// agent go to the first and carry them all as `Route`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

/// Agent contacts, readable from any task (and, with a shared backend, any node).
#[async_trait]
pub trait LocationStore: Send + Sync + 'static {
    /// Replaces the agent's contacts (empty: offline).
    async fn set_contacts(&self, agent: &str, contacts: Vec<ContactInfo>);
    /// The agent's contacts.
    async fn contacts(&self, agent: &str) -> Vec<ContactInfo>;
    /// Ids of agents with at least one contact.
    async fn online_agents(&self) -> Vec<String>;
    /// True when some registered contact's source address is `ip` (used by the source ACL).
    async fn is_agent_source(&self, ip: IpAddr) -> bool;
}

/// The single-node store.
#[derive(Debug, Default)]
pub struct MemoryLocationStore {
    // A std RwLock: every critical section is a short, non-async map operation.
    inner: RwLock<HashMap<String, Vec<ContactInfo>>>,
}

impl MemoryLocationStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<ContactInfo>>> {
        // A poisoned lock only means a writer panicked mid-insert of plain data; the map is still usable.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl LocationStore for MemoryLocationStore {
    async fn set_contacts(&self, agent: &str, contacts: Vec<ContactInfo>) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if contacts.is_empty() {
            map.remove(agent);
        } else {
            map.insert(agent.to_string(), contacts);
        }
    }

    async fn contacts(&self, agent: &str) -> Vec<ContactInfo> {
        self.read().get(agent).cloned().unwrap_or_default()
    }

    async fn online_agents(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.read().keys().cloned().collect();
        ids.sort();
        ids
    }

    async fn is_agent_source(&self, ip: IpAddr) -> bool {
        self.read().values().flatten().any(|c| c.source.ip() == ip)
    }
}
