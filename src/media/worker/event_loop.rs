//! One media worker's thread: a mio poller over its inbox, its shared browser port and its calls'
//! own sockets, and one timer heap over its calls' deadlines. Each datagram goes to its call's
//! core, whose outputs are carried out at once (the shared port's are sent at the end of the
//! round, together).

use super::batch::{self, RecvSlots};
use super::call::{flush, guarded, steer, CallEntry, Timers};
use super::sockets::{LegSock, Tokens, SHARED, WAKER};
use super::{Counters, Msg};
use crate::media::call_media::MediaEvent;
use crate::media::demux::SharedDemux;
use crate::media::engine::{MediaCommand, PortLease};
use crate::media::leg::NewLeg;
use crate::media::recording_tap;
use crate::media::routes::LegId;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Instant;
use tracing::{debug, warn};

/// What the engine keeps of a started worker.
pub(super) struct Spawned {
    pub inbox: std_mpsc::Sender<Msg>,
    pub waker: Waker,
    pub calls: Arc<AtomicUsize>,
    pub counters: Arc<Counters>,
    /// The shared browser port: (bound, advertised).
    pub shared: Option<(SocketAddr, SocketAddr)>,
}

/// Consecutive receive errors on one socket before a round gives up on it.
const MAX_RECV_ERRORS: usize = 8;
/// Socket buffers asked for on the shared browser port: a few hundred milliseconds of 1,000
/// browsers' packets (each takes about 1 KiB of kernel memory).
const SHARED_BUFFER: usize = 4 << 20;
/// Datagrams per read on the shared browser port (many browsers' packets queue there).
const SHARED_BATCH: usize = 32;
/// ... and on a leg's own socket (one peer: 50 packets a second, rarely more than one waiting).
const LEG_BATCH: usize = 4;

/// Starts worker `index` with its shared browser port (if any) on a thread of its own.
pub(super) fn spawn(index: usize, port: Option<PortLease>) -> std::io::Result<Spawned> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let (tx, rx) = std_mpsc::channel();
    let load = Arc::new(AtomicUsize::new(0));
    let mut shared = None;
    if let Some(mut lease) = port {
        if let Some(sock) = lease.socket.take() {
            let mut sock = UdpSocket::from_std(sock);
            match crate::sys::grow_socket_buffers(&sock, SHARED_BUFFER) {
                Some(got) if got < SHARED_BUFFER => warn!(
                    worker = index,
                    bytes = got,
                    "the shared browser port's receive buffer is small: bursts may be dropped (raise net.core.rmem_max)"
                ),
                _ => {}
            }
            poll.registry()
                .register(&mut sock, SHARED, Interest::READABLE)?;
            shared = Some(SharedPort {
                sock,
                demux: SharedDemux::default(),
                lease,
            });
        }
    }
    let addrs = shared.as_ref().map(|s| (s.lease.local, s.lease.advertised));
    let worker = Worker {
        index,
        poll,
        rx,
        calls: HashMap::new(),
        tokens: Tokens::default(),
        timers: BinaryHeap::new(),
        shared,
        shared_out: Vec::new(),
        load: load.clone(),
        counters: Arc::default(),
        slots: RecvSlots::new(SHARED_BATCH),
    };
    let counters = worker.counters.clone();
    std::thread::Builder::new()
        .name(format!("media-{index}"))
        .spawn(move || worker.run())?;
    Ok(Spawned {
        inbox: tx,
        waker,
        calls: load,
        counters,
        shared: addrs,
    })
}

/// The worker's port for browsers.
struct SharedPort {
    sock: UdpSocket,
    demux: SharedDemux<(u64, LegId)>,
    /// Holds the port (its socket taken out above); dropped after `sock`.
    lease: PortLease,
}

