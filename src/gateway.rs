//! Wires the parts together: config → lifecycle → SIP endpoint → HTTP server, then waits for a
//! shutdown signal and drains.

use crate::acd::service::AcdHandle;
use crate::call::prompts::PromptLibrary;
use crate::call::CallManager;
use crate::cluster::locations::SharedLocations;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::media::engine::{MediaConfig, MediaEngine};
use crate::registrar::{LocationStore, MemoryLocationStore};
use crate::sip::SipServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The SIP endpoint failed.
    #[error(transparent)]
    Sip(#[from] crate::sip::SipServerError),
    /// The HTTP server failed.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// The call-control configuration could not be loaded (menus, prompts).
    #[error("{0}")]
    Calls(String),
}

/// A started gateway.
pub struct Gateway {
    /// Readiness, draining, stop.
    pub lifecycle: Lifecycle,
    /// The SIP endpoint.
    pub sip: SipServer,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    /// Where agents are.
    pub locations: Arc<dyn LocationStore>,
    /// Call control.
    pub calls: Arc<CallManager>,
    /// This node's membership of a cluster (`[cluster] redis`), if any.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    http_task: tokio::task::JoinHandle<()>,
    /// The webhook delivery task, when URLs are configured.
    webhooks: Option<(tokio::task::JoinHandle<()>, CancellationToken)>,
    outbox: std::path::PathBuf,
    grace: Duration,
}

impl Gateway {
    /// Binds everything and starts serving.
    pub async fn start(cfg: Config) -> Result<Gateway, StartError> {
        Self::start_with(cfg, None).await
    }

