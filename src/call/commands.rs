//! Commands from outside the call (the REST API): hang up, hold, transfer, add or remove a party.
//! The controller says whether each fits the call's state; agents are claimed from the ACD before
//! they ring, so nobody is offered two calls at once.

use super::controller::parties::TransferTarget;
use super::directory::{CallCommand, CommandError};
use super::task::CallTask;
use crate::acd::ClaimError;
use std::time::{Duration, Instant};

impl CallTask {
    /// Carries out one command; the answer goes back to whoever sent it.
    pub(super) async fn on_command(&mut self, cmd: CallCommand) -> Result<(), CommandError> {
        tracing::info!(call = self.id, ?cmd, "command");
        let now = Instant::now();
        match cmd {
            CallCommand::Hangup => Ok(self.ctl.handle_hangup()?),
            CallCommand::Hold(held) => Ok(self.ctl.handle_hold(held)?),
            CallCommand::Recording(action) => {
                let connected = !self.ctl.agents().is_empty();
                let d = self.recording.handle_action(action, connected)?;
                self.record_do(d).await;
                Ok(())
            }
            CallCommand::Play(prompt) => {
                if self.mgr.prompts.get(&prompt).is_none() {
                    return Err(CommandError::Invalid(
                        "unknown_prompt",
                        format!("no prompt {prompt:?}"),
                    ));
                }
                Ok(self.ctl.handle_play(&prompt)?)
            }
            CallCommand::AddParty(agent) => {
                self.known_agent(&agent)?;
                self.ctl.check_add_party(&agent)?;
                self.claim(&agent).await?;
                Ok(self.ctl.handle_add_party(&agent)?)
            }
            CallCommand::RemoveParty(party) => {
                self.ctl.handle_remove_party(now, &party).map_err(|r| {
                    if r.code == "not_in_call" {
                        CommandError::NotFound(r.message)
                    } else {
                        CommandError::Conflict(r)
                    }
                })
            }
            CallCommand::Transfer(TransferTarget::Agent(agent)) => {
                self.known_agent(&agent)?;
                self.ctl.check_transfer()?;
                if !self.ctl.agents().contains(&agent) {
                    self.claim(&agent).await?;
                }
                Ok(self
                    .ctl
                    .handle_transfer_to(now, TransferTarget::Agent(agent))?)
            }
            CallCommand::Supervise {
                supervisor,
                mode,
                change,
            } => self.supervise(&supervisor, mode, change),
            CallCommand::DialIn {
                supervisor,
                mode,
                leg,
            } => self.dial_in(&supervisor, mode, leg).await,
            CallCommand::Consult { from, target, leg } => self.consult(from, target, leg).await,
            CallCommand::Dial { to, pending } => self.dial(to, pending).await,
            CallCommand::ConsultDo(action) => {
                use super::directory::ConsultAction as A;
                Ok(match action {
                    A::Complete => self.ctl.handle_consult_complete(),
                    A::Threeway => self.ctl.handle_consult_threeway(),
                    A::Swap => self.ctl.handle_consult_swap(),
                    A::Cancel => self.ctl.handle_consult_cancel(),
                }?)
            }
            CallCommand::Transfer(TransferTarget::Queue(queue)) => {
                if !self.mgr.cfg.queues.iter().any(|q| q.name == queue) {
                    return Err(CommandError::Invalid(
                        "unknown_queue",
                        format!("no queue {queue:?}"),
                    ));
                }
                Ok(self
                    .ctl
                    .handle_transfer_to(now, TransferTarget::Queue(queue))?)
            }
        }
    }

    /// A supervisor joins (only calls of their queues) or changes mode.
    fn supervise(
        &mut self,
        supervisor: &str,
        mode: super::controller::supervision::Mode,
        change: bool,
    ) -> Result<(), CommandError> {
        self.may_supervise(supervisor)?;
        if change {
            return self
                .ctl
                .handle_supervise_mode(supervisor, mode)
                .map_err(|r| match r.code {
                    "not_in_call" => CommandError::NotFound(r.message),
                    _ => CommandError::Conflict(r),
                });
        }
        Ok(self.ctl.handle_supervise(supervisor, mode)?)
    }

