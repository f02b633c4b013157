//! The media task's side of a recording: the stereo core ([`super::recorder`]) fed from the media
//! core's tap, and its frames handed to the writer ([`crate::recording::Sink`]) as they fall due.
//! Commands come from the call (start, a party's channel, pause, stop).

use super::call_media::CallMedia;
use super::recorder::{Channel, StereoRecorder};
use super::routes::LegId;
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
}

impl Recording {
    /// A tapped frame.
    pub fn tap(&mut self, now: Instant, leg: LegId, at: u32, pcm: &[i16]) {
        self.core.tap(now, leg, at, pcm);
    }

    /// Hands the frames due at `now` to the writer; when the next one is due.
    pub fn pump(&mut self, now: Instant) -> Instant {
        while let Some(f) = self.core.poll_frame(now) {
            self.sink.push(&f);
        }
        self.core.next_due()
    }

    /// Ends the recording at `now`.
    pub fn stop(mut self, now: Instant) -> Stopped {
        for f in self.core.finish(now) {
            self.sink.push(&f);
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
        RecordCommand::Stop(reply) => {
            media.set_tap(false);
            if let Some(r) = rec.take() {
                let _ = reply.send(r.stop(now));
            }
        }
    }
}
