//! The media shell: UDP sockets from the port pool and one tokio task per call that owns its
//! [`CallMedia`] core, moving datagrams and time in and out. Everything the task does, the sans-IO
//! core decides; the task only waits on its legs' sockets, its command channel and one timer.
//! Legs come and go by command, each with its own port lease.

use super::browser_leg::{AudioCodec, BrowserLeg, BrowserLegError};
use super::call_media::{CallMedia, MediaEvent, MediaOutput};
use super::leg::NewLeg;
use super::ports::PortPool;
use super::recording_tap::{self, Recording};
use super::routes::{Gain, LegId};
use super::rtp_leg::RtpLegTimers;
use super::sdp::Negotiated;
use super::source::Source;
use super::transcode::Transcoder;
use crate::records::cdr::Quality;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
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
    /// A new leg on its own port. It hears nobody until routed.
    AddLeg {
        /// The call's name for it.
        id: LegId,
        /// A browser leg, or what was negotiated with an RTP peer.
        leg: NewLeg,
        /// Its socket(s).
        lease: PortLease,
    },
    /// The leg leaves; its port goes back to the pool.
    RemoveLeg(LegId),
    /// A re-INVITE or an answer changed an RTP leg.
    UpdateRtp(LegId, Negotiated),
    /// The peer of an RTP leg signals from this host (its media from there latches at once).
    Trust(LegId, IpAddr),
    /// `to` hears `from` at a gain, or (`None`) not at all.
    Route {
        /// Who is heard.
        from: LegId,
        /// Who hears.
        to: LegId,
        /// The gain, or off.
        gain: Option<Gain>,
    },
    /// Play this to the leg in place of what it hears.
    Play(LegId, Source),
    /// The leg hears its routes again.
    StopPlaying(LegId),
    /// A trickled ICE candidate for a browser leg.
    AddCandidate(LegId, String),
    /// A digit that came out of band on this leg (SIP INFO).
    InfoDigit(LegId, char, Duration),
    /// Whether a leg's key presses are passed on (reported either way).
    KeepKeys(LegId, bool),
    /// The call's recording: start, a leg's channel, pause, stop.
    Record(super::recording_tap::RecordCommand),
    /// A new offer from a browser leg (ICE restart); the answer, or why not.
    Reoffer(LegId, String, oneshot::Sender<Result<String, String>>),
    /// Receive quality of every leg the call had.
    Quality(oneshot::Sender<Vec<(LegId, Option<Quality>)>>),
    /// End the media.
    Stop,
}

/// The call's handle on its media task.
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
                        tokio::time::sleep(Duration::from_secs(10)).await;
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

    /// Starts a call's media task, with no legs yet.
    pub fn spawn_call(&self, timers: RtpLegTimers) -> MediaHandle {
        let (cmd_tx, cmd_rx) = mpsc::channel(32);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let task = tokio::spawn(run(CallMedia::new(timers), cmd_rx, ev_tx));
        MediaHandle {
            commands: cmd_tx,
            events: ev_rx,
            task,
        }
    }
}

/// The call's legs' sockets.
struct Sockets {
    legs: Vec<(LegId, PortLease)>,
    /// Where the next receive poll starts, so a busy socket cannot starve the others.
    start: usize,
}

impl Sockets {
    fn lease(&self, leg: LegId) -> Option<&PortLease> {
        self.legs.iter().find(|(id, _)| *id == leg).map(|(_, l)| l)
    }

    /// The first datagram waiting on any socket: (leg index, from its RTCP socket, length, sender).
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<(usize, bool, usize, SocketAddr)> {
        let n = self.legs.len();
        self.start = self.start.wrapping_add(1);
        for k in 0..n {
            let idx = (self.start + k) % n;
            let lease = &self.legs[idx].1;
            for (rtcp, sock) in [(false, Some(&lease.socket)), (true, lease.rtcp.as_ref())] {
                let Some(sock) = sock else { continue };
                let mut rb = ReadBuf::new(buf);
                match sock.poll_recv_from(cx, &mut rb) {
                    Poll::Ready(Ok(from)) => {
                        return Poll::Ready((idx, rtcp, rb.filled().len(), from))
                    }
                    // ICMP errors reported on a later receive (the peer's port closed): one-shot.
                    Poll::Ready(Err(e)) => debug!(error = %e, "media socket"),
                    Poll::Pending => {}
                }
            }
        }
        Poll::Pending
    }
}

