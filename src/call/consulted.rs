//! The call task's side of consult calls and attended transfer
//! ([`super::controller::consult`]): a desk phone's consult dialog adopted as a leg of the call
//! (answered when the target answers, refused if it does not), the REST console's consult, and a
//! REFER with `Replaces` naming one of this call's dialogs, resolved inside the gateway: the
//! customer's leg is bridged to the target's, the transferor's legs get BYE, and the customer
//! never sees a REFER.

use super::controller::parties::Refusal;
use super::directory::{CommandError, ConsultTarget};
use super::internal::Handover;
use super::sip_leg::SipLeg;
use super::task::CallTask;
use crate::sip::replaces::Replaces;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::rsip::{Header, StatusCode};
use std::time::Duration;
use tracing::{debug, info};

/// How long the final NOTIFY of an attended transfer waits after the 202.
const NOTIFY_GAP: Duration = Duration::from_millis(30);

/// The party name of an agent's consult leg (a desk phone's second dialog).
pub fn consult_leg(agent: &str) -> String {
    format!("{agent}{CONSULT_SUFFIX}")
}

const CONSULT_SUFFIX: &str = "/consult";

/// A transferor's other dialog: its consult leg, or (for a consult leg) the agent's own.
fn other_leg(party: &str) -> String {
    match party.strip_suffix(CONSULT_SUFFIX) {
        Some(agent) => agent.to_string(),
        None => consult_leg(party),
    }
}

impl CallTask {
    /// `from` (for `None`: the call's only agent) consults an agent, or a queue's longest-idle
    /// agent; `leg` is a desk phone's consult dialog.
    pub(super) async fn consult(
        &mut self,
        from: Option<String>,
        target: ConsultTarget,
        leg: Option<Handover>,
    ) -> Result<(), CommandError> {
        let from = self.ctl.check_consult(from.as_deref())?;
        let target = match target {
            ConsultTarget::Agent(a) => {
                if self.mgr.cfg.agent(&a).is_none() {
                    return Err(CommandError::Invalid(
                        "unknown_agent",
                        format!("no agent {a:?}"),
                    ));
                }
                if self.ctl.agents().contains(&a) {
                    return Err(CommandError::Conflict(Refusal {
                        code: "already_in_call",
                        message: format!("{a} is in the call"),
                    }));
                }
                self.claim(&a).await?;
                a
            }
            ConsultTarget::Queue(q) => self.claim_from(&q).await?,
        };
        let target = target.as_str();
        let party = match leg.and_then(|h| h.take()) {
            Some(l) => {
                let party = consult_leg(&from);
                let sip = SipLeg::adopt(
                    &self.mgr.layer,
                    &party,
                    l.dialog.clone(),
                    l.states,
                    self.leg_tx.clone(),
                );
                self.legs.insert(party.clone(), sip);
                self.pending_accept
                    .insert(party.clone(), (l.dialog, l.answer));
                self.add_answered_media(&party, l.negotiated, l.lease, l.sdp, l.signalling)
                    .await;
                Some(party)
            }
            None => None,
        };
        info!(call = self.id, %from, %target, leg = ?party, "consult");
        Ok(self.ctl.handle_consult(&from, target, party)?)
    }

    /// The target answered: the desk phone's consult dialog gets our answer.
    pub(super) fn accept_leg(&mut self, party: &str) {
        if let Some((dialog, answer)) = self.pending_accept.remove(party) {
            let h = vec![
                Header::ContentType("application/sdp".into()),
                Header::Supported("replaces".into()),
            ];
            if let Err(e) = dialog.accept(Some(h), Some(answer.into_bytes())) {
                debug!(%party, error = %e, "consult leg: answer not sent");
            }
        }
    }

    /// The target did not answer: the desk phone's consult dialog is refused with its status.
    pub(super) fn reject_leg(&mut self, party: &str, status: u16) {
        if let Some((dialog, _)) = self.pending_accept.remove(party) {
            let _ = dialog.reject(Some(StatusCode::from(status)), None);
        }
        self.legs.remove(party);
        self.drop_media(party);
    }

    /// The party of this call whose dialog `r` names.
    fn party_named_by(&self, r: &Replaces) -> Option<String> {
        self.legs.iter().find_map(|(party, leg)| {
            let id = leg.dialog().id();
            r.names(&id.call_id, &id.local_tag, &id.remote_tag)
                .then(|| party.clone())
        })
    }

    /// A REFER whose `Refer-To` carries `Replaces` (an attended transfer): true when it was one
    /// (answered here), false for a blind REFER.
    pub(super) async fn refer_replaces(
        &mut self,
        party: &str,
        refer_to: &str,
        reply: &TransactionHandle,
    ) -> bool {
        let Some(r) = crate::sip::replaces::from_refer_to(refer_to) else {
            return false;
        };
        let status = match self.party_named_by(&r) {
            Some(replaced) => self.ctl.handle_refer_replaces(party, &replaced),
            None => 481,
        };
        info!(call = self.id, %party, status, "attended transfer (REFER with Replaces)");
        let _ = reply.reply(StatusCode::from(status)).await;
        if status == 202 {
            // The final NOTIFY goes before the BYEs the controller decided for the transferor's
            // two dialogs (their hang-ups wait for it).
            if let Some(leg) = self.legs.get(party).cloned() {
                let (done, notified) = tokio::sync::oneshot::channel::<()>();
                let h = tokio::spawn(async move {
                    tokio::time::sleep(NOTIFY_GAP).await;
                    leg.notify_transfer(200).await;
                    let _ = done.send(());
                });
                self.notifies.insert(party.to_string(), h);
                let other = other_leg(party);
                let after = tokio::spawn(async move {
                    let _ = notified.await;
                });
                self.notifies.insert(other, after);
            }
        }
        true
    }
}
