//! The shell of one call: a tokio task that owns the [`CallController`] and everything of the call
//! (its media handle, the parties' SIP legs and media legs, its record) and `select!`s over media
//! events, the customer's input, the ACD's events, the legs' events, commands from the API, one
//! timer and the stop token. Everything decided is decided by the controller; this task carries it
//! out, and tells its subscribers ([`CallEvent`]) and the directory what happened.
//!
//! The parties' legs live in [`super::agent_legs`], the API's commands in [`super::commands`].

use super::agent_legs::PartyMedia;
use super::controller::{Audio, CallController, CallOutput, CallState, EndReason, QueueSound};
use super::customer::{CustomerInput, CUSTOMER};
use super::directory::{CommandMsg, PartyView};
use super::events::{CallEvent, Role};
use super::sip_leg::{LegEvent, SipLeg};
use super::{CallId, CallManager, CustomerKind};
use crate::acd::service::AcdEvent;
use crate::lifecycle::CallGuard;
use crate::media::call_media::MediaEvent;
use crate::media::engine::{MediaCommand, MediaHandle};
use crate::media::routes::LegId;
use crate::media::source::Source;
use crate::records::cdr::CallRecord;
use rsipstack::dialog::invite_dialog::InviteDialog;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// The customer's party name (an internal caller's dialog waits under it to be answered).
pub(super) const CUSTOMER_PARTY: &str = "customer";

pub(super) struct CallTask {
    pub(super) mgr: Arc<CallManager>,
    pub(super) id: CallId,
    pub(super) ctl: CallController,
    pub(super) media: MediaHandle,
    /// The customer's SIP dialog (trunk caller or callback); `None` for a browser.
    customer_dialog: Option<InviteDialog>,
    /// Headers copied onto every agent INVITE (pass-through, `X-Context-Verified`).
    pub(super) headers: Vec<(String, String)>,
    pub(super) context: Map<String, Value>,
    subscribers: Vec<mpsc::UnboundedSender<CallEvent>>,
    /// The widget socket that holds the call now (a resumed one replaces a dropped one).
    pub(super) widget: Option<mpsc::UnboundedSender<CallEvent>>,
    /// The customer's language, for prompts.
    lang: Option<String>,
    /// What the customer's browser says it received (its latest `stats`).
    pub(super) reported: Option<crate::widget::stats::WidgetStats>,
    /// Whether the call is recorded (the queue's policy, the API's commands).
    pub(super) recording: super::recording::RecordingState,
    /// The agents' media legs on the recording's right channel.
    pub(super) rec_legs: BTreeSet<LegId>,
    /// Recording decisions to carry out.
    pub(super) pending_rec: Vec<super::recording::Do>,
    /// Desk phones' consult dialogs waiting for their target to answer: the dialog and our answer.
    pub(super) pending_accept: HashMap<String, (InviteDialog, String)>,
    /// The recording's SIPREC session, while the queue's recorders get it.
    pub(super) siprec: Option<super::siprec_leg::SiprecHandle>,
    commands: mpsc::UnboundedReceiver<CommandMsg>,
    /// SIP dialogs of the parties (agents, the external IVR), by party.
    pub(super) legs: HashMap<String, SipLeg>,
    /// Media legs of the parties, from the INVITE on.
    pub(super) party_media: HashMap<String, PartyMedia>,
    /// Who each media leg was (kept after it left, for the record's qualities).
    pub(super) leg_names: HashMap<LegId, String>,
    pub(super) next_leg: u32,
    /// Routes currently set in the media.
    routes: BTreeSet<(LegId, LegId)>,
    pub(super) leg_tx: mpsc::UnboundedSender<LegEvent>,
    leg_rx: mpsc::UnboundedReceiver<LegEvent>,
    pub(super) acd_tx: mpsc::UnboundedSender<AcdEvent>,
    acd_rx: mpsc::UnboundedReceiver<AcdEvent>,
    /// NOTIFYs in flight per party, so a BYE to the same party goes after them.
    pub(super) notifies: HashMap<String, tokio::task::JoinHandle<()>>,
    /// When each agent joined (talk time for the ACD).
    connected_at: HashMap<String, Instant>,
    /// Since when each party is in its state (unix ms), for the API.
    pub(super) since: HashMap<String, i64>,
    ended: Option<EndReason>,
    /// The call detail record, written at each milestone.
    pub(super) record: CallRecord,
    /// When the task was made (the call's request), for the setup-time histogram.
    created: Instant,
    _guard: CallGuard,
}

