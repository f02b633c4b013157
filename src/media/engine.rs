//! The media shell: UDP sockets from the port pool and one tokio task per call that owns its
//! [`MediaSession`], moving datagrams and time in and out. Everything the task decides, the sans-IO
//! session decides; the task only waits on its two sockets, its command channel and one timer.

use super::browser_leg::{AudioCodec, BrowserLeg, BrowserLegError};
use super::ports::PortPool;
use super::rtp_bridge::RtpBridge;
use super::rtp_leg::{RtpLeg, RtpLegTimers};
use super::sdp::Negotiated;
use super::session::{MediaEvent, MediaOutput, MediaSession, Side};
use super::source::Source;
use super::transcode::Transcoder;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

/// Where media sockets live.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address the sockets bind.
    pub bind_ip: IpAddr,
    /// Address written into SDP and ICE candidates (NAT 1:1); `bind_ip` when `None`.
    pub advertised_ip: Option<IpAddr>,
    /// First port of the RTP range.
    pub port_min: u16,
    /// Last port of the RTP range.
    pub port_max: u16,
}

/// Why media could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Every port in the range is taken.
    #[error("no free media port in {0}-{1}")]
    NoPort(u16, u16),
    /// The browser's offer was refused.
    #[error(transparent)]
    Browser(#[from] BrowserLegError),
}

/// A port from the pool, given back when dropped.
#[derive(Debug)]
pub struct PortLease {
    pool: Arc<Mutex<PortPool>>,
    /// The bound socket.
    pub socket: UdpSocket,
    /// Its local address.
    pub local: SocketAddr,
    /// The address to advertise for it.
    pub advertised: SocketAddr,
    /// The RTCP socket on the next (odd) port, for SIP legs.
    pub rtcp: Option<UdpSocket>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        // A poisoned pool only means another task panicked while allocating; the set is intact.
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(self.local.port());
    }
}

/// Allocates sockets and starts call media tasks.
#[derive(Debug, Clone)]
pub struct MediaEngine {
    cfg: MediaConfig,
    pool: Arc<Mutex<PortPool>>,
}

/// Commands to a running call's media.
#[derive(Debug)]
pub enum MediaCommand {
    /// Play this to the browser instead of the SIP leg.
    Play(Source),
    /// Let the browser hear the SIP leg.
    Bridge,
    /// Update the SIP leg after a re-INVITE (or the agent's answer).
    UpdateSip(Negotiated),
    /// A trickled ICE candidate from the browser.
    AddCandidate(String),
    /// A digit the SIP side sent out of band (INFO): relay it to the browser.
    SipDigit(char, std::time::Duration),
    /// Receive quality so far: (the customer's leg, browser or RTP; the agent's leg).
    Quality(
        tokio::sync::oneshot::Sender<(
            Option<crate::records::cdr::Quality>,
            Option<crate::records::cdr::Quality>,
        )>,
    ),
    /// End the media.
    Stop,
}

/// The controller's handle on a call's media task.
pub struct MediaHandle {
    /// Commands to the task.
    pub commands: mpsc::Sender<MediaCommand>,
    /// Events from the task (flowing, digits, lost, prompt done).
    pub events: mpsc::Receiver<MediaEvent>,
    /// The task; ends on `Stop` or when the handle's command sender is dropped.
    pub task: tokio::task::JoinHandle<()>,
}

impl MediaEngine {
    /// An engine over `cfg`'s port range.
    pub fn new(cfg: MediaConfig) -> Self {
        let pool = PortPool::new(cfg.port_min, cfg.port_max);
        MediaEngine {
            cfg,
            pool: Arc::new(Mutex::new(pool)),
        }
    }