/// The per-call loop: one select over the legs' sockets, the command channel and the core's
/// deadline.
async fn run(
    mut media: CallMedia,
    mut commands: mpsc::Receiver<MediaCommand>,
    events: mpsc::Sender<MediaEvent>,
) {
    let mut buf = vec![0u8; 2048];
    let mut socks = Sockets {
        legs: Vec::new(),
        start: 0,
    };
    let mut rec: Option<Recording> = None;
    loop {
        let Some(mut deadline) = flush(&mut media, &socks, &events, &mut rec).await else {
            break;
        };
        if let Some(r) = rec.as_mut() {
            deadline = deadline.min(r.pump(Instant::now()));
        }
        tokio::select! {
            (idx, rtcp, n, from) = std::future::poll_fn(|cx| socks.poll_recv(cx, &mut buf)) => {
                let (id, lease) = (&socks.legs[idx].0, &socks.legs[idx].1);
                let now = Instant::now();
                if rtcp {
                    media.handle_rtcp(now, *id, from, &buf[..n]);
                } else {
                    media.handle_datagram(now, *id, from, lease.local, &buf[..n]);
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => media.handle_timeout(Instant::now()),
            cmd = commands.recv() => match cmd {
                Some(MediaCommand::Stop) | None => break,
                Some(MediaCommand::Record(r)) => recording_tap::command(&mut media, &mut rec, r),
                Some(cmd) => command(&mut media, &mut socks, cmd),
            },
        }
    }
    // A recording the call did not stop (the call task failed): its file is finished all the same.
    if let Some(r) = rec.take() {
        drop(r.stop(Instant::now()));
    }
}

/// Carries out one command.
fn command(media: &mut CallMedia, socks: &mut Sockets, cmd: MediaCommand) {
    let now = Instant::now();
    match cmd {
        MediaCommand::AddLeg { id, leg, lease } => {
            socks.legs.retain(|(l, _)| *l != id);
            socks.legs.push((id, lease));
            media.add_leg(now, id, leg, rand::random::<u32>());
        }
        MediaCommand::RemoveLeg(id) => {
            media.remove_leg(now, id);
            socks.legs.retain(|(l, _)| *l != id);
        }
        MediaCommand::UpdateRtp(id, n) => media.update_rtp(now, id, n),
        MediaCommand::Trust(id, ip) => media.trust(id, ip),
        MediaCommand::KeepKeys(id, keep) => media.keep_keys(id, keep),
        MediaCommand::Route { from, to, gain } => media.set_route(now, from, to, gain),
        MediaCommand::Play(id, s) => media.play(now, id, s),
        MediaCommand::StopPlaying(id) => media.stop_playing(id),
        MediaCommand::AddCandidate(id, c) => {
            if let Err(e) = media.add_remote_candidate(id, &c) {
                debug!(error = %e, "remote candidate refused");
            }
        }
        MediaCommand::InfoDigit(id, d, len) => media.handle_info_digit(now, id, d, len),
        MediaCommand::Reoffer(id, offer, reply) => {
            let _ = reply.send(media.reoffer(id, &offer).map_err(|e| e.to_string()));
        }
        MediaCommand::Quality(reply) => {
            let _ = reply.send(media.qualities());
        }
        MediaCommand::Stop | MediaCommand::Record(_) => {}
    }
}

/// Carries out the core's outputs until it asks to wait: sends datagrams, forwards events. Returns
/// the instant to wake at, or `None` when nobody listens to the call's events any more.
async fn flush(
    media: &mut CallMedia,
    socks: &Sockets,
    events: &mpsc::Sender<MediaEvent>,
    rec: &mut Option<Recording>,
) -> Option<Instant> {
    loop {
        match media.poll_output() {
            MediaOutput::Transmit {
                leg,
                rtcp,
                to,
                data,
            } => {
                let Some(lease) = socks.lease(leg) else {
                    continue;
                };
                let sock = if rtcp {
                    lease.rtcp.as_ref().unwrap_or(&lease.socket)
                } else {
                    &lease.socket
                };
                if let Err(e) = sock.send_to(&data, to).await {
                    debug!(%to, error = %e, "media send failed");
                }
            }
            MediaOutput::Event(e) => {
                if events.send(e).await.is_err() {
                    return None;
                }
            }
            MediaOutput::Tap { from, at, pcm } => {
                if let Some(r) = rec.as_mut() {
                    r.tap(Instant::now(), from, at, &pcm);
                }
            }
            MediaOutput::Timeout(t) => return Some(t),
        }
    }
}

impl MediaEngine {
    /// Starts a call's media with two legs, `LegId(0)` and `LegId(1)`, hearing each other (the
    /// benchmark's browser-to-phone bridge).
    pub async fn spawn_pair(
        &self,
        a: (NewLeg, PortLease),
        b: (NewLeg, PortLease),
        timers: RtpLegTimers,
    ) -> MediaHandle {
        let handle = self.spawn_call(timers);
        let (x, y) = (LegId(0), LegId(1));
        for cmd in [
            MediaCommand::AddLeg {
                id: x,
                leg: a.0,
                lease: a.1,
            },
            MediaCommand::AddLeg {
                id: y,
                leg: b.0,
                lease: b.1,
            },
            MediaCommand::Route {
                from: x,
                to: y,
                gain: Some(1.0),
            },
            MediaCommand::Route {
                from: y,
                to: x,
                gain: Some(1.0),
            },
        ] {
            let _ = handle.commands.send(cmd).await;
        }
        handle
    }
}
