//! The media shell's front: port leases, browser answers and the call's handle on its media.
//! The media itself runs on [`super::worker`]s: one thread per core, each driving many calls'
//! [`CallMedia`] cores from one event loop. A call is placed on the least-loaded worker and talks
//! to it through its [`MediaHandle`]; everything the worker does, the sans-IO core decides.

use super::browser_leg::{AudioCodec, BrowserLeg, BrowserLegError};
use super::call_media::{CallMedia, MediaEvent};
use super::leg::NewLeg;
use super::ports::PortPool;
use super::routes::{Gain, LegId};
use super::rtp_leg::RtpLegTimers;
use super::sdp::Negotiated;
use super::source::Source;
use super::transcode::Transcoder;
pub use super::worker::WorkerStats;
use super::worker::{Msg, Pool};
use crate::records::cdr::Quality;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
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

/// A media port: a socket of its own from the pool (given back when dropped), or a place on a
/// worker's shared browser port.
#[derive(Debug)]
pub struct PortLease {
    pool: Option<Arc<Mutex<PortPool>>>,
    /// The bound socket (non-blocking); `None` on a worker's shared browser port.
    pub socket: Option<UdpSocket>,
    /// Its local address.
    pub local: SocketAddr,
    /// The address to advertise for it.
    pub advertised: SocketAddr,
    /// The RTCP socket on the next (odd) port, for SIP legs.
    pub rtcp: Option<UdpSocket>,
    /// The worker whose shared port this is.
    pub(crate) shared_on: Option<usize>,
    /// Counts places on shared ports while they are held.
    places: Option<Arc<AtomicUsize>>,
}

impl PortLease {
    /// Sends one datagram from the lease's own socket without waiting (a full socket buffer drops
    /// it, as a network would); a place on a shared port has no socket of its own to send from.
    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        match &self.socket {
            Some(s) => s.send_to(data, to),
            None => Err(std::io::Error::other("a shared port's place has no socket")),
        }
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        // The sockets close before the port goes back.
        drop(self.socket.take());
        drop(self.rtcp.take());
        if let Some(places) = &self.places {
            places.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(pool) = &self.pool {
            // A poisoned pool only means another thread panicked while allocating; the set is intact.
            pool.lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(self.local.port());
        }
    }
}

/// Allocates sockets and places calls' media on the workers.
#[derive(Debug, Clone)]
pub struct MediaEngine {
    cfg: MediaConfig,
    pool: Arc<Mutex<PortPool>>,
    workers: Arc<Pool>,
    /// One DTLS certificate for every browser leg (its fingerprint is in each answer); each leg
    /// makes its own if the provider could not.
    cert: Option<Arc<str0m::config::DtlsCert>>,
    /// Browser places held on the shared ports.
    places: Arc<AtomicUsize>,
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

/// The call's handle on its media.
pub struct MediaHandle {
    /// Commands to the call's media.
    pub commands: MediaCommands,
    /// Events from it (flowing, digits, lost, prompt done).
    pub events: mpsc::UnboundedReceiver<MediaEvent>,
    /// Resolves once the worker has let the call go (its sockets closed, its ports back), after
    /// `Stop` or when every [`MediaCommands`] is dropped.
    pub task: MediaDone,
}

/// The call's media is gone (stopped, or its worker ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the call's media has ended")]
pub struct MediaGone;

/// Where a call's commands go: its worker's inbox, under the call's key. Cloneable; when the last
/// clone is dropped the worker lets the call go.
#[derive(Clone)]
pub struct MediaCommands(Arc<Ticket>);

struct Ticket {
    key: u64,
    worker: usize,
    pool: Arc<Pool>,
    /// Set by the worker when the call has ended.
    ended: Arc<AtomicBool>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pool.post(self.worker, Msg::Close(self.key));
    }
}

impl std::fmt::Debug for MediaCommands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MediaCommands(call {} on worker {})",
            self.0.key, self.0.worker
        )
    }
}