    /// [`Gateway::start`] with the cluster's shared store given (several nodes in one process
    /// share a [`crate::cluster::kv::MemoryKv`]); `None` connects to `[cluster] redis` if set.
    pub async fn start_with(
        mut cfg: Config,
        store: Option<Arc<dyn crate::cluster::kv::Kv>>,
    ) -> Result<Gateway, StartError> {
        let store = match store {
            Some(s) => Some(s),
            None => crate::cluster::store(&cfg.cluster)
                .map_err(|e| StartError::Calls(format!("cluster.redis: {e}")))?,
        };
        let cluster = store.map(|kv| {
            let url = format!("http://{}", cfg.http.listen);
            crate::cluster::Cluster::new(&cfg.cluster, kv, url)
        });
        if let Some(c) = &cluster {
            share_secrets(c, &mut cfg).await;
        }
        let demo = if cfg.demo_agent.enabled {
            Some(add_demo_agent(&mut cfg)?)
        } else {
            None
        };
        // The API keys live on only as digests: the plain keys leave the configuration here.
        let keys = Arc::new(crate::http::keyring::Keyring::new(&cfg.api));
        cfg.api.key.clear();
        cfg.api.keys.iter_mut().for_each(|k| k.key.clear());
        let cfg = Arc::new(cfg);
        let lifecycle = Lifecycle::new();
        lifecycle.set_max_calls(cfg.limits.max_calls);
        let shared = cluster
            .as_ref()
            .map(|c| Arc::new(SharedLocations::new(c.kv.clone(), c.node)));
        let locations: Arc<dyn LocationStore> = match &shared {
            Some(s) => s.clone(),
            None => Arc::new(MemoryLocationStore::default()),
        };
        let prompts = PromptLibrary::load(&cfg)
            .map_err(|e| StartError::Calls(format!("{}: {}", e.key, e.reason)))?;
        let menus = cfg
            .ivr
            .menus(&cfg.queues)
            .map_err(|e| StartError::Calls(e.to_string()))?;
        if let Some(socket) = demo {
            crate::demo_agent::spawn(socket, prompts.get("demo_agent"), lifecycle.stop_token());
        }
        let acd = match &cluster {
            Some(c) => {
                c.spawn_heartbeat(lifecycle.clone(), lifecycle.stop_token());
                crate::cluster::leader::spawn(
                    c.clone(),
                    cfg.clone(),
                    locations.clone(),
                    lifecycle.stop_token(),
                );
                if let Some(s) = shared.clone() {
                    republish_on_recovery(c, s, lifecycle.stop_token());
                }
                crate::cluster::acd_bus::client(c, lifecycle.stop_token())
            }
            None => build_acd(&cfg, lifecycle.stop_token()),
        };
        let sip = SipServer::start(
            cfg.clone(),
            lifecycle.clone(),
            locations.clone(),
            Some(acd.clone()),
        )
        .await?;
        let engine = MediaEngine::with_workers(
            MediaConfig {
                bind_ip: cfg.media.bind_ip,
                advertised_ip: cfg.media.advertised_ip,
                port_min: cfg.media.port_min,
                port_max: cfg.media.port_max,
            },
            cfg.media.workers,
        );
        let wake = Arc::new(tokio::sync::Notify::new());
        let records = crate::records::writer::Records::open(
            &cfg.records.database,
            cfg.cluster.node_id,
            cfg.webhooks.urls.clone(),
            wake.clone(),
        )
        .map_err(|e| StartError::Calls(format!("records.database: {e}")))?;
        let tls = if cfg.webhooks.urls.iter().any(|u| u.starts_with("https://")) {
            Some(
                crate::records::webhooks::connector(&cfg.webhooks.ca_file)
                    .map_err(|e| StartError::Calls(format!("webhooks.ca_file: {e}")))?,
            )
        } else {
            None
        };
        // Its own token: the shutdown lets it empty the outbox after the calls are gone.
        let webhooks = (!cfg.webhooks.urls.is_empty()).then(|| {
            let stop = CancellationToken::new();
            let task = tokio::spawn(crate::records::webhooks::deliver(
                cfg.records.database.clone(),
                cfg.webhooks.secret.clone(),
                tls,
                wake.clone(),
                stop.clone(),
            ));
            (task, stop)
        });
        let calls = CallManager::new(
            cfg.clone(),
            engine,
            acd,
            sip.layer.clone(),
            locations.clone(),
            prompts,
            menus,
            lifecycle.clone(),
            records,
        );
        // INVITEs from trunks now enter the IVR and queues.
        let _ = sip
            .inbound
            .set(Arc::new(crate::call::inbound::Inbound(calls.clone())));
        if cfg.callback.enabled {
            let store = crate::callback::store::Store::open(&cfg.callback.database)
                .map_err(|e| StartError::Calls(format!("callback.database: {e}")))?;
            let dialer = Arc::new(crate::call::callback::TrunkDialer { mgr: calls.clone() });
            let handle = crate::callback::service::start(
                cfg.callback.clone(),
                cfg.queues.iter().map(|q| q.name.clone()).collect(),
                cfg.cluster.node_id,
                Arc::new(store),
                dialer,
                callback_stop(&lifecycle),
            )
            .map_err(|e| StartError::Calls(format!("callback.database: {e}")))?;
            let _ = calls.callbacks.set(handle);
        }
        if cfg.recording.retention_days > 0 {
            tokio::spawn(crate::recording::retention::run(
                cfg.recording.directory.clone(),
                cfg.recording.retention_days,
                calls.records.clone(),
                lifecycle.stop_token(),
            ));
        }
        let (http_addr, http_task) = crate::http::serve(
            cfg.clone(),
            lifecycle.clone(),
            Some(calls.clone()),
            Some(sip.flood.clone()),
            keys,
        )
        .await?;
        if let Some(c) = &cluster {
            c.bound_http(
                format!("http://{http_addr}"),
                cfg.cluster.http_url.is_some(),
            );
            let _ = calls.cluster.set(c.clone());
            close_dead_nodes(c, calls.records.clone(), lifecycle.stop_token());
        }
        lifecycle.set_ready();
        Ok(Gateway {
            lifecycle,
            sip,
            http_addr,
            locations,
            calls,
            cluster,
            http_task,
            webhooks,
            outbox: cfg.records.database.clone(),
            grace: Duration::from_secs(cfg.shutdown.grace_secs),
        })
    }

