//! Calls placed by the gateway's own phones (agents and supervisors, digest-authenticated): the
//! dial plan ([`super::dialplan`]) says what the dialled name means, and nothing an internal phone
//! dials reaches a trunk. A supervisor dialling the feature code (`*55` + an agent id or a call id)
//! joins that call in monitor mode (keys switch the mode); the call checks that the supervisor
//! may supervise its queue. The phone's dialog is handed to the call's task ([`Handover`]) before
//! it is answered, so a refusal is a clean final response.

use super::controller::dial::Dial;
use super::controller::supervision::Mode;
use super::customer::offered_formats;
use super::customer::Customer;
use super::dialplan::{route, Dialled, Directory};
use super::directory::{CallCommand, CommandError, ConsultTarget};
use super::start::{start, CallStart};
use super::CustomerKind;
use super::{CallId, CallManager};
use crate::media::engine::PortLease;
use crate::media::sdp::{Negotiated, SdpSession};
use rsipstack::dialog::dialog::{Dialog, DialogStateReceiver};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::rsip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use tracing::{debug, info};

/// An internal phone's dialog on its way into a call: not answered yet.
pub struct AdoptedLeg {
    /// The dialog.
    pub dialog: InviteDialog,
    /// Its states (in-dialog requests, its end).
    pub states: DialogStateReceiver,
    /// What was agreed for its media.
    pub negotiated: Negotiated,
    /// Its media port.
    pub lease: PortLease,
    /// Our side of its offer/answer.
    pub sdp: SdpSession,
    /// The host the phone signals from (its media from there latches at once).
    pub signalling: Option<std::net::IpAddr>,
    /// Our SDP answer, to answer the dialog with.
    pub answer: String,
}

/// Hands something that is no plain data (a dialog, a media port) to a call's task inside a
/// [`CallCommand`], taken once; an [`AdoptedLeg`] by default.
pub struct Handover<T = AdoptedLeg>(Arc<Mutex<Option<T>>>);

impl<T> Handover<T> {
    /// A handover of `value`.
    pub fn new(value: T) -> Self {
        Handover(Arc::new(Mutex::new(Some(value))))
    }

    /// The value, the first time.
    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<T> Clone for Handover<T> {
    fn clone(&self) -> Self {
        Handover(self.0.clone())
    }
}

impl<T> std::fmt::Debug for Handover<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handover")
    }
}

impl<T> PartialEq for Handover<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Handover<T> {}

/// Takes an internal phone's INVITE to its final response.
pub(super) async fn handle(mgr: &Arc<CallManager>, mut tx: Transaction, user: String) {
    if let Err((status, why)) = accept(mgr, &mut tx, &user).await {
        info!(%user, status, %why, "internal call refused");
        let _ = tx.reply(StatusCode::from(status)).await;
    }
}

/// The status of a refusal the call gave.
fn status_of(e: &CommandError) -> u16 {
    match e {
        CommandError::UnknownCall(_) | CommandError::NotFound(_) => 404,
        CommandError::Forbidden(..) => 403,
        CommandError::Invalid(..) => 400,
        CommandError::Conflict(_) => 486,
    }
}