impl MediaCommands {
    /// Hands `cmd` to the call's worker (never waits: the inbox is unbounded, and commands are few).
    pub fn try_send(&self, cmd: MediaCommand) -> Result<(), MediaGone> {
        if self.0.ended.load(Ordering::Acquire) {
            return Err(MediaGone);
        }
        if self
            .0
            .pool
            .post(self.0.worker, Msg::Command(self.0.key, cmd))
        {
            Ok(())
        } else {
            Err(MediaGone)
        }
    }

    /// [`MediaCommands::try_send`], for callers written against a channel.
    pub async fn send(&self, cmd: MediaCommand) -> Result<(), MediaGone> {
        self.try_send(cmd)
    }

    /// The worker the call runs on (a browser leg joining it must be answered there).
    pub fn worker(&self) -> usize {
        self.0.worker
    }
}

/// Resolves when the worker has let the call go.
pub struct MediaDone(oneshot::Receiver<()>);

impl Future for MediaDone {
    type Output = Result<(), MediaGone>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A dropped sender means the worker itself ended: the call is gone either way.
        Pin::new(&mut self.0).poll(cx).map(|_| Ok(()))
    }
}

impl MediaEngine {
    /// An engine over `cfg`'s port range with one media worker per core.
    pub fn new(cfg: MediaConfig) -> Self {
        Self::with_workers(cfg, 0)
    }

    /// An engine with `workers` media workers (0: one per core). Each worker takes one port of the
    /// range for its browsers, if it can bind one.
    pub fn with_workers(cfg: MediaConfig, workers: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        let pool = Arc::new(Mutex::new(PortPool::new(cfg.port_min, cfg.port_max)));
        let shared: Vec<Option<PortLease>> = (0..workers)
            .map(|_| Self::bind_from(&cfg, &pool).ok())
            .collect();
        let provider = str0m::crypto::from_feature_flags();
        MediaEngine {
            workers: Arc::new(Pool::start(shared)),
            cfg,
            pool,
            cert: provider.dtls_provider.generate_certificate().map(Arc::new),
            places: Arc::default(),
        }
    }

    /// Leases not yet given back: ports of their own, plus places on the workers' shared browser
    /// ports (the shared ports themselves are not counted).
    pub fn ports_in_use(&self) -> usize {
        let used = self.pool.lock().unwrap_or_else(|e| e.into_inner()).in_use();
        used.saturating_sub(self.workers.shared_ports()) + self.places.load(Ordering::Relaxed)
    }