    /// An internal call rings its party (an agent claimed from the ACD first, so it is never
    /// offered two calls at once; a supervisor) or enters its queue.
    async fn dial(
        &mut self,
        to: super::controller::dial::Dial,
        pending: super::internal::Handover<(
            rsipstack::dialog::invite_dialog::InviteDialog,
            String,
        )>,
    ) -> Result<(), CommandError> {
        use super::controller::dial::Dial;
        let ready = match &to {
            Dial::Party(p) if self.mgr.cfg.agent(p).is_some() => self.claim(p).await,
            Dial::Party(p) if self.mgr.cfg.supervisor(p).is_some() => Ok(()),
            Dial::Queue(q) if self.mgr.cfg.queues.iter().any(|c| &c.name == q) => Ok(()),
            _ => Err(CommandError::NotFound(format!("nobody at {to:?}"))),
        };
        if let Err(e) = ready {
            // The caller gets the refusal as its final answer; the call is over.
            self.ctl
                .handle_abort(super::controller::EndReason::Unanswered);
            return Err(e);
        }
        if let Some(p) = pending.take() {
            self.pending_accept
                .insert(super::task::CUSTOMER_PARTY.into(), p);
        }
        let queue = matches!(to, Dial::Queue(_));
        self.ctl.handle_dial(Instant::now(), to)?;
        if queue {
            // A caller of a queue is answered at once and hears the queue, as a trunk caller does.
            self.accept_leg(super::task::CUSTOMER_PARTY);
        }
        Ok(())
    }

    /// Only a configured supervisor of the call's queue (403 otherwise).
    fn may_supervise(&self, supervisor: &str) -> Result<(), CommandError> {
        let Some(cfg) = self.mgr.cfg.supervisor(supervisor) else {
            return Err(CommandError::Invalid(
                "unknown_supervisor",
                format!("no supervisor {supervisor:?}"),
            ));
        };
        let queue = self.ctl.queue();
        if queue.is_some_and(|q| cfg.queues.iter().any(|c| c == q)) {
            return Ok(());
        }
        Err(CommandError::Forbidden(
            "not_your_queue",
            format!(
                "{supervisor} supervises {:?}, not this call's queue ({})",
                cfg.queues,
                queue.unwrap_or("none")
            ),
        ))
    }

    /// A supervisor's phone dialled in: its dialog becomes the supervisor's leg, in the media at
    /// once (the phone gets our answer when this returns Ok).
    async fn dial_in(
        &mut self,
        supervisor: &str,
        mode: super::controller::supervision::Mode,
        leg: super::internal::Handover,
    ) -> Result<(), CommandError> {
        self.may_supervise(supervisor)?;
        let Some(leg) = leg.take() else {
            return Err(CommandError::NotFound("the dialog is gone".into()));
        };
        self.ctl.handle_supervisor_dialled_in(supervisor, mode)?;
        let sip = super::sip_leg::SipLeg::adopt(
            &self.mgr.layer,
            supervisor,
            leg.dialog,
            leg.states,
            self.leg_tx.clone(),
        );
        self.legs.insert(supervisor.to_string(), sip);
        self.add_answered_media(
            supervisor,
            leg.negotiated,
            leg.lease,
            leg.sdp,
            leg.signalling,
        )
        .await;
        Ok(())
    }

    fn known_agent(&self, agent: &str) -> Result<(), CommandError> {
        match self.mgr.cfg.agent(agent) {
            Some(_) => Ok(()),
            None => Err(CommandError::Invalid(
                "unknown_agent",
                format!("no agent {agent:?}"),
            )),
        }
    }

    /// How long a claimed agent rings: the call's queue's ring timeout (an internal call's
    /// party: 20 s, well within the unanswered caller's media timeout).
    fn ring_time(&self) -> Duration {
        let secs = self
            .ctl
            .queue()
            .and_then(|q| self.mgr.cfg.queues.iter().find(|c| c.name == q))
            .map_or(20, |q| q.ring_timeout_secs);
        Duration::from_secs(secs)
    }

    /// Claims `agent` from the ACD for this call, ringing up to its queue's ring timeout.
    pub(super) async fn claim(&mut self, agent: &str) -> Result<(), CommandError> {
        let ring = self.ring_time();
        let events = self.acd_tx.clone();
        let r = self.mgr.acd.claim(self.id, agent, ring, events).await;
        r.map_err(claim_error)
    }

    /// Claims the longest-idle available agent of `queue` (not one in the call): which one.
    pub(super) async fn claim_from(&mut self, queue: &str) -> Result<String, CommandError> {
        if !self.mgr.cfg.queues.iter().any(|q| q.name == queue) {
            return Err(CommandError::Invalid(
                "unknown_queue",
                format!("no queue {queue:?}"),
            ));
        }
        let (ring, events) = (self.ring_time(), self.acd_tx.clone());
        let except = self.ctl.agents().to_vec();
        let r = self
            .mgr
            .acd
            .claim_from(self.id, queue, ring, except, events)
            .await;
        r.map_err(claim_error)
    }
}

fn claim_error(e: ClaimError) -> CommandError {
    match e {
        ClaimError::UnknownAgent(_) => CommandError::Invalid("unknown_agent", e.to_string()),
        ClaimError::Unavailable(..) | ClaimError::NoneAvailable(_) => {
            CommandError::Conflict(super::controller::parties::Refusal {
                code: "agent_unavailable",
                message: e.to_string(),
            })
        }
    }
}