async fn accept(
    mgr: &Arc<CallManager>,
    tx: &mut Transaction,
    user: &str,
) -> Result<(), (u16, String)> {
    let cfg = &mgr.cfg;
    let dialled = super::inbound::dialled(tx);
    let agents: Vec<&str> = cfg.agents.iter().map(|a| a.id.as_str()).collect();
    let queues: Vec<&str> = cfg.queues.iter().map(|q| q.name.as_str()).collect();
    let supervisors: Vec<&str> = cfg.supervisors.iter().map(|s| s.id.as_str()).collect();
    let names = Directory {
        feature_code: &cfg.supervision.feature_code,
        agents: &agents,
        queues: &queues,
        supervisors: &supervisors,
    };
    let target = match route(&dialled, &names) {
        Dialled::Supervise(target) => target,
        Dialled::Refused => {
            return Err((403, format!("{dialled:?} is not an internal destination")))
        }
        other => return place(mgr, tx, user, other).await,
    };
    if cfg.supervisor(user).is_none() {
        return Err((
            403,
            "only supervisors may use the supervision feature code".into(),
        ));
    }
    let call: CallId = target
        .parse()
        .ok()
        .filter(|id| mgr.directory.get(*id).is_some())
        .or_else(|| mgr.directory.call_with_party(&target))
        .ok_or((404, format!("no call of {target:?} (it may have ended)")))?;
    let leg = adopt(mgr, tx).await?;
    let (dialog, answer) = (leg.dialog.clone(), leg.answer.clone());
    let cmd = CallCommand::DialIn {
        supervisor: user.into(),
        mode: Mode::Monitor,
        leg: Handover::new(leg),
    };
    let outcome = mgr.directory.command(call, cmd).await;
    match &outcome {
        Ok(()) => {
            info!(call, supervisor = user, "supervisor dialled in");
            let ct = vec![Header::ContentType("application/sdp".into())];
            dialog
                .accept(Some(ct), Some(answer.into_bytes()))
                .map_err(|e| (500, e.to_string()))?;
        }
        Err(e) => {
            info!(call, supervisor = user, error = %e, "supervisor dial-in refused");
            let _ = dialog.reject(Some(StatusCode::from(status_of(e))), Some(e.to_string()));
        }
    }
    drive_invite(dialog, tx).await;
    Ok(())
}

/// An agent, a queue or a supervisor dialled: from a call, a consult call of that call; from no
/// call, an internal call of its own.
async fn place(
    mgr: &Arc<CallManager>,
    tx: &mut Transaction,
    user: &str,
    dialled: Dialled,
) -> Result<(), (u16, String)> {
    let in_call = mgr.directory.call_with_party(user).is_some();
    match dialled {
        Dialled::Agent(a) if in_call => consult(mgr, tx, user, ConsultTarget::Agent(a)).await,
        Dialled::Queue(q) if in_call => consult(mgr, tx, user, ConsultTarget::Queue(q)).await,
        Dialled::Supervisor(_) if in_call => Err((
            480,
            "from a call, consult an agent or a queue (a supervisor joins by the feature code)"
                .into(),
        )),
        Dialled::Agent(p) | Dialled::Supervisor(p) => {
            internal_call(mgr, tx, user, Dial::Party(p)).await
        }
        Dialled::Queue(q) => internal_call(mgr, tx, user, Dial::Queue(q)).await,
        Dialled::Supervise(_) | Dialled::Refused => {
            Err((403, "not an internal destination".into()))
        }
    }
}

/// A phone in no call dials an agent, a supervisor or a queue: a call of its own (no IVR), answered
/// when the party (or the queue's agent) answers.
async fn internal_call(
    mgr: &Arc<CallManager>,
    tx: &mut Transaction,
    user: &str,
    to: Dial,
) -> Result<(), (u16, String)> {
    let guard = mgr
        .lifecycle
        .try_start_call()
        .map_err(|r| (503, r.to_string()))?;
    let leg = adopt(mgr, tx).await?;
    let (dialog, answer) = (leg.dialog.clone(), leg.answer.clone());
    let mut context = Map::new();
    context.insert("caller".into(), Value::String(user.into()));
    let name = match mgr.cfg.agent(user) {
        Some(a) => a.display_name.clone(),
        None => mgr
            .cfg
            .supervisor(user)
            .and_then(|s| s.display_name.clone()),
    };
    if let Some(n) = name {
        context.insert("name".into(), Value::String(n));
    }
    let mut controller = mgr.controller(&mgr.cfg.ivr.start, None);
    controller.set_internal();
    let call = CallStart {
        kind: CustomerKind::Internal,
        customer: Customer::Sip(dialog.clone(), leg.negotiated, leg.lease),
        context,
        headers: Vec::new(),
        controller,
        guard,
        subscriber: None,
        lang: None,
    };
    let (id, input, _) = start(mgr, call).await;
    super::inbound::serve_customer_dialog(mgr.layer.clone(), leg.states, input, answer.clone());
    let _ = dialog.ringing(None, None);
    info!(call = id, caller = user, ?to, "internal call");
    let cmd = CallCommand::Dial {
        to,
        pending: Handover::new((dialog.clone(), answer)),
    };
    if let Err(e) = mgr.directory.command(id, cmd).await {
        info!(call = id, caller = user, error = %e, "internal call refused");
        let _ = dialog.reject(Some(StatusCode::from(status_of(&e))), Some(e.to_string()));
    }
    drive_invite(dialog, tx).await;
    Ok(())
}

