//! The shell of one call: a tokio task that owns the [`CallController`] and everything of the call
//! (media handle, agent legs, the widget's sender) and `select!`s over media events, the customer's
//! messages, the ACD's events, the legs' events, one timer and the stop token. Everything decided is
//! decided by the controller; this file carries it out.

use super::controller::{Audio, CallController, CallOutput, CallState, EndReason, QueueSound};
use super::sip_leg::{LegEvent, LegTarget, SipLeg};
use super::{CallId, CallManager, CustomerKind, StartCallError};
use crate::acd::service::AcdEvent;
use crate::lifecycle::CallGuard;
use crate::media::call_media::MediaEvent;
use crate::media::engine::{MediaCommand, MediaHandle};
use crate::media::leg::NewLeg;
use crate::media::routes::LegId;
use crate::media::sdp::{read_answer, Direction, Format, Negotiated, SdpSession};
use crate::media::source::Source;
use crate::records::cdr::CallRecord;
use crate::widget::protocol::ServerMessage;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::rsip::uri::ParamsExt;
use rsipstack::rsip::{self, Header, StatusCode};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

/// How long the first NOTIFY of a transfer waits after the 202.
const REFER_NOTIFY_GAP: Duration = Duration::from_millis(30);

/// What the customer's side sends the call (the WebSocket reader, for browser calls).
#[derive(Debug)]
pub enum CustomerInput {
    /// A trickled ICE candidate.
    Candidate(String),
    /// Keypad digits sent as a message (fallback to RFC 4733).
    Digits(String),
    /// A digit the customer's phone sent out of band (SIP INFO).
    InfoDigit(char),
    /// The customer hung up (`hangup` message, or the socket closed).
    Hangup,
}

/// The customer's media leg.
pub(super) const CUSTOMER: LegId = LegId(0);
/// The agent side's media leg (parked until an agent answers).
pub(super) const AGENT: LegId = LegId(1);

/// Starts a call's media: the customer's leg and the agents' leg, hearing each other (what the
/// customer hears is replaced by prompts and music until an agent is connected).
pub(super) async fn spawn_media(
    mgr: &CallManager,
    customer: (NewLeg, crate::media::engine::PortLease),
    agent: crate::media::engine::PortLease,
) -> MediaHandle {
    mgr.engine
        .spawn_pair(customer, (NewLeg::Rtp(parked()), agent), mgr.media_timers())
        .await
}

/// A browser call's request, parsed from the widget's `call` message.
#[derive(Debug, Clone)]
pub struct BrowserCall {
    /// WebRTC offer.
    pub offer: String,
    /// Page context.
    pub context: Map<String, Value>,
    /// Queue to go to directly (skipping the menus).
    pub queue: Option<String>,
    /// Skill hint.
    pub skill: Option<String>,
    /// Whether the context's signature checked out (`X-Context-Verified` toward agents).
    pub verified: bool,
}

/// The handle the WebSocket keeps on its call.
pub struct StartedCall {
    /// The call's id.
    pub id: CallId,
    /// The WebRTC answer.
    pub answer: String,
    /// Where the customer's messages go.
    pub input: mpsc::UnboundedSender<CustomerInput>,
}

/// The SIP side with no peer (before an agent answers, between agents): inactive, so no media
/// timeout runs while nobody is there to send.
pub(super) fn parked() -> Negotiated {
    Negotiated {
        remote: None,
        codec: Format::pcmu(),
        dtmf: Some(Format::telephone_event()),
        ptime_ms: 20,
        peer_direction: Direction::Inactive,
    }
}

/// The SIP leg's codecs we offer agents, in preference order.
pub(super) fn offered_formats() -> Vec<Format> {
    vec![Format::pcmu(), Format::pcma()]
}

