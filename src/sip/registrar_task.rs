//! The task that owns the [`Registrar`] core: feeds it REGISTERs and keepalive results with the
//! current time, sleeps until its next deadline, and carries out what it asks (store writes, OPTIONS).

use crate::acd::service::AcdHandle;
use crate::config::Config;
use crate::registrar::{
    LocationStore, RegisterOutcome, RegisterRequest, Registrar, RegistrarOutput, RegistrarPolicy,
};
use rsipstack::rsip::Method;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

enum Command {
    Register(RegisterRequest, oneshot::Sender<RegisterOutcome>),
    Keepalive {
        agent: String,
        uri: String,
        answered: bool,
    },
}

/// Talks to the registrar task.
#[derive(Clone)]
pub struct RegistrarHandle {
    tx: mpsc::Sender<Command>,
}

impl RegistrarHandle {
    /// Applies a REGISTER; `None` if the registrar has stopped (shutdown).
    pub async fn register(&self, req: RegisterRequest) -> Option<RegisterOutcome> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Register(req, reply)).await.ok()?;
        rx.await.ok()
    }
}

/// Starts the registrar task.
pub fn spawn(
    cfg: &Config,
    endpoint: EndpointInnerRef,
    locations: Arc<dyn LocationStore>,
    presence: Option<AcdHandle>,
    stop: CancellationToken,
) -> RegistrarHandle {
    let r = &cfg.registrar;
    let policy = RegistrarPolicy {
        min_expires: r.min_expires,
        max_expires: r.max_expires,
        default_expires: r.default_expires,
        keepalive_interval: (r.keepalive_interval_secs > 0)
            .then(|| Duration::from_secs(r.keepalive_interval_secs)),
        keepalive_max_failures: r.keepalive_max_failures,
    };
    let (tx, rx) = mpsc::channel(1024);
    let handle = RegistrarHandle { tx: tx.clone() };
    tokio::spawn(run(
        Registrar::new(policy),
        rx,
        tx,
        endpoint,
        locations,
        presence,
        stop,
    ));
    handle
}

async fn run(
    mut core: Registrar,
    mut rx: mpsc::Receiver<Command>,
    tx: mpsc::Sender<Command>,
    endpoint: EndpointInnerRef,
    locations: Arc<dyn LocationStore>,
    presence: Option<AcdHandle>,
    stop: CancellationToken,
) {
    loop {
        let sleep = crate::lifecycle::sleep_until(core.poll_timeout());
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Register(req, reply)) => {
                    let _ = reply.send(core.handle_register(Instant::now(), req));
                }
                Some(Command::Keepalive { agent, uri, answered }) => {
                    core.handle_keepalive(Instant::now(), &agent, &uri, answered);
                }
                None => break,
            },
            _ = sleep => core.handle_timeout(Instant::now()),
            _ = stop.cancelled() => break,
        }
        while let Some(out) = core.poll_output() {
            match out {
                RegistrarOutput::Online(agent) => {
                    info!(%agent, "agent online");
                    if let Some(p) = &presence {
                        p.presence(&agent, true);
                    }
                }
                RegistrarOutput::Offline(agent) => {
                    info!(%agent, "agent offline");
                    if let Some(p) = &presence {
                        p.presence(&agent, false);
                    }
                }
                RegistrarOutput::Bindings(agent, contacts) => {
                    locations.set_contacts(&agent, contacts).await
                }
                RegistrarOutput::SendKeepalive {
                    agent,
                    uri,
                    target,
                    transport,
                } => {
                    let (endpoint, tx) = (endpoint.clone(), tx.clone());
                    tokio::spawn(async move {
                        let resp = super::request::send_request(
                            &endpoint,
                            Method::Options,
                            &uri,
                            target,
                            &transport,
                        )
                        .await;
                        let answered = resp.is_some();
                        debug!(%agent, %uri, answered, "keepalive OPTIONS");
                        let _ = tx
                            .send(Command::Keepalive {
                                agent,
                                uri,
                                answered,
                            })
                            .await;
                    });
                }
            }
        }
    }
}
