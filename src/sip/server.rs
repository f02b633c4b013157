//! Binds the SIP listeners, builds the rsipstack endpoint around them, and dispatches each incoming
//! transaction to its handler in a task of its own.

use super::auth::DigestAuth;
use super::flood::{FloodGuard, FloodShield};
use super::guard::{GuardStats, GuardedUdpSocket};
use super::handlers::{self, SipContext};
use super::inspect::{Outgoing, StreamInspector};
use super::registrar_task::{self, RegistrarHandle};
use crate::acd::service::AcdHandle;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::registrar::LocationStore;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::rsip::prelude::HeadersExt;
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::CallIdFormat;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::tls::{TlsConfig, TlsListenerConnection};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, info_span, warn, Instrument};

/// Why the SIP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipServerError {
    /// A listener address could not be bound.
    #[error("cannot bind SIP {transport} listener on {addr}: {source}")]
    Bind {
        /// `udp`, `tcp` or `tls`.
        transport: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("SIP TLS: {0}")]
    Tls(String),
    /// rsipstack refused the setup.
    #[error("SIP stack: {0}")]
    Stack(Box<rsipstack::Error>),
}

impl From<rsipstack::Error> for SipServerError {
    fn from(e: rsipstack::Error) -> Self {
        SipServerError::Stack(Box::new(e))
    }
}

/// The running SIP endpoint.
pub struct SipServer {
    /// The rsipstack endpoint (for sending requests: keepalives, trunk registration, calls).
    pub endpoint: EndpointInnerRef,
    /// The bound UDP address, if any (resolved when the config asked for port 0).
    pub udp_addr: Option<SocketAddr>,
    /// What the validation guard turned away.
    pub guard_stats: Arc<GuardStats>,
    /// The flood defence (per-source limits and bans).
    pub flood: Arc<FloodShield>,
    /// The registrar task.
    pub registrar: RegistrarHandle,
    /// rsipstack's dialogs: agent legs and inbound calls; in-dialog requests are routed here.
    pub layer: Arc<DialogLayer>,
    /// Where inbound calls (INVITEs from trunks) go once call control runs.
    pub inbound: Arc<std::sync::OnceLock<Arc<dyn InboundCalls>>>,
}

/// Who placed an initial INVITE that passed the ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A customer through this trunk (by name).
    Trunk(String),
    /// A phone of this gateway (agent or supervisor), digest-authenticated as this user.
    User(String),
}

/// Takes inbound calls (initial INVITEs that passed the ACL) from the dispatcher.
#[async_trait::async_trait]
pub trait InboundCalls: Send + Sync + 'static {
    /// Owns the transaction from here to its final response and beyond (the call).
    async fn handle_invite(
        &self,
        tx: rsipstack::transaction::transaction::Transaction,
        caller: Caller,
    );
}