/// Starts a browser call: answers the offer, binds the SIP-side port, spawns the call task.
pub async fn start_browser_call(
    mgr: &Arc<CallManager>,
    req: BrowserCall,
    widget: mpsc::UnboundedSender<ServerMessage>,
) -> Result<StartedCall, StartCallError> {
    if let Some(q) = &req.queue {
        if !mgr.cfg.queues.iter().any(|c| &c.name == q) {
            return Err(StartCallError::UnknownQueue(q.clone()));
        }
    }
    let guard = mgr.lifecycle.try_start_call().map_err(|r| {
        crate::metrics::rejected(r.as_str());
        mgr.record_refused("browser", req.context.clone(), r.as_str());
        match r {
            crate::lifecycle::CallRefused::Draining => StartCallError::Draining,
            crate::lifecycle::CallRefused::Full(n) => StartCallError::Full(n),
        }
    })?;
    let now = Instant::now();
    let (leg, web_lease, answer) = mgr.engine.answer_browser(now, &req.offer).await?;
    let sip_lease = mgr.engine.lease_with_rtcp().await?;
    let sip_local = sip_lease.advertised;
    let media = spawn_media(mgr, (NewLeg::Browser(Box::new(leg)), web_lease), sip_lease).await;
    let id = mgr.next_id();
    let ctl = mgr.controller(
        &mgr.cfg.ivr.start,
        req.queue.clone().map(|q| (q, req.skill.clone())),
    );
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    mgr.register(id, CustomerKind::Browser);
    let mut task = CallTask::new(
        mgr.clone(),
        id,
        ctl,
        media,
        sip_local,
        req.context,
        guard,
        widget,
    );
    task.extra_headers.push((
        "X-Context-Verified".into(),
        if req.verified { "yes" } else { "no" }.into(),
    ));
    info!(call = id, verified = req.verified, "browser call started");
    tokio::spawn(task.run(input_rx).instrument(info_span!("call", id)));
    Ok(StartedCall {
        id,
        answer,
        input: input_tx,
    })
}

/// The customer's side of a call, for what the shell must do to it at the end.
pub(super) enum CustomerLeg {
    /// A browser: its WebSocket is told `ended`; the media task ends with the call.
    Browser,
    /// An inbound SIP call: BYE it unless it hung up itself.
    Sip(InviteDialog),
}

