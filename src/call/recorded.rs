//! The call task's side of recording: carries out what [`super::recording::RecordingState`]
//! decides (a new file under `recording.directory`, pause, stop), keeps the media's channels to
//! the call's parties (the customer left, every agent in the call right; nobody else), and at the
//! end writes what became of each file into the record. A recording that fails (disk full, a
//! directory that cannot be written) is logged, counted and recorded; the call goes on.

use super::customer::CUSTOMER;
use super::recording::Do;
use super::task::{unix_ms, CallTask};
use crate::media::engine::MediaCommand;
use crate::media::recorder::Channel;
use crate::media::recording_tap::RecordCommand;
use crate::records::cdr::RecordingRecord;
use std::collections::BTreeSet;
use std::time::Duration;
use tracing::{info, warn};

/// How long the end of a call waits for its recording's file to be finished.
const FINISH_WAIT: Duration = Duration::from_secs(3);

impl CallTask {
    /// Carries out one recording decision.
    pub(super) async fn record_do(&mut self, d: Do) {
        match d {
            Do::Start => self.start_recording().await,
            Do::Pause(p) => self.send_record(RecordCommand::Pause(p)).await,
            Do::Stop => self.stop_recording().await,
        }
    }

    async fn send_record(&mut self, cmd: RecordCommand) {
        let _ = self.media.commands.send(MediaCommand::Record(cmd)).await;
    }

    async fn start_recording(&mut self) {
        let n = self.recording.files;
        let name = if n <= 1 {
            format!("{}.wav", self.id)
        } else {
            format!("{}-{n}.wav", self.id)
        };
        let path = self.mgr.cfg.recording.directory.join(name);
        self.rec_legs = self.agent_media_legs();
        let mut legs = vec![(CUSTOMER, Channel::Left)];
        legs.extend(self.rec_legs.iter().map(|&l| (l, Channel::Right)));
        info!(call = self.id, file = %path.display(), "recording started");
        self.record.recordings.push(RecordingRecord {
            file: path.display().to_string(),
            started_ms: unix_ms(),
            duration_secs: None,
            paused_ms: Vec::new(),
            error: None,
            deleted_ms: None,
        });
        self.send_record(RecordCommand::Start(path, legs)).await;
        crate::metrics::recording_active(1);
    }

    /// The media legs of the agents in the call.
    fn agent_media_legs(&self) -> BTreeSet<crate::media::routes::LegId> {
        self.ctl
            .agents()
            .iter()
            .filter_map(|a| self.party_media.get(a).filter(|m| m.added).map(|m| m.leg))
            .collect()
    }

    /// After the call changed: agents who joined are on the right channel, those who left on none.
    pub(super) async fn sync_recording_legs(&mut self) {
        if !self.recording.is_on() {
            return;
        }
        let now = self.agent_media_legs();
        let joined: Vec<_> = now.difference(&self.rec_legs).copied().collect();
        let left: Vec<_> = self.rec_legs.difference(&now).copied().collect();
        for l in joined {
            self.send_record(RecordCommand::Channel(l, Some(Channel::Right)))
                .await;
        }
        for l in left {
            self.send_record(RecordCommand::Channel(l, None)).await;
        }
        self.rec_legs = now;
    }

    /// Finishes the current file and writes what became of it into the record.
    async fn stop_recording(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send_record(RecordCommand::Stop(tx)).await;
        let stopped = tokio::time::timeout(FINISH_WAIT, rx).await;
        let (paused, outcome) = match stopped {
            Ok(Ok(s)) => (
                s.paused_ms,
                tokio::time::timeout(FINISH_WAIT, s.outcome)
                    .await
                    .ok()
                    .and_then(Result::ok),
            ),
            _ => (Vec::new(), None),
        };
        let Some(r) = self.record.recordings.last_mut() else {
            return;
        };
        r.paused_ms = paused;
        let written = outcome.as_ref().map(|o| o.bytes);
        match outcome {
            Some(o) => {
                r.duration_secs = Some((o.secs * 100.0).round() / 100.0);
                r.error = o.error.clone();
                if o.dropped_frames > 0 && r.error.is_none() {
                    r.error = Some(format!(
                        "{} frames dropped: the disk was too slow",
                        o.dropped_frames
                    ));
                }
            }
            None => r.error = Some("the recording's writer did not finish in time".into()),
        }
        match &r.error {
            Some(e) => {
                warn!(call = self.id, file = %r.file, error = %e, "recording failed");
                crate::metrics::recording_failed();
            }
            None => {
                info!(call = self.id, file = %r.file, secs = ?r.duration_secs, "recording finished")
            }
        }
        crate::metrics::recording_active(-1);
        if let Some(bytes) = written {
            crate::metrics::recording_written(bytes);
        }
        // The file is complete (or as complete as it will get): your systems may fetch it.
        self.mgr.records.write(&self.record, "recording.ready");
    }

    /// The call ends: a recording in progress is finished first.
    pub(super) async fn end_recording(&mut self) {
        if let Some(d) = self.recording.handle_end() {
            self.record_do(d).await;
        }
    }
}
