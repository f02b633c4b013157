//! Media workers: one OS thread per core (by default), each driving many calls' sans-IO
//! [`CallMedia`] cores from one mio event loop with one timer heap, instead of a task, two wake-ups
//! and a sleep per call. A worker owns its calls' sockets (each plain RTP leg keeps its own port,
//! as SIP peers expect) and one shared UDP port for all its browser legs, demultiplexed by ICE
//! ufrag and then source address ([`crate::media::demux`]).
//!
//! Calls reach their worker through its inbox (a channel plus a mio waker): open a call, a
//! [`MediaCommand`] for it, close it. Events go back on each call's own tokio channel, so the call
//! task keeps talking to its media through a handle as before.

mod batch;
mod call;
mod event_loop;
mod sockets;

use super::call_media::{CallMedia, MediaEvent};
use super::engine::{MediaCommand, PortLease};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// What a worker is asked to do.
pub(crate) enum Msg {
    /// Take a new call.
    Open {
        key: u64,
        media: Box<CallMedia>,
        events: mpsc::UnboundedSender<MediaEvent>,
        done: oneshot::Sender<()>,
        ended: Arc<AtomicBool>,
    },
    /// A command for one of its calls.
    Command(u64, MediaCommand),
    /// Let a call go (its handle was dropped).
    Close(u64),
    /// The engine is gone: end every call and the thread.
    Shutdown,
}

/// A worker's counters (relaxed atomics, read at scrape time).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub rounds: AtomicU64,
    pub timer_fires: AtomicU64,
    pub datagrams: AtomicU64,
}

/// One worker's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Calls on it now.
    pub calls: u64,
    /// Event-loop rounds (wake-ups) ever.
    pub rounds: u64,
    /// Calls woken by their deadline ever.
    pub timer_fires: u64,
    /// Datagrams received ever.
    pub datagrams: u64,
}

/// One worker as the engine sees it.
struct WorkerRef {
    inbox: std_mpsc::Sender<Msg>,
    waker: mio::Waker,
    calls: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    /// The shared browser port: (bound, advertised).
    shared: Option<(SocketAddr, SocketAddr)>,
}

/// The engine's workers.
pub(crate) struct Pool {
    workers: Vec<WorkerRef>,
    next_key: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} media workers)", self.workers.len())
    }
}

impl Pool {
    /// Starts one worker per entry of `shared` (its browser port, if one could be bound). A worker
    /// whose thread or poller cannot start is left out; with none at all the engine cannot run.
    pub(crate) fn start(shared: Vec<Option<PortLease>>) -> Self {
        let mut workers = Vec::new();
        for (index, port) in shared.into_iter().enumerate() {
            match event_loop::spawn(index, port) {
                Ok(s) => workers.push(WorkerRef {
                    inbox: s.inbox,
                    waker: s.waker,
                    calls: s.calls,
                    counters: s.counters,
                    shared: s.shared,
                }),
                Err(e) => warn!(worker = index, error = %e, "media worker failed to start"),
            }
        }
        assert!(!workers.is_empty(), "no media worker could start");
        Pool {
            workers,
            next_key: AtomicU64::new(1),
        }
    }

    /// Hands `msg` to `worker`; false if it has ended.
    pub(crate) fn post(&self, worker: usize, msg: Msg) -> bool {
        let Some(w) = self.workers.get(worker) else {
            return false;
        };
        w.inbox.send(msg).is_ok() && w.waker.wake().is_ok()
    }

    /// Places a new call on `worker`; its key.
    pub(crate) fn open(
        &self,
        worker: usize,
        media: Box<CallMedia>,
        events: mpsc::UnboundedSender<MediaEvent>,
        done: oneshot::Sender<()>,
        ended: Arc<AtomicBool>,
    ) -> u64 {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        if let Some(w) = self.workers.get(worker) {
            w.calls.fetch_add(1, Ordering::Relaxed);
        }
        let open = Msg::Open {
            key,
            media,
            events,
            done,
            ended: ended.clone(),
        };
        if !self.post(worker, open) {
            ended.store(true, Ordering::Release);
        }
        key
    }

    /// The worker with the fewest calls.
    pub(crate) fn least_loaded(&self) -> usize {
        (0..self.workers.len())
            .min_by_key(|&i| self.workers[i].calls.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// `worker`'s shared browser port (bound, advertised).
    pub(crate) fn shared_port(&self, worker: usize) -> Option<(SocketAddr, SocketAddr)> {
        self.workers.get(worker).and_then(|w| w.shared)
    }

    /// Shared browser ports taken from the range.
    pub(crate) fn shared_ports(&self) -> usize {
        self.workers.iter().filter(|w| w.shared.is_some()).count()
    }

    /// Workers.
    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    /// Each worker's figures.
    pub(crate) fn stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .map(|w| WorkerStats {
                calls: w.calls.load(Ordering::Relaxed) as u64,
                rounds: w.counters.rounds.load(Ordering::Relaxed),
                timer_fires: w.counters.timer_fires.load(Ordering::Relaxed),
                datagrams: w.counters.datagrams.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for i in 0..self.workers.len() {
            self.post(i, Msg::Shutdown);
        }
    }
}