impl SipServer {
    /// Binds listeners and starts the endpoint, the dispatcher, the registrar and trunk registrations.
    pub async fn start(
        cfg: Arc<Config>,
        lifecycle: Lifecycle,
        locations: Arc<dyn LocationStore>,
        acd: Option<AcdHandle>,
    ) -> Result<SipServer, SipServerError> {
        let stop = lifecycle.stop_token();
        let sip = &cfg.sip;
        let advertised_ip: Option<IpAddr> =
            sip.advertised_host.as_deref().and_then(|h| h.parse().ok());
        let external = |bound: SocketAddr| {
            advertised_ip.map(|ip| SocketAddr::new(ip, sip.advertised_port.unwrap_or(bound.port())))
        };
        let transport_layer = TransportLayer::new(stop.child_token());
        let guard_stats = Arc::new(GuardStats::default());
        let trusted = super::flood::trusted_sources(&cfg);
        let flood = Arc::new(FloodShield::new(FloodGuard::new(
            sip.flood.clone(),
            trusted,
        )));

        let mut udp_addr = None;
        if let Some(addr) = sip.listen_udp {
            let socket = bind_udp(addr)?;
            let bound = socket.local_addr().map_err(|source| SipServerError::Bind {
                transport: "udp",
                addr,
                source,
            })?;
            let server_name = sip.user_agent.clone();
            let guarded = GuardedUdpSocket::new(
                socket,
                sip.max_message_bytes,
                &server_name,
                guard_stats.clone(),
                flood.clone(),
            );
            let conn = UdpConnection::from_socket(
                Arc::new(guarded),
                external(bound),
                Some(stop.child_token()),
            )
            .await?;
            transport_layer.add_transport(conn.into());
            udp_addr = Some(bound);
            info!(%bound, "SIP UDP listening");
        }
        if let Some(addr) = sip.listen_tcp {
            probe_tcp(addr, "tcp")?;
            let conn = TcpListenerConnection::new(addr, external(addr)).await?;
            transport_layer.add_transport(conn.into());
            info!(%addr, "SIP TCP listening");
        }
        if let Some(addr) = sip.listen_tls {
            probe_tcp(addr, "tls")?;
            let read = |p: &Option<std::path::PathBuf>| -> Result<Vec<u8>, SipServerError> {
                let p = p.as_ref().ok_or_else(|| {
                    SipServerError::Tls("tls_cert and tls_key are required".into())
                })?;
                std::fs::read(p).map_err(|e| SipServerError::Tls(format!("{}: {e}", p.display())))
            };
            let tls = TlsConfig {
                cert: Some(read(&sip.tls_cert)?),
                key: Some(read(&sip.tls_key)?),
                ..Default::default()
            };
            let conn = TlsListenerConnection::new(addr, external(addr), tls).await?;
            transport_layer.add_transport(conn.into());
            info!(%addr, "SIP TLS listening");
        }

        let t1 = Duration::from_millis(sip.timer_t1_ms);
        let option = EndpointOption {
            // rsipstack's own Call-IDs would otherwise end in a foreign domain; ours carry none.
            callid_format: CallIdFormat::Uuid,
            t1,
            t1x64: t1 * 64,
            t2: Duration::from_secs(4).max(t1),
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_user_agent(&sip.user_agent)
            .with_transport_layer(transport_layer)
            .with_cancel_token(stop.child_token())
            .with_option(option)
            .with_inspector(Box::new(Outgoing))
            .with_transport_inspector(Box::new(StreamInspector {
                max_len: 65_535,
                server: sip.user_agent.clone(),
                flood: flood.clone(),
            }))
            .build();
        let mut incoming = endpoint.incoming_transactions()?;
        let inner = endpoint.inner.clone();
        tokio::spawn(async move { endpoint.serve().await });

        let registrar =
            registrar_task::spawn(&cfg, inner.clone(), locations.clone(), acd, stop.clone());
        let layer = Arc::new(DialogLayer::new(inner.clone()));
        let inbound: Arc<std::sync::OnceLock<Arc<dyn InboundCalls>>> = Arc::default();
        let secret = if cfg.registrar.nonce_secret.is_empty() {
            super::ids::random_token(32)
        } else {
            cfg.registrar.nonce_secret.clone()
        };
        let auth = DigestAuth::new(
            &sip.realm,
            &secret,
            Duration::from_secs(cfg.registrar.nonce_ttl_secs),
            Instant::now(),
        )
        .on_wall_clock(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        );
        let ctx = Arc::new(SipContext {
            cfg: cfg.clone(),
            auth,
            registrar: registrar.clone(),
            locations,
            lifecycle: lifecycle.clone(),
            layer: layer.clone(),
            inbound: inbound.clone(),
            flood: flood.clone(),
        });
        super::trunk::spawn_registrations(&cfg, inner.clone(), stop.clone());

        tokio::spawn(async move {
            loop {
                let tx = tokio::select! {
                    tx = incoming.recv() => tx,
                    _ = stop.cancelled() => break,
                };
                let Some(tx) = tx else { break };
                let span = info_span!(
                    "sip",
                    call_id = %tx.original.call_id_header().map(|c| c.value().to_string()).unwrap_or_default(),
                    method = %tx.original.method,
                );
                let ctx = ctx.clone();
                tokio::spawn(handlers::handle(ctx, tx).instrument(span));
            }
            info!("SIP dispatcher stopped");
        });

        Ok(SipServer {
            endpoint: inner,
            udp_addr,
            guard_stats,
            flood,
            registrar,
            layer,
            inbound,
        })
    }
}

/// Socket buffers asked for on the SIP UDP port: at hundreds of calls a second, a burst of
/// INVITEs, answers and BYEs overflowed the default 208 KiB while its one reader was busy (each
/// drop comes back as a retransmission 500 ms later).
const SIP_UDP_BUFFER: usize = 4 << 20;

fn bind_udp(addr: SocketAddr) -> Result<tokio::net::UdpSocket, SipServerError> {
    let std_socket = std::net::UdpSocket::bind(addr)
        .and_then(|s| s.set_nonblocking(true).map(|_| s))
        .map_err(|source| SipServerError::Bind {
            transport: "udp",
            addr,
            source,
        })?;
    #[cfg(unix)]
    if let Some(got) = crate::sys::grow_socket_buffers(&std_socket, SIP_UDP_BUFFER) {
        if got < SIP_UDP_BUFFER {
            tracing::warn!(bytes = got, "the SIP UDP socket's receive buffer is small: bursts may be dropped (raise net.core.rmem_max)");
        }
    }
    tokio::net::UdpSocket::from_std(std_socket).map_err(|source| SipServerError::Bind {
        transport: "udp",
        addr,
        source,
    })
}

/// rsipstack binds stream listeners lazily inside its serve loop, where a failure is only logged; try
/// the bind here first so a taken port is a clear start-up error.
fn probe_tcp(addr: SocketAddr, transport: &'static str) -> Result<(), SipServerError> {
    match std::net::TcpListener::bind(addr) {
        Ok(l) => {
            drop(l);
            Ok(())
        }
        Err(source) => {
            warn!(%addr, error = %source, "SIP {transport} port unavailable");
            Err(SipServerError::Bind {
                transport,
                addr,
                source,
            })
        }
    }
}
