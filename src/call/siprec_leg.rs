//! A recording's SIPREC session (RFC 7866), the shell around [`crate::siprec::session`]: one task
//! per session, started with the recording when the call's queue lists recorders. It leases the
//! two media ports the offer names, INVITEs the recorders in turn (`Require: siprec`, a
//! `multipart/mixed` body of SDP and metadata; the endpoint's inspector adds `+sip.src` to the
//! Contact), points the media's recording at the recorder that answers
//! (`RecordCommand::Fork`), re-INVITEs it when the recording pauses or resumes or the agents
//! change, and BYEs it at the end. The call only talks to it through [`SiprecHandle`]; whatever
//! the recorders do, the call is never affected.

use super::sip_leg::{LegEvent, LegTarget, SipLeg};
use crate::media::engine::{MediaCommand, MediaCommands, MediaEngine, PortLease};
use crate::media::recording_tap::RecordCommand;
use crate::media::sdp::SdpSession;
use crate::media::siprec_fork::ForkTarget;
use crate::siprec::body::{self, Targets};
use crate::siprec::metadata::Metadata;
use crate::siprec::session::{Output, SiprecSession};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::rsip::uri::ParamsExt;
use rsipstack::rsip::{self, Header, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// How long the end of a call waits for the session to say how it went.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What became of a session.
#[derive(Debug, Clone, Default)]
pub struct SiprecOutcome {
    /// The recorder that took the recording (the last one, after a failover).
    pub recorder: Option<String>,
    /// What went wrong on the way (refusals, no answer, a recorder that left), if anything.
    pub error: Option<String>,
}

enum Cmd {
    Pause(bool),
    Agents(Vec<(String, String, Option<String>)>),
    Stop(oneshot::Sender<SiprecOutcome>),
}

/// The call's handle on its session.
pub struct SiprecHandle {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl SiprecHandle {
    /// The recording paused (`true`) or resumed.
    pub fn pause(&self, paused: bool) {
        let _ = self.tx.send(Cmd::Pause(paused));
    }

    /// The agents in the call now: (id, address of record, display name).
    pub fn agents(&self, agents: Vec<(String, String, Option<String>)>) {
        let _ = self.tx.send(Cmd::Agents(agents));
    }

    /// Ends the session (BYE) and says how it went.
    pub async fn stop(self) -> SiprecOutcome {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Stop(tx)).is_err() {
            return SiprecOutcome::default();
        }
        tokio::time::timeout(STOP_WAIT, rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

/// What a session needs.
pub struct SiprecSetup {
    /// The call's id (logs, the metadata).
    pub call: String,
    /// The queue's recorders, in order.
    pub recorders: Vec<String>,
    /// How long each has to answer.
    pub answer_within: Duration,
    /// Who is in the call.
    pub metadata: Metadata,
    /// The recording is paused already.
    pub paused: bool,
    /// rsipstack's dialogs.
    pub layer: Arc<DialogLayer>,
    /// The media ports.
    pub engine: MediaEngine,
    /// The call's media task.
    pub media: MediaCommands,
    /// The gateway has a TCP listener (a body too large for UDP may go over TCP).
    pub tcp: bool,
}

/// Starts a session.
pub fn spawn(setup: SiprecSetup) -> SiprecHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(setup, rx));
    SiprecHandle { tx }
}

/// The session's task state.
struct Session {
    s: SiprecSetup,
    core: SiprecSession,
    sdp: SdpSession,
    ports: [Arc<PortLease>; 2],
    leg: Option<SipLeg>,
    /// The current attempt's party name (events of earlier attempts are stale).
    attempt: String,
    attempts: u32,
    targets: Option<Targets>,
    events: mpsc::UnboundedSender<LegEvent>,
    /// Re-INVITE outcomes: (the attempt it was sent in, its status).
    reinvites: mpsc::UnboundedSender<(u32, u16)>,
    error: Option<String>,
}

async fn run(s: SiprecSetup, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
    let ports = match (s.engine.lease().await, s.engine.lease().await) {
        (Ok(a), Ok(b)) => [Arc::new(a), Arc::new(b)],
        (Err(e), _) | (_, Err(e)) => {
            warn!(call = %s.call, error = %e, "recording: no media port for the recorder");
            crate::metrics::recording_recorder_failed();
            refuse_until_stopped(&mut cmds, format!("no media port for the recorder: {e}")).await;
            return;
        }
    };
    let (events, mut ev_rx) = mpsc::unbounded_channel();
    let (reinvites, mut re_rx) = mpsc::unbounded_channel();
    let core = SiprecSession::new(s.recorders.clone(), s.answer_within);
    let mut me = Session {
        sdp: SdpSession::new(rand::random::<u32>().into()),
        core,
        ports,
        leg: None,
        attempt: String::new(),
        attempts: 0,
        targets: None,
        events,
        reinvites,
        error: None,
        s,
    };
    me.core.start(Instant::now(), me.s.paused);
    loop {
        me.carry_out().await;
        let sleep = crate::lifecycle::sleep_until(me.core.poll_timeout());
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Pause(p)) => me.core.set_paused(p),
                Some(Cmd::Agents(a)) => {
                    if me.s.metadata.set_agents(super::task::unix_ms(), &a) {
                        me.core.metadata_changed();
                    }
                }
                Some(Cmd::Stop(reply)) => {
                    me.core.stop();
                    me.carry_out().await;
                    let _ = reply.send(me.outcome());
                    return;
                }
                None => {
                    me.core.stop();
                    me.carry_out().await;
                    return;
                }
            },
            Some(ev) = ev_rx.recv() => me.on_leg(ev).await,
            Some((attempt, status)) = re_rx.recv() => {
                // A re-INVITE of a recorder given up on says nothing about the current one.
                if attempt == me.attempts {
                    me.core.handle_reinvite_done(Instant::now(), status);
                }
            }
            _ = sleep => me.core.handle_timeout(Instant::now()),
        }
    }
}

