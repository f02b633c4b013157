//! The call task's side of recording: carries out what [`super::recording::RecordingState`]
//! decides (a new file under `recording.directory`, pause, stop), keeps the media's channels to
//! the call's parties (the customer left, every agent in the call right; nobody else), and at the
//! end writes what became of each file into the record. A recording that fails (disk full, a
//! directory that cannot be written) is logged, counted and recorded; the call goes on. When the
//! call's queue lists SIPREC recorders, each recording also has a session toward them
//! ([`super::siprec_leg`]): it hears of pauses and of agents changing, and its outcome (the
//! recorder that took it, or why none did) goes into the same entry of the record.

use super::customer::CUSTOMER;
use super::recording::Do;
use super::siprec_leg::{self, SiprecSetup};
use super::task::{unix_ms, CallTask};
use crate::media::engine::MediaCommand;
use crate::media::recorder::Channel;
use crate::media::recording_tap::RecordCommand;
use crate::records::cdr::RecordingRecord;
use crate::siprec::metadata::{Metadata, Participant, Side};
use std::time::Duration;
use tracing::{info, warn};

/// How long the end of a call waits for its recording's file to be finished.
const FINISH_WAIT: Duration = Duration::from_secs(3);

impl CallTask {
    /// Carries out one recording decision.
    pub(super) async fn record_do(&mut self, d: Do) {
        match d {
            Do::Start => self.start_recording().await,
            Do::Pause(p) => {
                if let Some(s) = &self.siprec {
                    s.pause(p);
                }
                self.send_record(RecordCommand::Pause(p)).await
            }
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
        self.rec_legs = self.right_channel_legs();
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
            recorder: None,
            recorder_error: None,
        });
        self.send_record(RecordCommand::Start(path, legs)).await;
        crate::metrics::recording_active(1);
        self.start_siprec();
    }

    /// The queue's recorders get the recording too (a session of their own, with the metadata).
    fn start_siprec(&mut self) {
        let cfg = &self.mgr.cfg;
        let Some(q) = self
            .ctl
            .queue()
            .and_then(|q| cfg.queues.iter().find(|c| c.name == q))
            .filter(|q| !q.siprec.is_empty())
        else {
            return;
        };
        let realm = &cfg.sip.realm;
        let value = |k: &str| {
            self.context
                .get(k)
                .map(crate::widget::context::sanitize)
                .filter(|v| !v.is_empty())
        };
        let user = value("caller").unwrap_or_else(|| format!("customer-{}", self.id));
        let customer = Participant {
            key: "customer".into(),
            aor: format!(
                "sip:{}@{realm}",
                user.replace(
                    |c: char| !c.is_ascii_alphanumeric() && !"+-_.".contains(c),
                    ""
                )
            ),
            name: value("name"),
            side: Side::Customer,
            context: self
                .context
                .iter()
                .map(|(k, v)| (k.clone(), crate::widget::context::sanitize(v)))
                .collect(),
            joined_ms: unix_ms(),
            left_ms: None,
        };
        let mut metadata = Metadata::new(&self.id.to_string(), unix_ms(), customer);
        metadata.set_agents(unix_ms(), &self.siprec_agents());
        self.siprec = Some(siprec_leg::spawn(SiprecSetup {
            call: self.id.to_string(),
            recorders: q.siprec.clone(),
            answer_within: Duration::from_secs(cfg.recording.siprec_timeout_secs),
            metadata,
            paused: false,
            layer: self.mgr.layer.clone(),
            engine: self.mgr.engine.clone(),
            media: self.media.commands.clone(),
            tcp: cfg.sip.listen_tcp.is_some(),
        }));
    }

    /// The agents (and supervisors the customer hears) in the recording, for the metadata:
    /// (id, address of record, display name).
    fn siprec_agents(&self) -> Vec<(String, String, Option<String>)> {
        let cfg = &self.mgr.cfg;
        let supervisors = self.ctl.supervisors().into_iter();
        let heard = supervisors.filter(|(_, m)| m.is_heard_by_customer());
        self.ctl
            .agents()
            .iter()
            .map(String::as_str)
            .chain(heard.map(|(s, _)| s))
            .filter(|p| self.leg_of(p).is_some())
            .map(|p| {
                let name = match cfg.agent(p) {
                    Some(a) => a.display_name.clone(),
                    None => cfg.supervisor(p).and_then(|s| s.display_name.clone()),
                };
                (p.to_string(), format!("sip:{p}@{}", cfg.sip.realm), name)
            })
            .collect()
    }

    /// After the call changed: agents who joined are on the right channel, those who left on none.
    pub(super) async fn sync_recording_legs(&mut self) {
        if !self.recording.is_on() {
            return;
        }
        let now = self.right_channel_legs();
        let joined: Vec<_> = now.difference(&self.rec_legs).copied().collect();
        let left: Vec<_> = self.rec_legs.difference(&now).copied().collect();
        let changed = !joined.is_empty() || !left.is_empty();
        for l in joined {
            self.send_record(RecordCommand::Channel(l, Some(Channel::Right)))
                .await;
        }
        for l in left {
            self.send_record(RecordCommand::Channel(l, None)).await;
        }
        self.rec_legs = now;
        // (Parties leaving with the call's end are the BYE's news, not a metadata update's.)
        if let (true, false, Some(s)) = (changed, self.ctl.is_ended(), &self.siprec) {
            s.agents(self.siprec_agents());
        }
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
        let siprec = match self.siprec.take() {
            Some(s) => Some(s.stop().await),
            None => None,
        };
        let Some(r) = self.record.recordings.last_mut() else {
            return;
        };
        r.paused_ms = paused;
        if let Some(s) = siprec {
            r.recorder = s.recorder;
            r.recorder_error = s.error;
        }
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
