//! The media task's side of a recording: the stereo core ([`super::recorder`]) fed from the media
//! core's tap, and its frames handed to the writer ([`crate::recording::Sink`]) as they fall due.
//! Commands come from the call (start, a party's channel, pause, stop), and the same frames go to
//! an external recorder over RTP while a SIPREC session holds it (`Fork`, [`super::siprec_fork`]).

use super::call_media::CallMedia;
use super::recorder::{Channel, StereoRecorder};
use super::routes::LegId;
use super::siprec_fork::{Fork, ForkTarget};
use crate::recording::{Outcome, Sink};
use std::path::PathBuf;
use std::time::Instant;
use tokio::sync::oneshot;

/// What the call tells its media about recording.
#[derive(Debug)]
pub enum RecordCommand {
    /// Start writing `path`, with these legs' channels.
    Start(PathBuf, Vec<(LegId, Channel)>),
    /// A leg's channel changed (a party joined: `Some`, left: `None`).
    Channel(LegId, Option<Channel>),
    /// Pause (silence from now) or resume.
    Pause(bool),
    /// Stop: the paused spans and, once written, the outcome.
    Stop(oneshot::Sender<Stopped>),
    /// Send the frames to a recorder from now on (`Some`), or no longer (`None`).
    Fork(Option<ForkTarget>),
}

/// A stopped recording.
#[derive(Debug)]
pub struct Stopped {
    /// Paused spans, (start, end) ms from the recording's start.
    pub paused_ms: Vec<(u64, u64)>,
    /// The writer's outcome, when it is done.
    pub outcome: oneshot::Receiver<Outcome>,
}

/// A recording in progress.
#[derive(Debug)]
pub struct Recording {
    core: StereoRecorder,
    sink: Sink,
    fork: Option<Fork>,
}

impl Recording {
    /// A tapped frame.
    pub fn tap(&mut self, now: Instant, leg: LegId, at: u32, pcm: &[i16]) {
        self.core.tap(now, leg, at, pcm);
    }

    /// Hands the frames due at `now` to the writer; when the next one is due.
    pub fn pump(&mut self, now: Instant) -> Instant {
        self.emit(|core| core.poll_frame(now));
        self.core.next_due()
    }

    /// Every frame `next` gives, to the writer and (unless paused) the recorder's streams.
    fn emit(&mut self, mut next: impl FnMut(&mut StereoRecorder) -> Option<Vec<i16>>) {
        loop {
            let paused = self.core.next_frame_paused();
            let Some(f) = next(&mut self.core) else {
                break;
            };
            if let Some(fork) = self.fork.as_mut() {
                fork.send_frame(&f, paused);
            }
            self.sink.push(&f);
        }
    }

    /// Ends the recording at `now`.
    pub fn stop(mut self, now: Instant) -> Stopped {
        self.core.pause(now, false);
        self.emit(|core| core.poll_final(now));
        if let Some(f) = self.fork.take() {
            crate::metrics::recording_streamed(f.sent_bytes());
        }
        Stopped {
            paused_ms: self.core.paused_spans_ms(),
            outcome: self.sink.finish(),
        }
    }
}

/// Carries out one command on the call's recording (and the media core's tap).
pub fn command(media: &mut CallMedia, rec: &mut Option<Recording>, cmd: RecordCommand) {
    let now = Instant::now();
    match cmd {
        RecordCommand::Start(path, legs) => {
            if let Some(old) = rec.take() {
                drop(old.stop(now));
            }
            let mut core = StereoRecorder::new(now);
            for (leg, ch) in legs {
                core.set_channel(leg, Some(ch));
            }
            *rec = Some(Recording {
                core,
                sink: Sink::start(path),
                fork: None,
            });
            media.set_tap(true);
        }
        RecordCommand::Channel(leg, ch) => {
            if let Some(r) = rec.as_mut() {
                r.core.set_channel(leg, ch);
            }
        }
        RecordCommand::Pause(p) => {
            if let Some(r) = rec.as_mut() {
                r.core.pause(now, p);
            }
        }
        RecordCommand::Fork(target) => {
            if let Some(r) = rec.as_mut() {
                let old =
                    std::mem::replace(&mut r.fork, target.map(|t| Fork::new(t, rand::random())));
                if let Some(f) = old {
                    crate::metrics::recording_streamed(f.sent_bytes());
                }
            }
        }
        RecordCommand::Stop(reply) => {
            media.set_tap(false);
            if let Some(r) = rec.take() {
                let _ = reply.send(r.stop(now));
            }
        }
    }
}
