//! Wires the parts together: config → lifecycle → SIP endpoint → HTTP server, then waits for a
//! shutdown signal and drains.

use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::registrar::{LocationStore, MemoryLocationStore};
use crate::sip::SipServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
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
    http_task: tokio::task::JoinHandle<()>,
    grace: Duration,
}

impl Gateway {
    /// Binds everything and starts serving.
    pub async fn start(cfg: Config) -> Result<Gateway, StartError> {
        let cfg = Arc::new(cfg);
        let lifecycle = Lifecycle::new();
        let locations: Arc<dyn LocationStore> = Arc::new(MemoryLocationStore::default());
        let sip = SipServer::start(cfg.clone(), lifecycle.clone(), locations.clone()).await?;
        let (http_addr, http_task) = crate::http::serve(cfg.clone(), lifecycle.clone()).await?;
        lifecycle.set_ready();
        Ok(Gateway {
            lifecycle,
            sip,
            http_addr,
            locations,
            http_task,
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
        info!("stopped");
    }
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