struct Worker {
    index: usize,
    poll: Poll,
    rx: std_mpsc::Receiver<Msg>,
    calls: HashMap<u64, CallEntry>,
    tokens: Tokens,
    timers: Timers,
    shared: Option<SharedPort>,
    /// Datagrams for the shared port, sent at the end of the round.
    shared_out: Vec<(SocketAddr, Vec<u8>)>,
    load: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    slots: RecvSlots,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self
                .timers
                .peek()
                .map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                warn!(worker = self.index, error = %e, "media worker's poller failed");
                break;
            }
            self.counters.rounds.fetch_add(1, Ordering::Relaxed);
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {
                        if !self.inbox() {
                            self.shutdown();
                            return;
                        }
                    }
                    SHARED => self.read_shared(),
                    t => self.read_leg(t),
                }
            }
            self.fire_timers();
            self.send_shared();
        }
        self.shutdown();
    }

    /// Everything in the inbox; false when the engine is gone.
    fn inbox(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Msg::Shutdown) | Err(std_mpsc::TryRecvError::Disconnected) => return false,
                Ok(Msg::Open {
                    key,
                    media,
                    events,
                    done,
                    ended,
                }) => {
                    let entry = CallEntry {
                        media,
                        events,
                        legs: Vec::new(),
                        deadline: None,
                        rec: None,
                        done: Some(done),
                        ended,
                    };
                    self.calls.insert(key, entry);
                    self.flush(key);
                }
                Ok(Msg::Command(key, cmd)) => {
                    let done = guarded(key, || {
                        self.command(key, cmd);
                        true
                    });
                    if !done {
                        self.close(key);
                    }
                }
                Ok(Msg::Close(key)) => self.close(key),
                Err(std_mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    /// Carries out one command for a call.
    fn command(&mut self, key: u64, cmd: MediaCommand) {
        let now = Instant::now();
        let Some(e) = self.calls.get_mut(&key) else {
            return; // the call has ended: replies waiting on it see their channel closed
        };
        match cmd {
            MediaCommand::Stop => return self.close(key),
            MediaCommand::AddLeg { id, leg, lease } => self.add_leg(key, id, leg, lease),
            MediaCommand::RemoveLeg(id) => {
                e.media.remove_leg(now, id);
                self.drop_leg(key, id);
            }
            MediaCommand::Record(r) => recording_tap::command(&mut e.media, &mut e.rec, r),
            MediaCommand::Reoffer(id, offer, reply) => {
                let r = e.media.reoffer(id, &offer).map_err(|e| e.to_string());
                // An ICE restart changes our ufrag: the shared port routes by the new one.
                if let (Ok(_), Some(sh), Some(ufrag)) =
                    (&r, self.shared.as_mut(), e.media.browser_ufrag(id))
                {
                    if e.legs.iter().any(|l| l.id == id && l.is_shared()) {
                        sh.demux.set_ufrag((key, id), ufrag);
                    }
                }
                let _ = reply.send(r);
            }
            other => steer(&mut e.media, now, other),
        }
        self.flush(key);
    }

    /// A new leg: on the shared browser port, or on sockets of its own.
    fn add_leg(&mut self, key: u64, id: LegId, leg: NewLeg, lease: PortLease) {
        self.drop_leg(key, id);
        let sock = match lease.shared_on {
            Some(w) if w == self.index && self.shared.is_some() => {
                if let (NewLeg::Browser(b), Some(sh)) = (&leg, self.shared.as_mut()) {
                    sh.demux.set_ufrag((key, id), b.ice_ufrag());
                }
                Ok(LegSock::shared(id, lease))
            }
            Some(w) => Err(format!(
                "answered on worker {w}'s port, but the call is on worker {}",
                self.index
            )),
            None => LegSock::own(key, id, lease, self.poll.registry(), &mut self.tokens)
                .map_err(|e| e.to_string()),
        };
        let Some(e) = self.calls.get_mut(&key) else {
            return;
        };
        match sock {
            Ok(sock) => {
                e.legs.push(sock);
                e.media
                    .add_leg(Instant::now(), id, leg, rand::random::<u32>());
            }
            Err(why) => {
                warn!(leg = %id, %why, "media leg not added");
                let _ = e.events.send(MediaEvent::Lost(id));
            }
        }
    }

    /// Closes a leg's sockets (its place on the shared port) if it has any.
    fn drop_leg(&mut self, key: u64, id: LegId) {
        let Some(e) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(i) = e.legs.iter().position(|l| l.id == id) else {
            return;
        };
        let sock = e.legs.swap_remove(i);
        if sock.is_shared() {
            if let Some(sh) = self.shared.as_mut() {
                sh.demux.remove((key, id));
            }
        }
        sock.close(self.poll.registry(), &mut self.tokens);
    }

    /// The call ends: its sockets close, its recording is finished, its handle is told.
    fn close(&mut self, key: u64) {
        let Some(e) = self.calls.get(&key) else {
            return;
        };
        let ids: Vec<LegId> = e.legs.iter().map(|l| l.id).collect();
        for id in ids {
            self.drop_leg(key, id);
        }
        let Some(mut e) = self.calls.remove(&key) else {
            return;
        };
        if let Some(r) = e.rec.take() {
            drop(r.stop(Instant::now()));
        }
        e.ended.store(true, Ordering::Release);
        self.load.fetch_sub(1, Ordering::Relaxed);
        if let Some(done) = e.done.take() {
            let _ = done.send(());
        }
    }

    fn shutdown(&mut self) {
        let keys: Vec<u64> = self.calls.keys().copied().collect();
        for key in keys {
            self.close(key);
        }
    }

    /// Carries out a call's outputs until it asks to wait; closes it when nobody listens any more.
    fn flush(&mut self, key: u64) {
        let alive = match self.calls.get_mut(&key) {
            Some(e) => flush(e, key, &mut self.shared_out, &mut self.timers),
            None => true,
        };
        if !alive {
            self.close(key);
        }
    }

    /// Every datagram waiting on the shared browser port, each to its leg.
    fn read_shared(&mut self) {
        let Worker {
            shared: Some(sh),
            calls,
            timers,
            shared_out,
            slots,
            counters,
            ..
        } = self
        else {
            return;
        };
        let mut dead = Vec::new();
        let mut errors = 0;
        loop {
            match slots.recv(&sh.sock, SHARED_BATCH) {
                Ok(n) => {
                    errors = 0;
                    counters.datagrams.fetch_add(n as u64, Ordering::Relaxed);
                    let now = Instant::now();
                    for (data, from) in (0..n).filter_map(|i| slots.get(i)) {
                        let Some((key, leg)) = sh.demux.route(from, data) else {
                            continue; // not one of ours: dropped
                        };
                        let Some(e) = calls.get_mut(&key) else {
                            continue;
                        };
                        let local = sh.lease.local;
                        let alive = guarded(key, || {
                            e.media.handle_datagram(now, leg, from, local, data);
                            flush(e, key, shared_out, timers)
                        });
                        if !alive {
                            dead.push(key);
                        }
                    }
                    if n < SHARED_BATCH {
                        break; // the socket is dry
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!(error = %e, "shared media port");
                    errors += 1;
                    if errors >= MAX_RECV_ERRORS {
                        break;
                    }
                }
            }
        }
        for key in dead {
            self.close(key);
        }
    }

    /// Every datagram waiting on one leg's socket.
    fn read_leg(&mut self, t: Token) {
        let Some(r) = self.tokens.get(t) else {
            return;
        };
        let Worker {
            calls,
            timers,
            shared_out,
            slots,
            counters,
            ..
        } = self;
        let Some(e) = calls.get_mut(&r.key) else {
            return;
        };
        let Some(i) = e.legs.iter().position(|l| l.id == r.leg) else {
            return;
        };
        let mut errors = 0;
        let mut alive = true;
        while alive {
            let sock = if r.rtcp {
                &e.legs[i].rtcp
            } else {
                &e.legs[i].rtp
            };
            let Some((sock, _)) = sock else { break };
            match slots.recv(sock, LEG_BATCH) {
                Ok(n) => {
                    errors = 0;
                    counters.datagrams.fetch_add(n as u64, Ordering::Relaxed);
                    let now = Instant::now();
                    let local = e.legs[i].local;
                    for (data, from) in (0..n).filter_map(|i| slots.get(i)) {
                        alive &= guarded(r.key, || {
                            if r.rtcp {
                                e.media.handle_rtcp(now, r.leg, from, data);
                            } else {
                                e.media.handle_datagram(now, r.leg, from, local, data);
                            }
                            flush(e, r.key, shared_out, timers)
                        });
                    }
                    if n < LEG_BATCH {
                        break; // the socket is dry
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors (the peer's port closed) are reported once on a later receive.
                    debug!(error = %e, "media socket");
                    errors += 1;
                    if errors >= MAX_RECV_ERRORS {
                        break;
                    }
                }
            }
        }
        if !alive {
            self.close(r.key);
        }
    }

    /// Calls whose deadline has come; drops stale heap entries when they pile up.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        let mut dead = Vec::new();
        // Bounded, so a core that keeps asking for "now" cannot hold the loop.
        let mut budget = self.calls.len() * 4 + 16;
        while let Some(&Reverse((t, key))) = self.timers.peek() {
            if t > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.timers.pop();
            let Some(e) = self.calls.get_mut(&key) else {
                continue;
            };
            if e.deadline != Some(t) {
                continue; // stale: the call asked for another time since
            }
            e.deadline = None;
            self.counters.timer_fires.fetch_add(1, Ordering::Relaxed);
            let (shared_out, timers) = (&mut self.shared_out, &mut self.timers);
            let alive = guarded(key, || {
                e.media.handle_timeout(now);
                flush(e, key, shared_out, timers)
            });
            if !alive {
                dead.push(key);
            }
        }
        for key in dead {
            self.close(key);
        }
        if self.timers.len() > 4 * self.calls.len() + 64 {
            self.timers = self
                .calls
                .iter()
                .filter_map(|(k, e)| e.deadline.map(|d| Reverse((d, *k))))
                .collect();
        }
    }

    /// The round's datagrams for browsers, from the shared port.
    fn send_shared(&mut self) {
        let Some(sh) = self.shared.as_ref() else {
            self.shared_out.clear();
            return;
        };
        let sent = batch::send_all(&sh.sock, &self.shared_out);
        if sent < self.shared_out.len() {
            debug!(
                dropped = self.shared_out.len() - sent,
                "shared media port full"
            );
        }
        self.shared_out.clear();
    }
}
