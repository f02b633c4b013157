//! Several gateway nodes sharing one contact center (`[cluster] redis`): what lives in the shared
//! store and how a node takes part. Without `[cluster] redis` none of this runs and every piece
//! of state stays in the node's memory, as it always has.
//!
//! - [`kv`]: the store's operations ([`kv::Kv`]), in memory or on Redis ([`redis_kv`]).
//! - Liveness: each node writes `c2c:node:<id>` (its HTTP URL) every second with a time to live
//!   of `node_timeout_secs`; a node whose key is gone is dead. [`Cluster::healthy`] says whether
//!   the store answered the last heartbeat: new calls are refused while it does not.
//! - [`acd_bus`]: one node at a time (the holder of the `c2c:acd:leader` lease) runs the ACD
//!   core; every node's calls reach it through lists, so agents and queues are global.
//! - [`locations`]: agents' registrations (with their `Path`), readable by every node.
//! - Calls: a call's node is in its id ([`crate::call::id`]), so a REST request for a call held
//!   elsewhere is redirected to that node's URL (`c2c:node:<id>`) with no lookup table.
//! - Secrets ([`Cluster::shared_secret`]): one digest nonce secret and one resume-token secret
//!   for all nodes, so a challenge from one node is answered on another and a widget resumes its
//!   call through any node.

pub mod acd_bus;
pub mod kv;
pub mod leader;
pub mod locations;
pub mod mirror;
pub mod redis_kv;

use crate::config::ClusterSection;
use kv::{Kv, KvError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Every key the cluster writes starts with this.
pub const PREFIX: &str = "c2c:";

/// How often a node proves it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// This node's membership.
pub struct Cluster {
    /// The shared store.
    pub kv: Arc<dyn Kv>,
    /// This node's number (`cluster.node_id`).
    pub node: u16,
    /// This node's HTTP base URL, for redirects from other nodes.
    http_url: std::sync::Mutex<String>,
    /// A node silent this long is dead.
    pub node_timeout: Duration,
    healthy: AtomicBool,
    /// Fired when the store answers again after an outage (owners re-publish what they hold).
    pub recovered: tokio::sync::watch::Sender<u64>,
    /// Nodes found dead (by the ACD leader's sweep, so once in the cluster): their open call
    /// records are closed as `interrupted`.
    pub dead: tokio::sync::broadcast::Sender<u16>,
}

/// The key of node `n`'s heartbeat.
pub fn node_key(n: u16) -> String {
    format!("{PREFIX}node:{n}")
}

impl Cluster {
    /// Joins the cluster of `cfg` through `kv`.
    pub fn new(cfg: &ClusterSection, kv: Arc<dyn Kv>, http_url: String) -> Arc<Cluster> {
        Arc::new(Cluster {
            kv,
            node: cfg.node_id,
            http_url: std::sync::Mutex::new(cfg.http_url.clone().unwrap_or(http_url)),
            node_timeout: Duration::from_secs(cfg.node_timeout_secs),
            healthy: AtomicBool::new(true),
            recovered: tokio::sync::watch::channel(0).0,
            dead: tokio::sync::broadcast::channel(64).0,
        })
    }

    /// The HTTP server is bound at `url` (used unless `cluster.http_url` says otherwise).
    pub fn bound_http(&self, url: String, configured: bool) {
        if !configured {
            *self.http_url.lock().unwrap_or_else(|e| e.into_inner()) = url;
        }
    }

    /// Whether the store answered the last heartbeat (new calls are refused while it does not).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Whether node `n` is alive (its heartbeat is current); unknown while the store is down.
    pub async fn alive(&self, n: u16) -> Result<bool, KvError> {
        if n == self.node {
            return Ok(true);
        }
        Ok(self.kv.get(&node_key(n)).await?.is_some())
    }

    /// Node `n`'s HTTP base URL, if it is alive.
    pub async fn node_url(&self, n: u16) -> Result<Option<String>, KvError> {
        self.kv.get(&node_key(n)).await
    }

    /// The nodes that ever joined (alive or not).
    pub async fn nodes(&self) -> Result<Vec<u16>, KvError> {
        let all = self.kv.smembers(&format!("{PREFIX}nodes")).await?;
        Ok(all.iter().filter_map(|n| n.parse().ok()).collect())
    }

    /// A secret every node shares (`name`: the digest nonces', the widget's resume tokens'): the
    /// first node to start picks it.
    pub async fn shared_secret(&self, name: &str, mine: &str) -> Result<String, KvError> {
        let key = format!("{PREFIX}secret:{name}");
        let year = Duration::from_secs(365 * 86_400);
        self.kv.set_nx(&key, mine, year).await?;
        Ok(self.kv.get(&key).await?.unwrap_or_else(|| mine.to_string()))
    }

    /// Node `n` is dead and dealt with: it leaves the list of nodes (its heartbeat puts it back).
    pub async fn forget_node(&self, n: u16) -> Result<(), KvError> {
        self.kv
            .srem(&format!("{PREFIX}nodes"), &n.to_string())
            .await
    }

    async fn beat(&self) -> Result<(), KvError> {
        let ttl = self.node_timeout;
        let url = self
            .http_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.kv.set(&node_key(self.node), &url, Some(ttl)).await?;
        self.kv
            .sadd(&format!("{PREFIX}nodes"), &self.node.to_string())
            .await
    }

    /// Beats every [`HEARTBEAT`] until `stop`; keeps [`Cluster::healthy`] and fires
    /// [`Cluster::recovered`] after an outage.
    pub fn spawn_heartbeat(
        self: &Arc<Self>,
        lifecycle: crate::lifecycle::Lifecycle,
        stop: CancellationToken,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => break,
                }
                let ok = me.beat().await;
                let was = me.healthy.swap(ok.is_ok(), Ordering::SeqCst);
                lifecycle.set_shared_state_down(ok.is_err());
                match (was, ok) {
                    (true, Err(e)) => {
                        warn!(error = %e, "shared state unreachable: new calls are refused")
                    }
                    (false, Ok(())) => {
                        info!("shared state reachable again: re-publishing this node's state");
                        me.recovered.send_modify(|n| *n += 1);
                    }
                    _ => {}
                }
            }
            let _ = me.kv.del(&node_key(me.node)).await;
        });
    }
}

/// Connects to the store `cfg` names (Redis), or `None` for a single node.
pub fn store(cfg: &ClusterSection) -> Result<Option<Arc<dyn Kv>>, KvError> {
    match &cfg.redis {
        Some(url) => Ok(Some(Arc::new(redis_kv::RedisKv::new(url)?))),
        None => Ok(None),
    }
}