    /// Drains (readiness off, no new calls, grace period for running ones) and stops everything.
    pub async fn shutdown(self) {
        info!(
            active_calls = self.lifecycle.active_calls(),
            grace_secs = self.grace.as_secs(),
            "draining"
        );
        let left = self.lifecycle.drain(self.grace).await;
        if left > 0 {
            info!(left, "grace period over; ending remaining calls");
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.http_task).await;
        // Every call record is on disk before the process goes, and webhooks get a few seconds to
        // empty the outbox (what is left is delivered after the restart).
        let _ = tokio::time::timeout(Duration::from_secs(5), self.calls.records.flush()).await;
        if let Some((task, stop)) = self.webhooks {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while crate::records::webhooks::undelivered(&self.outbox).unwrap_or(0) > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let left = crate::records::webhooks::undelivered(&self.outbox).unwrap_or(0);
            if left > 0 {
                info!(left, "webhook events left in the outbox for the next start");
            }
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
        info!("stopped");
    }
}

/// Every node of a cluster answers digest challenges of every other and reads every other's
/// resume tokens: unless configured, they share those secrets (the first node to start picks
/// them). While the store is down this node keeps its own (its challenges and tokens are then
/// good on it alone).
async fn share_secrets(cluster: &crate::cluster::Cluster, cfg: &mut Config) {
    let shared = |name: &'static str| async move {
        let mine = crate::sip::ids::random_token(32);
        match cluster.shared_secret(name, &mine).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, name, "secret not shared: the store is down");
                mine
            }
        }
    };
    if cfg.registrar.nonce_secret.is_empty() {
        cfg.registrar.nonce_secret = shared("nonce").await;
    }
    if cfg.widget.resume_secret.is_none() {
        cfg.widget.resume_secret = Some(shared("resume").await);
    }
}

/// Ends the open records of every node the cluster finds dead.
fn close_dead_nodes(
    cluster: &crate::cluster::Cluster,
    records: crate::records::writer::Records,
    stop: CancellationToken,
) {
    let mut dead = cluster.dead.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                n = dead.recv() => match n {
                    Ok(n) => records.close_node(n),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
                _ = stop.cancelled() => break,
            }
        }
    });
}

/// Writes this node's registrations again whenever the store comes back after an outage.
fn republish_on_recovery(
    cluster: &crate::cluster::Cluster,
    shared: Arc<SharedLocations>,
    stop: CancellationToken,
) {
    let mut recovered = cluster.recovered.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = recovered.changed() => if r.is_err() { break },
                _ = stop.cancelled() => break,
            }
            shared.republish().await;
        }
    });
}

/// Binds the demo agent's SIP socket and adds agent "demo" (a static URI there) to every queue.
fn add_demo_agent(cfg: &mut Config) -> Result<std::net::UdpSocket, StartError> {
    if cfg.agent("demo").is_some() {
        return Err(StartError::Calls(
            "demo_agent.enabled: an agent called \"demo\" is already configured".into(),
        ));
    }
    let ip = cfg
        .sip
        .listen_udp
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |a| a.ip());
    let (socket, addr) = crate::demo_agent::bind(ip)
        .map_err(|e| StartError::Calls(format!("demo_agent: cannot bind on {ip}: {e}")))?;
    cfg.agents.push(crate::config::AgentConfig {
        id: "demo".into(),
        password: None,
        uri: Some(format!("sip:demo@{addr}")),
        queues: cfg.queues.iter().map(|q| q.name.clone()).collect(),
        display_name: Some("Demo agent (echo)".into()),
        skills: Default::default(),
    });
    info!(%addr, "demo agent enabled: it answers every queue and echoes the caller");
    Ok(socket)
}

/// The ACD for the configured queues and agents, on this node; agents with a static URI are
/// online from the start.
fn build_acd(cfg: &Config, stop: CancellationToken) -> AcdHandle {
    let (acd, average) = crate::acd::from_config(cfg);
    AcdHandle::spawn(acd, average, stop)
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("ctrl-c received"),
        _ = term => info!("SIGTERM received"),
    }
}

/// The callback service stops when calls are ended or, after a clean drain, when the gateway
/// stops: a stopped node must not go on claiming callbacks from a shared store.
fn callback_stop(lifecycle: &crate::lifecycle::Lifecycle) -> CancellationToken {
    let stop = CancellationToken::new();
    let (end_calls, stopped, fire) = (
        lifecycle.end_calls_token(),
        lifecycle.stop_token(),
        stop.clone(),
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = end_calls.cancelled() => {}
            _ = stopped.cancelled() => {}
        }
        fire.cancel();
    });
    stop
}