/// An agent in a call dials another agent: a consult call of that call (answered when the
/// target answers; the call answers or refuses the dialog).
async fn consult(
    mgr: &Arc<CallManager>,
    tx: &mut Transaction,
    user: &str,
    target: ConsultTarget,
) -> Result<(), (u16, String)> {
    let call = mgr.directory.call_with_party(user).ok_or((
        480,
        format!("{user} is in no call: an agent calls another agent from a call (consult)"),
    ))?;
    let leg = adopt(mgr, tx).await?;
    let dialog = leg.dialog.clone();
    let cmd = CallCommand::Consult {
        from: Some(user.into()),
        target: target.clone(),
        leg: Some(Handover::new(leg)),
    };
    // Ringing first: the target may answer (and the call answer this dialog) at once.
    let _ = dialog.ringing(None, None);
    if let Err(e) = mgr.directory.command(call, cmd).await {
        info!(call, agent = user, ?target, error = %e, "consult refused");
        let _ = dialog.reject(Some(StatusCode::from(status_of(&e))), Some(e.to_string()));
    }
    drive_invite(dialog, tx).await;
    Ok(())
}

/// Drives an INVITE's server transaction with its dialog to the end (the final response already
/// decided or still to come from the call: answered, refused, or CANCELled by the caller).
pub(super) async fn drive_invite(dialog: InviteDialog, tx: &mut Transaction) {
    if let Err(e) = Dialog::Invite(dialog).handle(tx).await {
        debug!(error = %e, "INVITE transaction");
    }
}

/// An INVITE's offer answered from a media port of its own, and its dialog (not accepted yet):
/// an internal phone's, or a trunk caller's.
pub(super) async fn adopt(
    mgr: &Arc<CallManager>,
    tx: &Transaction,
) -> Result<AdoptedLeg, (u16, String)> {
    let offer = String::from_utf8_lossy(&tx.original.body).into_owned();
    if offer.trim().is_empty() {
        return Err((488, "INVITE without an SDP offer".into()));
    }
    let lease = mgr
        .engine
        .lease_with_rtcp()
        .await
        .map_err(|e| (503, e.to_string()))?;
    let mut sdp = SdpSession::new(rand::random::<u32>().into());
    let (answer, negotiated) = sdp
        .answer(&offer, lease.advertised, &offered_formats(), None)
        .map_err(|e| (e.sip_status(), e.to_string()))?;
    let (state_tx, states) = mgr.layer.new_dialog_state_channel();
    let contact = mgr
        .layer
        .build_local_contact(Some("clicktocall".into()), None)
        .ok();
    let dialog = mgr
        .layer
        .get_or_create_server_invite(tx, state_tx, None, contact)
        .map_err(|e| (500, e.to_string()))?;
    let signalling = tx
        .connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .and_then(|a| a.get_socketaddr().ok())
        .map(|a| a.ip());
    Ok(AdoptedLeg {
        dialog,
        states,
        negotiated,
        lease,
        sdp,
        signalling,
        answer,
    })
}