/// Unix time in milliseconds.
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl CallTask {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        mgr: Arc<CallManager>,
        id: CallId,
        kind: CustomerKind,
        ctl: CallController,
        media: MediaHandle,
        context: Map<String, Value>,
        guard: CallGuard,
        commands: mpsc::UnboundedReceiver<CommandMsg>,
    ) -> Self {
        let (leg_tx, leg_rx) = mpsc::unbounded_channel();
        let (acd_tx, acd_rx) = mpsc::unbounded_channel();
        let record = CallRecord::new(id, kind.as_str(), context.clone(), unix_ms());
        CallTask {
            mgr,
            id,
            ctl,
            media,
            customer_dialog: None,
            headers: Vec::new(),
            context,
            subscribers: Vec::new(),
            widget: None,
            lang: None,
            reported: None,
            recording: Default::default(),
            rec_legs: BTreeSet::new(),
            pending_rec: Vec::new(),
            siprec: None,
            pending_accept: HashMap::new(),
            commands,
            legs: HashMap::new(),
            party_media: HashMap::new(),
            leg_names: HashMap::new(),
            next_leg: 1,
            routes: BTreeSet::new(),
            leg_tx,
            leg_rx,
            acd_tx,
            acd_rx,
            notifies: HashMap::new(),
            connected_at: HashMap::new(),
            since: HashMap::new(),
            ended: None,
            record,
            created: Instant::now(),
            _guard: guard,
        }
    }

    /// The customer's SIP dialog (BYE at the end unless the customer hung up).
    pub(super) fn with_customer_dialog(mut self, dialog: Option<InviteDialog>) -> Self {
        self.customer_dialog = dialog;
        self
    }

    /// Headers for every agent INVITE.
    pub(super) fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// A first follower of the call's events.
    pub(super) fn with_subscriber(mut self, s: Option<mpsc::UnboundedSender<CallEvent>>) -> Self {
        self.subscribers.extend(s);
        self
    }

    /// The customer's language (prompts in it where configured).
    pub(super) fn with_lang(mut self, lang: Option<String>) -> Self {
        self.lang = lang;
        self
    }

    pub(super) async fn run(mut self, mut input: mpsc::UnboundedReceiver<CustomerInput>) {
        let stop = self.mgr.lifecycle.end_calls_token();
        self.mgr.records.write(&self.record, "call.started");
        crate::metrics::call_started(&self.record.kind);
        self.send_state(&CallState::Ivr);
        let mut input_open = true;
        loop {
            self.carry_out().await;
            if self.ended.is_some() {
                break;
            }
            let sleep = crate::lifecycle::sleep_until(self.ctl.poll_timeout());
            tokio::select! {
                ev = self.media.events.recv() => self.on_media(ev),
                msg = input.recv(), if input_open => match msg {
                    Some(m) => self.on_customer(m).await,
                    None => { input_open = false; self.ctl.handle_customer_gone(false) }
                },
                Some(ev) = self.acd_rx.recv() => self.on_acd(ev),
                Some(ev) = self.leg_rx.recv() => self.on_leg(ev).await,
                Some((cmd, reply)) = self.commands.recv() => {
                    let r = self.on_command(cmd).await;
                    // Carried out before the answer, so the caller reads the new state.
                    self.carry_out().await;
                    let _ = reply.send(r);
                }
                _ = sleep => self.ctl.handle_timeout(Instant::now()),
                _ = stop.cancelled() => self.ctl.handle_abort(EndReason::Shutdown),
            }
        }
        self.finish().await;
    }

    /// The end: qualities into the record, media stopped, the customer's dialog ended, the record
    /// written, the directory told.
    async fn finish(&mut self) {
        self.end_recording().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .media
            .commands
            .send(MediaCommand::Quality(tx))
            .await
            .is_ok()
        {
            if let Ok(Ok(legs)) = tokio::time::timeout(Duration::from_millis(200), rx).await {
                self.record_qualities(legs);
            }
        }
        let _ = self.media.commands.send(MediaCommand::Stop).await;
        // An internal caller whose call was never answered gets a final answer instead of a BYE.
        if let Some((dialog, _)) = self.pending_accept.remove(CUSTOMER_PARTY) {
            let _ = dialog.reject(
                Some(rsipstack::rsip::StatusCode::TemporarilyUnavailable),
                None,
            );
        } else if let Some(dialog) = &self.customer_dialog {
            if self.ended != Some(EndReason::CustomerHangup) {
                if let Err(e) = dialog.bye().await {
                    debug!(error = %e, "BYE to the customer failed");
                }
            }
        }
        for (_, n) in self.notifies.drain() {
            let _ = tokio::time::timeout(Duration::from_secs(2), n).await;
        }
        let reason = self.ended.map_or("error", EndReason::as_str);
        crate::metrics::call_ended(reason);
        self.record.ended(reason, self.ctl.ivr_path(), unix_ms());
        self.mgr.records.write(&self.record, "call.ended");
        self.mgr.directory.unregister(self.id);
        self.mgr.acd.forget(self.id);
        info!(call = self.id, reason, record = %self.record.id, "call ended");
    }

    fn on_media(&mut self, ev: Option<MediaEvent>) {
        let now = Instant::now();
        match ev {
            Some(MediaEvent::Flowing(CUSTOMER)) => {
                if self.record.media_flowing(unix_ms()) {
                    self.mgr.records.write(&self.record, "call.answered");
                    crate::metrics::call_setup(now.saturating_duration_since(self.created));
                }
                self.ctl.handle_media_flowing(now)
            }
            Some(MediaEvent::Digit(CUSTOMER, d)) => {
                self.publish(CallEvent::Digit {
                    party: "customer".into(),
                    digit: d,
                });
                self.ctl.handle_digit(now, d)
            }
            Some(MediaEvent::Digit(leg, digit)) => {
                if let Some(party) = self.leg_names.get(&leg).cloned() {
                    if self.ctl.is_supervisor(&party) {
                        // A supervisor's keys switch modes; nobody else hears of them.
                        return self.ctl.handle_supervisor_key(&party, digit);
                    }
                    if self.ctl.agents().contains(&party) {
                        self.pending_rec
                            .extend(self.recording.handle_agent_key(digit));
                    }
                    self.publish(CallEvent::Digit { party, digit });
                }
            }
            Some(MediaEvent::PromptDone(CUSTOMER)) => self.ctl.handle_prompt_done(now),
            Some(MediaEvent::PromptDone(leg)) => {
                // A supervisor's join prompt is over: the call again.
                let cmd = MediaCommand::StopPlaying(leg);
                let _ = self.media.commands.try_send(cmd);
            }
            Some(MediaEvent::Lost(CUSTOMER)) | None => self.ctl.handle_customer_gone(true),
            Some(MediaEvent::Lost(leg)) => {
                if let Some(party) = self.leg_names.get(&leg).cloned() {
                    info!(%party, "party's media stopped");
                    self.ctl.handle_agent_gone(now, &party, true);
                }
            }
            // Other parties' flow, digits (already relayed to who hears them) and prompts.
            Some(_) => {}
        }
    }

    fn on_acd(&mut self, ev: AcdEvent) {
        match ev {
            AcdEvent::Offer(agents) => self.ctl.handle_offer(agents),
            AcdEvent::Cancel(agents) => self.ctl.handle_cancel(agents),
            AcdEvent::Overflowed { action, max_wait } => {
                self.ctl.handle_overflow(Instant::now(), action, max_wait)
            }
            AcdEvent::Position {
                position,
                estimated_wait_secs,
            } => self.ctl.handle_position(position, estimated_wait_secs),
        }
    }

    /// Carries out everything the controller wants, until it wants nothing; when it wanted
    /// anything, the media's routes and the directory follow.
    async fn carry_out(&mut self) {
        let mut changed = false;
        while let Some(out) = self.ctl.poll_output() {
            changed = true;
            match out {
                CallOutput::Play(audio) => self.play(audio).await,
                CallOutput::State(s) => self.send_state(&s),
                CallOutput::Enqueue { queue, skill } => self.enqueue(&queue, skill.as_deref()),
                CallOutput::Abandon => self.mgr.acd.abandon(self.id),
                CallOutput::OfferResult { agent, result } => {
                    if let crate::acd::OfferResult::Rejected(status) = result {
                        let outcome = super::controller::offer_outcome(status);
                        self.record.offer_outcome(&agent, outcome);
                    }
                    self.mgr.acd.offer_result(self.id, &agent, result)
                }
                CallOutput::AgentReleased { agent } => {
                    let talk = self
                        .connected_at
                        .remove(&agent)
                        .map_or(Duration::ZERO, |t| t.elapsed());
                    self.mgr.acd.released(&agent, talk);
                }
                CallOutput::Invite { agent } => {
                    self.record.offered(&agent, unix_ms());
                    self.since.insert(agent.clone(), unix_ms());
                    self.invite(&agent).await
                }
                CallOutput::Cancel { agent } | CallOutput::Bye { agent } => self.hang_up(&agent),
                CallOutput::TransferProgress { agent, status } => {
                    self.transfer_progress(agent, status)
                }
                CallOutput::PartyJoined { agent } => {
                    // An internal caller is answered when the party it rang answers.
                    self.accept_leg(CUSTOMER_PARTY);
                    self.party_joined(agent)
                }
                CallOutput::PartyLeft { agent } => self.party_left(agent),
                CallOutput::SupervisorJoined { supervisor, mode } => {
                    self.supervisor_joined(supervisor, mode).await
                }
                CallOutput::SupervisorMode { supervisor, mode } => {
                    self.supervisor_mode(supervisor, mode)
                }
                CallOutput::SupervisorLeft { supervisor } => self.supervisor_left(supervisor),
                CallOutput::AcceptLeg { party } => self.accept_leg(&party),
                CallOutput::RejectLeg { party, status } => self.reject_leg(&party, status),
                CallOutput::End(reason) => self.ended = Some(reason),
            }
        }
        for d in std::mem::take(&mut self.pending_rec) {
            self.record_do(d).await;
        }
        if changed {
            self.sync_routes().await;
            self.sync_recording_legs().await;
            self.publish_directory();
        }
    }

    fn enqueue(&mut self, queue: &str, skill: Option<&str>) {
        if let Some(q) = self.mgr.cfg.queues.iter().find(|q| q.name == queue) {
            self.ctl.set_queue_sound(QueueSound {
                music: q.music.clone(),
                announce_every: (q.announce_position_secs > 0)
                    .then(|| Duration::from_secs(q.announce_position_secs)),
                conference: q.mode == "conference",
                requeue_after_last_agent: q.after_last_agent == "requeue",
                // Only where the queue records its calls.
                announcement: q
                    .record_announcement
                    .clone()
                    .filter(|_| q.record != "never"),
            });
            let policy = super::recording::Policy::parse(&q.record).unwrap_or_default();
            self.recording.set_policy(policy);
            let code = self.mgr.cfg.recording.pause_code.clone();
            self.recording.set_pause_code(code);
        }
        info!(call = self.id, %queue, ?skill, "queued");
        if self.record.queued(queue, unix_ms()) {
            self.mgr.records.write(&self.record, "call.queued");
        }
        self.mgr
            .acd
            .enqueue(self.id, queue, skill, self.acd_tx.clone());
    }

    fn party_joined(&mut self, agent: String) {
        let now = unix_ms();
        info!(call = self.id, %agent, "party joined");
        self.connected_at.insert(agent.clone(), Instant::now());
        self.since.insert(agent.clone(), now);
        let first = self.record.agent_answered(&agent, now);
        self.pending_rec
            .extend(self.recording.handle_agent_joined());
        self.record.party_joined(&agent, Role::Agent.as_str(), now);
        // The first agent's answer is `call.connected`; each later one is a party joining.
        let event = if first {
            "call.connected"
        } else {
            "call.party_joined"
        };
        self.mgr.records.write(&self.record, event);
        self.publish(CallEvent::PartyJoined {
            party: agent,
            role: Role::Agent,
        });
    }

    fn party_left(&mut self, agent: String) {
        info!(call = self.id, %agent, "party left");
        self.since.remove(&agent);
        // Leaving with the call's end is in `call.ended`; leaving a call that goes on is an event.
        if self.record.party_left(&agent, unix_ms()) && !self.ctl.is_ended() {
            self.mgr.records.write(&self.record, "call.party_left");
        }
        self.drop_media(&agent);
        self.publish(CallEvent::PartyLeft { party: agent });
    }

    fn transfer_progress(&mut self, agent: String, status: u16) {
        if let Some(leg) = self.legs.get(&agent).cloned() {
            let before = self.notifies.remove(&agent);
            let h = tokio::spawn(async move {
                if let Some(b) = before {
                    let _ = b.await;
                }
                leg.notify_transfer(status).await
            });
            self.notifies.insert(agent, h);
        }
    }

    async fn play(&mut self, audio: Audio) {
        let prompts = &self.mgr.prompts;
        let lang = self.lang.as_deref();
        let source = match &audio {
            Audio::Agent => {
                let cmd = MediaCommand::StopPlaying(CUSTOMER);
                let _ = self.media.commands.send(cmd).await;
                return;
            }
            Audio::Prompt(name) => prompts.get_in(lang, name).map(Source::Prompt),
            Audio::Position(n) => prompts.position_in(lang, *n).map(Source::Prompt),
            Audio::Music(name) => prompts.get_in(lang, name).map(Source::Loop),
        };
        match source {
            Some(s) => {
                let _ = self
                    .media
                    .commands
                    .send(MediaCommand::Play(CUSTOMER, s))
                    .await;
            }
            None => {
                warn!(?audio, "prompt missing; skipped");
                if !matches!(audio, Audio::Music(_)) {
                    self.ctl.handle_prompt_done(Instant::now());
                }
            }
        }
    }

    fn send_state(&mut self, s: &CallState) {
        let e = self.state_event(s);
        self.publish(e);
    }

    /// The event for state `s`: in the IVR, with the current menu's buttons.
    pub(super) fn state_event(&self, s: &CallState) -> CallEvent {
        let labels = match s {
            CallState::Ivr => self.ctl.menu_labels().to_vec(),
            _ => Vec::new(),
        };
        CallEvent::State(s.clone(), labels)
    }

    pub(super) fn publish(&mut self, e: CallEvent) {
        if let Some(w) = &self.widget {
            if w.send(e.clone()).is_err() {
                self.widget = None;
            }
        }
        self.subscribers.retain(|s| s.send(e.clone()).is_ok());
    }

    /// The directory's view of the call: its state, queue and parties.
    fn publish_directory(&self) {
        let state = self.ctl.state();
        let customer_state = if self.ctl.is_held() {
            "on_hold"
        } else {
            "connected"
        };
        let mut parties = vec![PartyView {
            party: "customer".into(),
            role: Role::Customer.as_str(),
            state: customer_state,
            since_ms: self.record.created_ms,
        }];
        let since = |p: &str| self.since.get(p).copied().unwrap_or(self.record.created_ms);
        for a in self.ctl.agents() {
            parties.push(PartyView {
                party: a.clone(),
                role: Role::Agent.as_str(),
                state: "connected",
                since_ms: since(a),
            });
        }
        for a in self.ctl.ringing() {
            parties.push(PartyView {
                party: a.into(),
                role: Role::Agent.as_str(),
                state: "ringing",
                since_ms: since(a),
            });
        }
        if let Some(ivr) = self.ctl.external_ivr() {
            parties.push(PartyView {
                party: ivr.into(),
                role: Role::ExternalIvr.as_str(),
                state: "connected",
                since_ms: since(ivr),
            });
        }
        // Supervisors: `state` is their mode (`monitor`, `whisper`, `barge`, `takeover`).
        for (s, mode) in self.ctl.supervisors() {
            parties.push(PartyView {
                party: s.into(),
                role: Role::Supervisor.as_str(),
                state: mode.as_str(),
                since_ms: since(s),
            });
        }
        self.mgr
            .directory
            .update(self.id, state.name(), self.ctl.queue(), parties);
    }

    /// The media leg of a party that is in the call's media.
    pub(super) fn leg_of(&self, party: &str) -> Option<LegId> {
        self.party_media
            .get(party)
            .filter(|m| m.added)
            .map(|m| m.leg)
    }

    /// Sets the media's routes to what the call's parties are ([`super::party_routes`]).
    async fn sync_routes(&mut self) {
        let members = super::party_routes::Members {
            customer: (!self.ctl.is_held()).then_some(CUSTOMER),
            agents: self
                .ctl
                .agents()
                .iter()
                .filter_map(|a| self.leg_of(a))
                .collect(),
            others: self
                .ctl
                .external_ivr()
                .and_then(|p| self.leg_of(p))
                .into_iter()
                .collect(),
            supervisors: self
                .ctl
                .supervisors()
                .into_iter()
                .filter_map(|(s, mode)| Some((self.leg_of(s)?, mode)))
                .collect(),
            pairs: self
                .ctl
                .consult()
                .and_then(|c| Some((self.leg_of(&c.talker)?, self.leg_of(&c.target)?)))
                .into_iter()
                .collect(),
        };
        let want = super::party_routes::routes(&members);
        let off: Vec<_> = self.routes.difference(&want).copied().collect();
        let on: Vec<_> = want.difference(&self.routes).copied().collect();
        for (from, to, gain) in off
            .into_iter()
            .map(|(f, t)| (f, t, None))
            .chain(on.into_iter().map(|(f, t)| (f, t, Some(1.0))))
        {
            let cmd = MediaCommand::Route { from, to, gain };
            let _ = self.media.commands.send(cmd).await;
        }
        self.routes = want;
    }
}