    /// Ports leased and not yet given back.
    pub fn ports_in_use(&self) -> usize {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).in_use()
    }

    /// Binds a socket on the next free even port (skipping ports the OS says are taken).
    pub async fn lease(&self) -> Result<PortLease, EngineError> {
        let capacity = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .capacity();
        for _ in 0..capacity {
            let port = self
                .pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allocate();
            let Some(port) = port else { break };
            let local = SocketAddr::new(self.cfg.bind_ip, port);
            match UdpSocket::bind(local).await {
                Ok(socket) => {
                    let advertised =
                        SocketAddr::new(self.cfg.advertised_ip.unwrap_or(self.cfg.bind_ip), port);
                    return Ok(PortLease {
                        pool: self.pool.clone(),
                        socket,
                        local,
                        advertised,
                        rtcp: None,
                    });
                }
                Err(e) => {
                    debug!(%local, error = %e, "media port taken, trying the next");
                    // Keep it marked as used for this round so the loop moves on; give it back after.
                    let pool = self.pool.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                        pool.lock().unwrap_or_else(|e| e.into_inner()).release(port);
                    });
                }
            }
        }
        Err(EngineError::NoPort(self.cfg.port_min, self.cfg.port_max))
    }

    /// A lease for a SIP leg: the RTP port plus an RTCP socket on port + 1 (RFC 3550 §11). The RTCP
    /// port is best-effort: if the OS has it taken, RTCP goes out of the RTP socket.
    pub async fn lease_with_rtcp(&self) -> Result<PortLease, EngineError> {
        let mut lease = self.lease().await?;
        let rtcp = SocketAddr::new(lease.local.ip(), lease.local.port().wrapping_add(1));
        lease.rtcp = UdpSocket::bind(rtcp).await.ok();
        Ok(lease)
    }

    /// The browser codecs this build accepts, most preferred first.
    pub fn browser_codecs() -> Vec<AudioCodec> {
        [AudioCodec::Pcmu, AudioCodec::Pcma, AudioCodec::Opus]
            .into_iter()
            .filter(|c| Transcoder::supports(*c))
            .collect()
    }

    /// Answers a browser's offer on a fresh port: the leg, its socket, and the SDP answer.
    pub async fn answer_browser(
        &self,
        now: Instant,
        offer: &str,
    ) -> Result<(BrowserLeg, PortLease, String), EngineError> {
        let lease = self.lease().await?;
        let (leg, answer) = BrowserLeg::answer(
            now,
            offer,
            &[(lease.advertised, lease.local)],
            &Self::browser_codecs(),
        )?;
        Ok((leg, lease, answer))
    }

    /// Starts the task that bridges an answered browser leg to a negotiated SIP leg.
    pub fn spawn(
        &self,
        browser: (BrowserLeg, PortLease),
        sip: (Negotiated, PortLease),
        timers: RtpLegTimers,
    ) -> MediaHandle {
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let ssrc = rand::random::<u32>();
        let session =
            MediaSession::new(browser.0, RtpLeg::new(Instant::now(), sip.0, ssrc, timers));
        let task = tokio::spawn(run(session, browser.1, sip.1, cmd_rx, ev_tx));
        MediaHandle {
            commands: cmd_tx,
            events: ev_rx,
            task,
        }
    }
}

/// The per-call loop: one select over two sockets, the command channel and the session's deadline.
async fn run(
    mut session: MediaSession,
    web: PortLease,
    rtp: PortLease,
    mut commands: mpsc::Receiver<MediaCommand>,
    events: mpsc::Sender<MediaEvent>,
) {
    let mut web_buf = vec![0u8; 2048];
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 1500];
    let socks = Sockets {
        customer: &web.socket,
        customer_rtcp: None,
        sip: &rtp.socket,
        sip_rtcp: rtp.rtcp.as_ref(),
    };
    loop {
        let Some(deadline) = flush(|| session.poll_output(), &socks, &events).await else {
            return;
        };
        let result = tokio::select! {
            r = web.socket.recv_from(&mut web_buf) => match r {
                Ok((n, from)) => session.handle_browser_datagram(Instant::now(), from, web.local, &web_buf[..n]),
                Err(e) => { debug!(error = %e, "browser socket"); Ok(()) }
            },
            r = rtp.socket.recv_from(&mut rtp_buf) => match r {
                Ok((n, from)) => session.handle_sip_datagram(Instant::now(), from, &rtp_buf[..n]),
                Err(e) => { debug!(error = %e, "RTP socket"); Ok(()) }
            },
            r = recv_rtcp(rtp.rtcp.as_ref(), &mut rtcp_buf) => {
                if let Ok((n, from)) = r {
                    session.handle_sip_rtcp_datagram(Instant::now(), from, &rtcp_buf[..n]);
                }
                Ok(())
            }
            _ = tokio::time::sleep_until(deadline.into()) => session.handle_timeout(Instant::now()),
            cmd = commands.recv() => match cmd {
                Some(MediaCommand::Play(src)) => { session.play_to_browser(Instant::now(), src); Ok(()) }
                Some(MediaCommand::Bridge) => { session.bridge_to_browser(); Ok(()) }
                Some(MediaCommand::UpdateSip(n)) => { session.sip_leg().update(Instant::now(), n); Ok(()) }
                Some(MediaCommand::AddCandidate(c)) => {
                    if let Err(e) = session.add_remote_candidate(&c) {
                        debug!(error = %e, "remote candidate refused");
                    }
                    Ok(())
                }
                Some(MediaCommand::SipDigit(d, len)) => session.handle_sip_info_digit(Instant::now(), d, len),
                Some(MediaCommand::Quality(reply)) => {
                    let _ = reply.send((session.browser_quality(), session.sip_leg().record_quality()));
                    Ok(())
                }
                Some(MediaCommand::Stop) | None => return,
            },
        };
        if let Err(e) = result {
            debug!(error = %e, "browser leg failed");
            let _ = events.send(MediaEvent::Lost(Side::Browser)).await;
            return;
        }
    }
}

