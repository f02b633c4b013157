//! One call on a media worker: its entry, carrying out its core's outputs, and the guard that
//! keeps a bug in one call's media from ending the worker.

use super::sockets::LegSock;
use crate::media::call_media::{CallMedia, MediaEvent, MediaOutput};
use crate::media::engine::MediaCommand;
use crate::media::recording_tap::Recording;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

/// Calls' deadlines (stale entries are skipped: the call's `deadline` says which one counts).
pub(super) type Timers = BinaryHeap<Reverse<(Instant, u64)>>;

/// One call on the worker.
pub(super) struct CallEntry {
    pub media: Box<CallMedia>,
    pub events: mpsc::UnboundedSender<MediaEvent>,
    pub legs: Vec<LegSock>,
    /// The deadline in the timer heap (older entries for the call are stale).
    pub deadline: Option<Instant>,
    pub rec: Option<Recording>,
    pub done: Option<oneshot::Sender<()>>,
    pub ended: Arc<AtomicBool>,
}

/// Runs one step of one call; a panic in it (a bug: never expected, whatever arrives) ends that
/// call's media, not the worker with every call on it.
pub(super) fn guarded(key: u64, step: impl FnOnce() -> bool) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(alive) => alive,
        Err(_) => {
            tracing::error!(call = key, "media core panicked: the call's media ends");
            false
        }
    }
}

/// Commands that only steer the core.
pub(super) fn steer(media: &mut CallMedia, now: Instant, cmd: MediaCommand) {
    match cmd {
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
        MediaCommand::Quality(reply) => {
            let _ = reply.send(media.qualities());
        }
        MediaCommand::Stop
        | MediaCommand::AddLeg { .. }
        | MediaCommand::RemoveLeg(_)
        | MediaCommand::Record(_)
        | MediaCommand::Reoffer(..) => {}
    }
}

/// Carries out a call's outputs until it asks to wait: datagrams out (the shared port's into
/// `shared_out`), events to the call, taps to its recording; its next deadline into `timers`.
/// False when nobody listens to the call's events any more.
pub(super) fn flush(
    e: &mut CallEntry,
    key: u64,
    shared_out: &mut Vec<(SocketAddr, Vec<u8>)>,
    timers: &mut Timers,
) -> bool {
    loop {
        match e.media.poll_output() {
            MediaOutput::Transmit {
                leg,
                rtcp,
                to,
                data,
            } => {
                let Some(sock) = e.legs.iter().find(|l| l.id == leg) else {
                    continue;
                };
                if sock.is_shared() {
                    shared_out.push((to, data));
                } else if let Some(s) = sock.sender(rtcp) {
                    if let Err(err) = s.send_to(&data, to) {
                        debug!(%to, error = %err, "media send failed");
                    }
                    e.media.recycle(data);
                }
            }
            MediaOutput::Event(ev) => {
                if e.events.send(ev).is_err() {
                    return false;
                }
            }
            MediaOutput::Tap { from, at, pcm } => {
                if let Some(r) = e.rec.as_mut() {
                    r.tap(Instant::now(), from, at, &pcm);
                }
            }
            MediaOutput::Timeout(t) => {
                let due = match e.rec.as_mut() {
                    Some(r) => t.min(r.pump(Instant::now())),
                    None => t,
                };
                if e.deadline != Some(due) {
                    e.deadline = Some(due);
                    timers.push(Reverse((due, key)));
                }
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panicking_step_ends_its_call_and_the_worker_goes_on() {
        assert!(super::guarded(1, || true));
        assert!(!super::guarded(2, || false));
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let caught = super::guarded(3, || panic!("a bug in a core"));
        std::panic::set_hook(quiet);
        assert!(!caught, "the call is reported dead, the caller goes on");
    }
}