pub(super) struct CallTask {
    mgr: Arc<CallManager>,
    customer: CustomerLeg,
    /// Headers copied onto every agent INVITE (pass-through headers of an inbound call).
    extra_headers: Vec<(String, String)>,
    id: CallId,
    ctl: CallController,
    media: MediaHandle,
    widget: mpsc::UnboundedSender<ServerMessage>,
    sdp: SdpSession,
    sip_local: SocketAddr,
    context: Map<String, Value>,
    legs: HashMap<String, SipLeg>,
    leg_tx: mpsc::UnboundedSender<LegEvent>,
    leg_rx: mpsc::UnboundedReceiver<LegEvent>,
    acd_tx: mpsc::UnboundedSender<AcdEvent>,
    acd_rx: mpsc::UnboundedReceiver<AcdEvent>,
    /// NOTIFYs in flight per party, so a BYE to the same party goes after them.
    notifies: HashMap<String, tokio::task::JoinHandle<()>>,
    connected_at: Option<Instant>,
    ended: Option<EndReason>,
    /// The call detail record, written at each milestone.
    record: CallRecord,
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
        ctl: CallController,
        media: MediaHandle,
        sip_local: SocketAddr,
        context: Map<String, Value>,
        guard: CallGuard,
        widget: mpsc::UnboundedSender<ServerMessage>,
    ) -> Self {
        let (leg_tx, leg_rx) = mpsc::unbounded_channel();
        let (acd_tx, acd_rx) = mpsc::unbounded_channel();
        let record = CallRecord::new(id, "browser", context.clone(), unix_ms());
        CallTask {
            mgr,
            customer: CustomerLeg::Browser,
            extra_headers: Vec::new(),
            id,
            ctl,
            media,
            widget,
            sdp: SdpSession::new(rand::random::<u32>().into()),
            sip_local,
            context,
            legs: HashMap::new(),
            leg_tx,
            leg_rx,
            acd_tx,
            acd_rx,
            notifies: HashMap::new(),
            connected_at: None,
            ended: None,
            record,
            created: Instant::now(),
            _guard: guard,
        }
    }

    /// An inbound SIP customer, with the headers to pass through to agents.
    pub(super) fn with_sip_customer(
        mut self,
        dialog: InviteDialog,
        extra_headers: Vec<(String, String)>,
    ) -> Self {
        self.customer = CustomerLeg::Sip(dialog);
        self.extra_headers = extra_headers;
        self.record.kind = "sip".into();
        self
    }

    /// The customer's kind in the call record (`callback`).
    pub(super) fn with_kind(mut self, kind: &str) -> Self {
        self.record.kind = kind.into();
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
                _ = sleep => self.ctl.handle_timeout(Instant::now()),
                _ = stop.cancelled() => self.ctl.handle_abort(EndReason::Shutdown),
            }
        }
        // The receive quality for the record, then the media stops.
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .media
            .commands
            .send(MediaCommand::Quality(tx))
            .await
            .is_ok()
        {
            if let Ok(Ok(legs)) = tokio::time::timeout(Duration::from_millis(200), rx).await {
                let of = |id| legs.iter().find(|(l, _)| *l == id).and_then(|(_, q)| *q);
                let (customer, agent) = (of(CUSTOMER), of(AGENT));
                if let Some(q) = &customer {
                    crate::metrics::media_quality("customer", q);
                }
                if let Some(q) = &agent {
                    crate::metrics::media_quality("agent", q);
                }
                self.record.customer_quality = customer;
                self.record.agent_quality = agent;
            }
        }
        let _ = self.media.commands.send(MediaCommand::Stop).await;
        if let CustomerLeg::Sip(dialog) = &self.customer {
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
        self.mgr.unregister(self.id);
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
            Some(MediaEvent::Flowing(_)) => {}
            Some(MediaEvent::Digit(CUSTOMER, d)) => self.ctl.handle_digit(now, d),
            Some(MediaEvent::Digit(..)) => {}
            Some(MediaEvent::PromptDone(CUSTOMER)) => self.ctl.handle_prompt_done(now),
            Some(MediaEvent::PromptDone(_)) => {}
            Some(MediaEvent::Lost(CUSTOMER)) | None => self.ctl.handle_customer_gone(true),
            Some(MediaEvent::Lost(_)) => {
                if let Some(agent) = self.ctl.agent().map(str::to_string) {
                    self.ctl.handle_agent_gone(Instant::now(), &agent, true);
                }
            }
        }
    }

    async fn on_customer(&mut self, m: CustomerInput) {
        match m {
            CustomerInput::Candidate(c) => {
                let _ = self
                    .media
                    .commands
                    .send(MediaCommand::AddCandidate(CUSTOMER, c))
                    .await;
            }
            CustomerInput::Digits(ds) => {
                for d in ds.chars() {
                    self.ctl.handle_digit(Instant::now(), d);
                }
            }
            CustomerInput::InfoDigit(d) => {
                let len = Duration::from_millis(160);
                let _ = self
                    .media
                    .commands
                    .send(MediaCommand::InfoDigit(CUSTOMER, d, len))
                    .await;
            }
            CustomerInput::Hangup => self.ctl.handle_customer_gone(false),
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

    async fn on_leg(&mut self, ev: LegEvent) {
        match ev {
            LegEvent::Ringing { party } => debug!(%party, "agent ringing"),
            LegEvent::Answered { party, sdp } => self.on_answered(party, &sdp).await,
            LegEvent::Failed { party, status } => {
                if self.legs.remove(&party).is_none() {
                    return; // a leg we cancelled ourselves
                }
                info!(%party, status, "agent leg failed");
                self.ctl.handle_agent_failed(Instant::now(), &party, status);
            }
            LegEvent::Ended { party } => {
                if self.legs.remove(&party).is_none() {
                    return; // a leg we hung up ourselves
                }
                info!(%party, "agent hung up");
                self.ctl.handle_agent_gone(Instant::now(), &party, false);
                if !self.ctl.is_ended() && self.ctl.agent() != Some(party.as_str()) {
                    self.park_sip().await;
                }
            }
            LegEvent::Offer {
                party,
                sdp,
                session_expires,
                reply,
            } => self.on_reoffer(party, &sdp, session_expires, reply).await,
            LegEvent::Refer {
                party,
                refer_to,
                reply,
            } => self.on_refer(party, &refer_to, reply).await,
            LegEvent::Info {
                party: _,
                content_type,
                body,
                reply,
            } => {
                let _ = reply.reply(StatusCode::OK).await;
                if let Some(d) = crate::media::dtmf::parse_info_body(&content_type, &body) {
                    {
                        let len = Duration::from_millis(160);
                        let _ = self
                            .media
                            .commands
                            .send(MediaCommand::InfoDigit(AGENT, d, len))
                            .await;
                    }
                }
            }
        }
    }

    async fn on_answered(&mut self, party: String, sdp: &str) {
        match read_answer(sdp, &offered_formats()) {
            Ok(n) => {
                self.ctl.handle_agent_answered(&party);
                if self.ctl.agent() == Some(party.as_str()) || self.ctl.in_external_ivr() {
                    info!(%party, remote = ?n.remote, codec = %n.codec.name, "agent answered");
                    self.connected_at = Some(Instant::now());
                    if !party.starts_with("ivr:") {
                        self.record.agent_answered(&party, unix_ms());
                        self.mgr.records.write(&self.record, "call.connected");
                    }
                    let _ = self
                        .media
                        .commands
                        .send(MediaCommand::UpdateRtp(AGENT, n))
                        .await;
                }
            }
            Err(e) => {
                warn!(%party, error = %e, "agent's answer unusable; hanging up that leg");
                if let Some(leg) = self.legs.remove(&party) {
                    tokio::spawn(async move { leg.hang_up().await });
                }
                self.ctl.handle_agent_failed(Instant::now(), &party, 488);
            }
        }
    }

    async fn park_sip(&mut self) {
        let _ = self
            .media
            .commands
            .send(MediaCommand::UpdateRtp(AGENT, parked()))
            .await;
    }

    async fn on_reoffer(
        &mut self,
        party: String,
        sdp: &str,
        session_expires: Option<String>,
        reply: TransactionHandle,
    ) {
        // A refresh re-INVITE's interval is echoed (RFC 4028 §9), so the phone keeps the session.
        let sdp_ct = || {
            let mut h = vec![Header::ContentType("application/sdp".into())];
            if let Some(v) = &session_expires {
                h.push(Header::Other("Session-Expires".into(), v.clone()));
                h.push(Header::Require("timer".into()));
            }
            h
        };
        if sdp.trim().is_empty() {
            // An offerless re-INVITE: we offer; the answer in the ACK changes nothing we rely on.
            let offer = self.local_offer();
            let _ = reply
                .respond(StatusCode::OK, Some(sdp_ct()), Some(offer.into_bytes()))
                .await;
            return;
        }
        match self
            .sdp
            .answer(sdp, self.sip_local, &offered_formats(), None)
        {
            Ok((answer, n)) => {
                let held = n.remote.is_none()
                    || matches!(n.peer_direction, Direction::SendOnly | Direction::Inactive);
                let _ = self
                    .media
                    .commands
                    .send(MediaCommand::UpdateRtp(AGENT, n))
                    .await;
                let _ = reply
                    .respond(StatusCode::OK, Some(sdp_ct()), Some(answer.into_bytes()))
                    .await;
                info!(%party, held, "agent re-INVITE");
                self.ctl.handle_agent_hold(&party, held);
            }
            Err(e) => {
                let _ = reply
                    .respond(StatusCode::from(e.sip_status()), None, None)
                    .await;
            }
        }
    }

    async fn on_refer(&mut self, party: String, refer_to: &str, reply: TransactionHandle) {
        if self.ctl.in_external_ivr() {
            // Self-transfer: the external IVR hands the customer back, naming a queue.
            let queue =
                refer_target(refer_to).filter(|q| self.mgr.cfg.queues.iter().any(|c| &c.name == q));
            let Some(queue) = queue else {
                info!(%party, refer_to, "external IVR referred to no known queue");
                let _ = reply.reply(StatusCode::NotFound).await;
                return;
            };
            if self.ctl.handle_ivr_refer(Instant::now(), &party, &queue) {
                info!(%party, %queue, "external IVR handed the call back");
                self.park_sip().await;
                let _ = reply.reply(StatusCode::Accepted).await;
                self.notify_after_202(&party);
            } else {
                let _ = reply.reply(StatusCode::from(491)).await;
            }
            return;
        }
        let target = refer_target(refer_to).filter(|t| self.mgr.cfg.agent(t).is_some());
        let Some(target) = target else {
            info!(%party, refer_to, "REFER to an unknown target refused");
            let _ = reply.reply(StatusCode::Forbidden).await;
            return;
        };
        if !self.ctl.handle_transfer(&party, &target) {
            let _ = reply.reply(StatusCode::from(491)).await;
            return;
        }
        info!(%party, %target, "blind transfer");
        let _ = reply.reply(StatusCode::Accepted).await;
        if let Some(leg) = self.legs.get(&party).cloned() {
            let h = tokio::spawn(async move {
                tokio::time::sleep(REFER_NOTIFY_GAP).await;
                leg.notify_transfer(100).await
            });
            self.notifies.insert(party, h);
        }
    }

    /// The 202 to a REFER goes out through its transaction's task and the NOTIFYs through others:
    /// the first NOTIFY waits a moment so the transferor sees the 202 first (strict UAs, SIPp among
    /// them, refuse a NOTIFY before the 202).
    fn notify_after_202(&mut self, party: &str) {
        let h = tokio::spawn(tokio::time::sleep(REFER_NOTIFY_GAP));
        self.notifies.insert(party.to_string(), h);
    }

    /// Carries out everything the controller wants, until it wants nothing.
    async fn carry_out(&mut self) {
        while let Some(out) = self.ctl.poll_output() {
            match out {
                CallOutput::Play(audio) => self.play(audio).await,
                CallOutput::State(s) => self.send_state(&s),
                CallOutput::Enqueue { queue, skill } => {
                    if let Some(q) = self.mgr.cfg.queues.iter().find(|q| q.name == queue) {
                        self.ctl.set_queue_sound(QueueSound {
                            music: q.music.clone(),
                            announce_every: (q.announce_position_secs > 0)
                                .then(|| Duration::from_secs(q.announce_position_secs)),
                        });
                    }
                    info!(call = self.id, %queue, ?skill, "queued");
                    if self.record.queued(&queue, unix_ms()) {
                        self.mgr.records.write(&self.record, "call.queued");
                    }
                    self.mgr
                        .acd
                        .enqueue(self.id, &queue, skill.as_deref(), self.acd_tx.clone());
                }
                CallOutput::Abandon => self.mgr.acd.abandon(self.id),
                CallOutput::OfferResult { agent, result } => {
                    if let crate::acd::OfferResult::Rejected(status) = result {
                        let outcome = match status {
                            486 | 600 => "busy",
                            408 | 480 | 487 => "no_answer",
                            _ => "rejected",
                        };
                        self.record.offer_outcome(&agent, outcome);
                    }
                    self.mgr.acd.offer_result(self.id, &agent, result)
                }
                CallOutput::AgentReleased { agent } => {
                    let talk = self.connected_at.map_or(Duration::ZERO, |t| t.elapsed());
                    self.mgr.acd.released(&agent, talk);
                }
                CallOutput::Invite { agent } => {
                    self.record.offered(&agent, unix_ms());
                    self.invite(&agent).await
                }
                CallOutput::Cancel { agent } | CallOutput::Bye { agent } => self.hang_up(&agent),
                CallOutput::TransferProgress { agent, status } => {
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
                CallOutput::End(reason) => {
                    self.ended = Some(reason);
                }
            }
        }
    }

    fn hang_up(&mut self, party: &str) {
        if let Some(leg) = self.legs.remove(party) {
            let before = self.notifies.remove(party);
            tokio::spawn(async move {
                if let Some(b) = before {
                    let _ = b.await;
                }
                leg.hang_up().await
            });
        }
    }

    async fn play(&mut self, audio: Audio) {
        let prompts = &self.mgr.prompts;
        let source = match &audio {
            Audio::Agent => {
                let _ = self
                    .media
                    .commands
                    .send(MediaCommand::StopPlaying(CUSTOMER))
                    .await;
                return;
            }
            Audio::Prompt(name) => prompts.get(name).map(Source::Prompt),
            Audio::Position(n) => prompts.position(*n).map(Source::Prompt),
            Audio::Music(name) => prompts.get(name).map(Source::Loop),
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
        let msg = match s {
            CallState::Queued {
                position,
                estimated_wait_secs,
            } => ServerMessage::State {
                state: s.name().into(),
                position: *position,
                estimated_wait_secs: *estimated_wait_secs,
                reason: None,
            },
            CallState::Ended(r) => ServerMessage::State {
                state: s.name().into(),
                position: None,
                estimated_wait_secs: None,
                reason: Some(r.as_str().into()),
            },
            _ => ServerMessage::State {
                state: s.name().into(),
                position: None,
                estimated_wait_secs: None,
                reason: None,
            },
        };
        let _ = self.widget.send(msg);
        self.mgr
            .update(self.id, s.name(), self.ctl.queue(), self.ctl.agent());
    }

    /// INVITEs an agent (or transfer target) with the context headers.
    async fn invite(&mut self, party: &str) {
        let Some(target) = self.resolve(party).await else {
            info!(%party, "agent not reachable (no registration, no static URI)");
            self.ctl.handle_agent_failed(Instant::now(), party, 480);
            return;
        };
        let opt = match self.invite_option() {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "cannot build the agent INVITE");
                self.ctl.handle_agent_failed(Instant::now(), party, 500);
                return;
            }
        };
        match SipLeg::invite(&self.mgr.layer, &target, opt, self.leg_tx.clone()) {
            Ok(leg) => {
                info!(%party, uri = %target.uri, "offering call to agent");
                self.legs.insert(party.to_string(), leg);
            }
            Err(e) => {
                warn!(%party, error = %e, "INVITE could not be sent");
                self.ctl.handle_agent_failed(Instant::now(), party, 503);
            }
        }
    }

    /// Our SDP offer toward an agent: G.711 with telephone-event from the call's SIP-side port.
    fn local_offer(&mut self) -> String {
        self.sdp.offer(
            self.sip_local,
            &offered_formats(),
            true,
            20,
            Direction::SendRecv,
        )
    }

    async fn resolve(&self, party: &str) -> Option<LegTarget> {
        let tcp_fallback = self.mgr.cfg.sip.listen_tcp.is_some();
        let static_uri = if let Some(queue) = party.strip_prefix("ivr:") {
            let q = self.mgr.cfg.queues.iter().find(|q| q.name == queue)?;
            q.external_ivr.as_deref()
        } else {
            self.mgr.cfg.agent(party)?.uri.as_deref()
        };
        if let Some(uri) = static_uri {
            let uri = crate::sip::uri::parse_sip_uri(uri).ok()?;
            let transport = uri
                .transport()
                .map(|t| t.to_string().to_ascii_lowercase())
                .unwrap_or_else(|| "udp".into());
            return Some(LegTarget {
                party: party.into(),
                uri,
                destination: None,
                transport,
                tcp_fallback,
            });
        }
        // A registered agent: its first contact, reached at the address it registered from.
        let contact = self
            .mgr
            .locations
            .contacts(party)
            .await
            .into_iter()
            .next()?;
        Some(LegTarget {
            party: party.into(),
            uri: crate::sip::uri::parse_sip_uri(&contact.uri).ok()?,
            destination: Some(contact.source),
            transport: contact.transport,
            tcp_fallback,
        })
    }

    fn invite_option(&mut self) -> Result<InviteOption, Box<rsipstack::Error>> {
        let (pairs, display) =
            crate::widget::context::headers_for(&self.context, &self.mgr.mapping);
        let mut headers: Vec<Header> = pairs
            .into_iter()
            .map(|(k, v)| Header::Other(k, v))
            .collect();
        if let Some(q) = self
            .ctl
            .queue()
            .and_then(|q| self.mgr.cfg.queues.iter().find(|c| c.name == q))
        {
            headers.push(Header::Other("X-Queue".into(), q.name.clone()));
            for (k, v) in &q.headers {
                let v = crate::widget::context::sanitize(&Value::String(v.clone()));
                headers.push(Header::Other(k.clone(), v));
            }
        }
        for (k, v) in &self.extra_headers {
            headers.push(Header::Other(k.clone(), v.clone()));
        }
        headers.push(Header::Other("X-Call-Id".into(), self.id.to_string()));
        let contact = self
            .mgr
            .layer
            .build_local_contact(Some("clicktocall".into()), None)
            .map_err(Box::new)?;
        let caller = rsip::Uri {
            params: vec![],
            ..contact.clone()
        };
        let offer = self.local_offer();
        Ok(InviteOption {
            caller_display_name: display,
            caller,
            contact,
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            headers: Some(headers),
            ..Default::default()
        })
    }
}

/// The agent id a `Refer-To` names: `<sip:1002@gateway>` → `1002`.
pub fn refer_target(refer_to: &str) -> Option<String> {
    let inner = refer_to.trim();
    let inner = inner
        .find('<')
        .and_then(|s| inner[s + 1..].find('>').map(|e| &inner[s + 1..s + 1 + e]))
        .unwrap_or(inner);
    let uri = crate::sip::uri::parse_sip_uri(inner).ok()?;
    uri.auth.map(|a| a.user).filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn refer_to_names_the_user_part() {
        assert_eq!(
            super::refer_target("<sip:1002@127.0.0.1:5060>").as_deref(),
            Some("1002")
        );
        assert_eq!(
            super::refer_target("sip:sales@gw.example.com").as_deref(),
            Some("sales")
        );
        assert_eq!(super::refer_target("<garbage>"), None);
    }
}