impl MediaEngine {
    /// Starts the task that bridges a customer's RTP leg (an inbound trunk call) to the agent's.
    pub fn spawn_rtp(
        &self,
        customer: (Negotiated, PortLease),
        agent: (Negotiated, PortLease),
        timers: RtpLegTimers,
    ) -> MediaHandle {
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let now = Instant::now();
        let bridge = RtpBridge::new(
            RtpLeg::new(now, customer.0, rand::random::<u32>(), timers),
            RtpLeg::new(now, agent.0, rand::random::<u32>(), timers),
        );
        let task = tokio::spawn(run_rtp(bridge, customer.1, agent.1, cmd_rx, ev_tx));
        MediaHandle {
            commands: cmd_tx,
            events: ev_rx,
            task,
        }
    }
}

/// The per-call loop of an RTP-to-RTP call: four sockets, the commands, one timer.
async fn run_rtp(
    mut bridge: RtpBridge,
    cust: PortLease,
    agent: PortLease,
    mut commands: mpsc::Receiver<MediaCommand>,
    events: mpsc::Sender<MediaEvent>,
) {
    let (mut b1, mut b2, mut b3, mut b4) = (
        vec![0u8; 2048],
        vec![0u8; 2048],
        vec![0u8; 1500],
        vec![0u8; 1500],
    );
    let socks = Sockets {
        customer: &cust.socket,
        customer_rtcp: cust.rtcp.as_ref(),
        sip: &agent.socket,
        sip_rtcp: agent.rtcp.as_ref(),
    };
    loop {
        let Some(deadline) = flush(|| bridge.poll_output(), &socks, &events).await else {
            return;
        };
        tokio::select! {
            r = cust.socket.recv_from(&mut b1) => if let Ok((n, from)) = r {
                bridge.handle_customer_datagram(Instant::now(), from, &b1[..n]);
            },
            r = agent.socket.recv_from(&mut b2) => if let Ok((n, from)) = r {
                bridge.handle_agent_datagram(Instant::now(), from, &b2[..n]);
            },
            r = recv_rtcp(cust.rtcp.as_ref(), &mut b3) => if let Ok((n, from)) = r {
                bridge.handle_customer_rtcp(Instant::now(), from, &b3[..n]);
            },
            r = recv_rtcp(agent.rtcp.as_ref(), &mut b4) => if let Ok((n, from)) = r {
                bridge.handle_agent_rtcp(Instant::now(), from, &b4[..n]);
            },
            _ = tokio::time::sleep_until(deadline.into()) => bridge.handle_timeout(Instant::now()),
            cmd = commands.recv() => match cmd {
                Some(MediaCommand::Play(src)) => bridge.play_to_customer(Instant::now(), src),
                Some(MediaCommand::Bridge) => bridge.bridge(),
                Some(MediaCommand::UpdateSip(n)) => bridge.agent_leg().update(Instant::now(), n),
                Some(MediaCommand::AddCandidate(_) | MediaCommand::SipDigit(..)) => {}
                Some(MediaCommand::Quality(reply)) => {
                    let _ = reply.send((bridge.customer_leg().record_quality(), bridge.agent_leg().record_quality()));
                }
                Some(MediaCommand::Stop) | None => return,
            },
        }
    }
}

/// A call's sockets by [`Side`]: the customer's (the browser's, or the caller's RTP) and the agent's.
/// An RTCP side without its own socket uses the RTP one.
struct Sockets<'a> {
    customer: &'a UdpSocket,
    customer_rtcp: Option<&'a UdpSocket>,
    sip: &'a UdpSocket,
    sip_rtcp: Option<&'a UdpSocket>,
}

impl Sockets<'_> {
    fn for_side(&self, side: Side) -> &UdpSocket {
        match side {
            Side::Browser | Side::Customer => self.customer,
            Side::CustomerRtcp => self.customer_rtcp.unwrap_or(self.customer),
            Side::Sip => self.sip,
            Side::SipRtcp => self.sip_rtcp.unwrap_or(self.sip),
        }
    }
}

/// Carries out a session's outputs until it asks to wait: sends datagrams, forwards events. Returns
/// the instant to wake at, or `None` when the task must end (the call is gone, or a leg was lost).
async fn flush(
    mut poll: impl FnMut() -> MediaOutput,
    socks: &Sockets<'_>,
    events: &mpsc::Sender<MediaEvent>,
) -> Option<Instant> {
    loop {
        match poll() {
            MediaOutput::Transmit { side, to, data } => {
                if let Err(e) = socks.for_side(side).send_to(&data, to).await {
                    debug!(%to, error = %e, "media send failed");
                }
            }
            MediaOutput::Event(e) => {
                let lost = matches!(e, MediaEvent::Lost(_));
                if events.send(e).await.is_err() || lost {
                    return None;
                }
            }
            // The tap is off unless a recorder enables it; recording to files lands with records.
            MediaOutput::Tap { .. } => {}
            MediaOutput::Timeout(t) => return Some(t),
        }
    }
}

/// Receives on the RTCP socket, or waits forever without one.
async fn recv_rtcp(
    sock: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