    /// Media workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Each worker's calls and counters.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.workers.stats()
    }

    /// Binds a socket on the next free even port (skipping ports the OS says are taken).
    pub async fn lease(&self) -> Result<PortLease, EngineError> {
        Self::bind_from(&self.cfg, &self.pool)
    }

    fn bind_from(cfg: &MediaConfig, pool: &Arc<Mutex<PortPool>>) -> Result<PortLease, EngineError> {
        let capacity = pool.lock().unwrap_or_else(|e| e.into_inner()).capacity();
        for _ in 0..capacity {
            let port = pool.lock().unwrap_or_else(|e| e.into_inner()).allocate();
            let Some(port) = port else { break };
            let local = SocketAddr::new(cfg.bind_ip, port);
            match UdpSocket::bind(local).and_then(|s| s.set_nonblocking(true).map(|_| s)) {
                Ok(socket) => {
                    let advertised =
                        SocketAddr::new(cfg.advertised_ip.unwrap_or(cfg.bind_ip), port);
                    return Ok(PortLease {
                        pool: Some(pool.clone()),
                        socket: Some(socket),
                        local,
                        advertised,
                        rtcp: None,
                        shared_on: None,
                        places: None,
                    });
                }
                Err(e) => {
                    debug!(%local, error = %e, "media port taken, trying the next");
                    // Kept marked as used for a while so the loop moves on; given back after.
                    let pool = pool.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(10));
                        pool.lock().unwrap_or_else(|e| e.into_inner()).release(port);
                    });
                }
            }
        }
        Err(EngineError::NoPort(cfg.port_min, cfg.port_max))
    }

    /// A lease for a SIP leg: the RTP port plus an RTCP socket on port + 1 (RFC 3550 §11). The RTCP
    /// port is best-effort: if the OS has it taken, RTCP goes out of the RTP socket.
    pub async fn lease_with_rtcp(&self) -> Result<PortLease, EngineError> {
        let mut lease = self.lease().await?;
        let rtcp = SocketAddr::new(lease.local.ip(), lease.local.port().wrapping_add(1));
        lease.rtcp = UdpSocket::bind(rtcp)
            .and_then(|s| s.set_nonblocking(true).map(|_| s))
            .ok();
        Ok(lease)
    }

    /// The browser codecs this build accepts, most preferred first.
    pub fn browser_codecs() -> Vec<AudioCodec> {
        [AudioCodec::Pcmu, AudioCodec::Pcma, AudioCodec::Opus]
            .into_iter()
            .filter(|c| Transcoder::supports(*c))
            .collect()
    }

    /// Answers a browser's offer on the least-loaded worker's shared port: the leg, its place, and
    /// the SDP answer. Start its call with [`MediaEngine::spawn_call_near`] (or add it to a call on
    /// that worker).
    pub async fn answer_browser(
        &self,
        now: Instant,
        offer: &str,
    ) -> Result<(BrowserLeg, PortLease, String), EngineError> {
        self.answer_browser_on(self.workers.least_loaded(), now, offer)
            .await
    }

    /// Answers a browser's offer on `worker`'s shared port (a port of its own if that worker has
    /// none).
    pub async fn answer_browser_on(
        &self,
        worker: usize,
        now: Instant,
        offer: &str,
    ) -> Result<(BrowserLeg, PortLease, String), EngineError> {
        let lease = match self.workers.shared_port(worker) {
            Some((local, advertised)) => {
                self.places.fetch_add(1, Ordering::Relaxed);
                PortLease {
                    pool: None,
                    socket: None,
                    local,
                    advertised,
                    rtcp: None,
                    shared_on: Some(worker),
                    places: Some(self.places.clone()),
                }
            }
            None => self.lease().await?,
        };
        let (leg, answer) = BrowserLeg::answer_with(
            now,
            offer,
            &[(lease.advertised, lease.local)],
            &Self::browser_codecs(),
            self.cert.as_deref(),
        )?;
        Ok((leg, lease, answer))
    }

    /// Starts a call's media, with no legs yet, on the least-loaded worker.
    pub fn spawn_call(&self, timers: RtpLegTimers) -> MediaHandle {
        self.spawn_on(self.workers.least_loaded(), timers)
    }

    /// Starts a call's media on the worker of `lease` (a browser leg answered on a shared port must
    /// live on that port's worker), or on the least-loaded one.
    pub fn spawn_call_near(&self, timers: RtpLegTimers, lease: &PortLease) -> MediaHandle {
        let worker = lease
            .shared_on
            .unwrap_or_else(|| self.workers.least_loaded());
        self.spawn_on(worker, timers)
    }

    fn spawn_on(&self, worker: usize, timers: RtpLegTimers) -> MediaHandle {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let ended = Arc::new(AtomicBool::new(false));
        let key = self.workers.open(
            worker,
            Box::new(CallMedia::new(timers)),
            ev_tx,
            done_tx,
            ended.clone(),
        );
        MediaHandle {
            commands: MediaCommands(Arc::new(Ticket {
                key,
                worker,
                pool: self.workers.clone(),
                ended,
            })),
            events: ev_rx,
            task: MediaDone(done_rx),
        }
    }

    /// Starts a call's media with two legs, `LegId(0)` and `LegId(1)`, hearing each other (the
    /// benchmark's browser-to-phone bridge).
    pub async fn spawn_pair(
        &self,
        a: (NewLeg, PortLease),
        b: (NewLeg, PortLease),
        timers: RtpLegTimers,
    ) -> MediaHandle {
        let near = if a.1.shared_on.is_some() { &a.1 } else { &b.1 };
        let handle = self.spawn_call_near(timers, near);
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