/// A session that could not start: it reports why when the recording stops.
async fn refuse_until_stopped(cmds: &mut mpsc::UnboundedReceiver<Cmd>, why: String) {
    while let Some(cmd) = cmds.recv().await {
        if let Cmd::Stop(reply) = cmd {
            let _ = reply.send(SiprecOutcome {
                recorder: None,
                error: Some(why),
            });
            return;
        }
    }
}

impl Session {
    fn outcome(&self) -> SiprecOutcome {
        let failures = self.core.failures().join("; ");
        SiprecOutcome {
            recorder: self.core.recorder().map(str::to_string),
            error: self
                .error
                .clone()
                .or_else(|| (!failures.is_empty()).then_some(failures)),
        }
    }

    /// Carries out what the core decided.
    async fn carry_out(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Invite(uri) => self.invite(&uri),
                Output::Reinvite => self.reinvite(),
                Output::Fork(on) => {
                    let target = on.then(|| self.fork_target()).flatten();
                    let cmd = MediaCommand::Record(RecordCommand::Fork(target));
                    let _ = self.s.media.send(cmd).await;
                }
                Output::HangUp => {
                    self.attempt.clear();
                    if let Some(leg) = self.leg.take() {
                        tokio::spawn(async move { leg.hang_up().await });
                    }
                }
                Output::Failed(why) => {
                    // Once per session: the call goes on unrecorded by the recorders.
                    warn!(call = %self.s.call, error = %why, "recording: no recorder");
                    crate::metrics::recording_recorder_failed();
                    self.error = Some(why);
                }
            }
        }
    }

    fn fork_target(&self) -> Option<ForkTarget> {
        let t = self.targets.as_ref()?;
        Some(ForkTarget {
            sockets: self.ports.clone(),
            to: [t.customer.0, t.agents.0],
            formats: [t.customer.1.clone(), t.agents.1.clone()],
        })
    }

    /// The body of an (re-)INVITE: our SDP as the session is now, and the metadata.
    fn body(&mut self) -> Vec<u8> {
        let a = self.ports[0].advertised;
        let ports = (a.port(), self.ports[1].advertised.port());
        let sdp = body::offer_sdp(&mut self.sdp, a.ip(), ports, self.core.paused());
        body::multipart(&sdp, &self.s.metadata.xml()).into_bytes()
    }

    fn headers() -> Vec<Header> {
        vec![
            Header::Require("siprec".into()),
            Header::ContentType(body::content_type().into()),
        ]
    }

    fn invite(&mut self, uri: &str) {
        self.attempts += 1;
        self.attempt = format!("recorder#{}", self.attempts);
        self.targets = None;
        let placed = self.place(uri);
        match placed {
            Ok(leg) => {
                info!(call = %self.s.call, recorder = uri, "recording: inviting the recorder");
                self.leg = Some(leg);
            }
            Err(e) => {
                debug!(call = %self.s.call, recorder = uri, error = %e, "recording: INVITE not sent");
                self.attempt.clear();
                self.core.handle_refused(Instant::now(), 503);
            }
        }
    }

    fn place(&mut self, uri: &str) -> Result<SipLeg, String> {
        let target_uri = crate::sip::uri::parse_sip_uri(uri)?;
        let explicit = target_uri
            .transport()
            .map(|t| t.to_string().to_ascii_lowercase());
        let target = LegTarget {
            party: self.attempt.clone(),
            uri: target_uri,
            destination: None,
            tcp_fallback: self.s.tcp && explicit.is_none(),
            transport: explicit.unwrap_or_else(|| "udp".into()),
            route: vec![],
        };
        let contact = self
            .s
            .layer
            .build_local_contact(Some("clicktocall".into()), None)
            .map_err(|e| e.to_string())?;
        let caller = rsip::Uri {
            params: vec![],
            ..contact.clone()
        };
        let opt = InviteOption {
            caller_display_name: Some("clicktocall recording".into()),
            caller,
            contact,
            content_type: Some(body::content_type()),
            offer: Some(self.body()),
            headers: Some(vec![Header::Require("siprec".into())]),
            ..Default::default()
        };
        SipLeg::invite(&self.s.layer, &target, opt, self.events.clone()).map_err(|e| e.to_string())
    }

    fn reinvite(&mut self) {
        let Some(leg) = self.leg.clone() else {
            return;
        };
        let body = self.body();
        let (done, attempt) = (self.reinvites.clone(), self.attempts);
        tokio::spawn(async move {
            let _ = done.send((attempt, leg.reinvite(Self::headers(), body).await));
        });
    }

    async fn on_leg(&mut self, ev: LegEvent) {
        let now = Instant::now();
        match ev {
            LegEvent::Answered { party, sdp } if party == self.attempt => {
                match body::read_targets(&sdp) {
                    Ok(t) => {
                        info!(call = %self.s.call, ?t, "recording: the recorder answered");
                        self.targets = Some(t);
                        self.core.handle_answered();
                    }
                    Err(why) => self.core.handle_unusable(now, &why),
                }
            }
            LegEvent::Failed { party, status } if party == self.attempt => {
                info!(call = %self.s.call, status, "recording: the recorder refused");
                self.leg = None;
                self.core.handle_refused(now, status);
            }
            LegEvent::Ended { party } if party == self.attempt => {
                info!(call = %self.s.call, "recording: the recorder ended the session");
                self.leg = None;
                self.core.handle_ended(now);
            }
            // A recorder has no business changing our offer, transferring us or sending digits.
            LegEvent::Offer { reply, .. } => {
                let _ = reply.reply(StatusCode::NotAcceptableHere).await;
            }
            LegEvent::Refer { reply, .. } => {
                let _ = reply.reply(StatusCode::Forbidden).await;
            }
            LegEvent::Info { reply, .. } => {
                let _ = reply.reply(StatusCode::OK).await;
            }
            _ => {} // ringing, or news of an attempt already given up
        }
    }
}
