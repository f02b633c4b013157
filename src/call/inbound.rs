//! Customers calling in through a trunk (the classic incoming-idle path): an INVITE from a trunk's
//! network to one of its numbers is answered by the gateway, meets the same IVR and queues as a
//! browser customer, and reaches an agent with the configured pass-through headers copied from the
//! customer's INVITE (UCMA's `SetPassThroughHeaderNames`).

use super::customer::{Customer, CustomerInput};
use super::start::{start, CallStart};
use super::{CallManager, CustomerKind};
use crate::sip::server::{Caller, InboundCalls};
use crate::widget::context::sanitize;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::rsip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::rsip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use serde_json::{Map, Value};
use std::sync::Arc;
use tracing::{debug, info};

/// Call control's entry for inbound INVITEs.
pub struct Inbound(pub Arc<CallManager>);

#[async_trait::async_trait]
impl InboundCalls for Inbound {
    async fn handle_invite(&self, mut tx: Transaction, caller: Caller) {
        let trunk = match caller {
            Caller::Trunk(t) => t,
            Caller::User(user) => return super::internal::handle(&self.0, tx, user).await,
        };
        if let Err((status, why)) = self.accept(&mut tx, &trunk).await {
            info!(%trunk, status, why, "inbound call refused");
            let _ = tx.reply(StatusCode::from(status)).await;
        }
    }
}

/// The value of the first header named `name` (case-insensitive) in a request.
fn header_value(req: &rsipstack::rsip::Request, name: &str) -> Option<String> {
    req.headers.iter().find_map(|h| {
        let text = h.to_string();
        let (n, v) = text.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

impl Inbound {
    async fn accept(&self, tx: &mut Transaction, trunk: &str) -> Result<(), (u16, String)> {
        let mgr = &self.0;
        let cfg = mgr
            .cfg
            .trunks
            .iter()
            .find(|t| t.name == trunk)
            .ok_or((500, "trunk vanished".to_string()))?;
        let number = dialled(tx);
        if !cfg.numbers.is_empty() && !cfg.numbers.iter().any(|n| n == &number) {
            return Err((404, format!("number {number:?} is not one of the trunk's")));
        }
        if String::from_utf8_lossy(&tx.original.body).trim().is_empty() {
            return Err((488, "INVITE without an SDP offer".into()));
        }
        let from = tx.original.from_header().ok().and_then(|f| f.typed().ok());
        let mut context = Map::new();
        if let Some(f) = &from {
            if let Some(user) = f.uri.auth.as_ref().map(|a| a.user.clone()) {
                context.insert("caller".into(), Value::String(user));
            }
            if let Some(name) = f.display_name.clone().filter(|n| !n.is_empty()) {
                context.insert("name".into(), Value::String(name.trim_matches('"').into()));
            }
        }
        context.insert("called".into(), Value::String(number.clone()));
        let guard = mgr.lifecycle.try_start_call().map_err(|r| {
            crate::metrics::rejected(r.as_str());
            mgr.record_refused("sip", context.clone(), r.as_str());
            (503, r.to_string())
        })?;
        // The same answer as an internal phone's INVITE gets: a media port, our SDP, the dialog.
        let leg = super::internal::adopt(mgr, tx).await?;
        let (dialog, answer) = (leg.dialog.clone(), leg.answer.clone());

        let passed: Vec<(String, String)> = cfg
            .pass_through_headers
            .iter()
            .filter_map(|name| {
                let v = header_value(&tx.original, name)?;
                Some((name.clone(), sanitize(&Value::String(v))))
            })
            .collect();

        let menu = cfg.menu.as_deref().unwrap_or(&mgr.cfg.ivr.start);
        // A trunk with a queue of its own skips the menus (the controller enqueues when media flows).
        let direct = cfg.queue.clone().map(|q| (q, None));
        let call = CallStart {
            kind: CustomerKind::Sip,
            customer: Customer::Sip(dialog.clone(), leg.negotiated, leg.lease),
            context,
            headers: passed,
            controller: mgr.controller(menu, direct),
            guard,
            subscriber: None,
            lang: None,
        };
        let (id, input_tx, _) = start(mgr, call).await;
        info!(call = id, %trunk, %number, "inbound call answered");

        serve_customer_dialog(mgr.layer.clone(), leg.states, input_tx, answer.clone());
        let ct = vec![Header::ContentType("application/sdp".into())];
        dialog
            .accept(Some(ct), Some(answer.into_bytes()))
            .map_err(|e| (500, e.to_string()))?;
        super::internal::drive_invite(dialog, tx).await;
        Ok(())
    }
}

/// What an INVITE dialled: its Request-URI's user part (empty when it has none).
pub(super) fn dialled(tx: &Transaction) -> String {
    let uri = &tx.original.uri;
    uri.auth
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_default()
}

/// The customer's dialog (a trunk caller's, an internal caller's): BYE or CANCEL ends the call, a
/// re-INVITE gets our answer again, an INFO digit drives the IVR, a REFER is refused.
pub(super) fn serve_customer_dialog(
    layer: Arc<rsipstack::dialog::dialog_layer::DialogLayer>,
    mut state_rx: rsipstack::dialog::dialog::DialogStateReceiver,
    input_tx: tokio::sync::mpsc::UnboundedSender<CustomerInput>,
    answer_again: String,
) {
    tokio::spawn(async move {
        while let Some(st) = state_rx.recv().await {
            match st {
                DialogState::Terminated(id, reason) => {
                    debug!(?reason, "customer dialog ended");
                    layer.remove_dialog(&id);
                    let _ = input_tx.send(CustomerInput::Hangup);
                    break;
                }
                DialogState::Updated(_, _, reply) => {
                    let ct = vec![Header::ContentType("application/sdp".into())];
                    let _ = reply
                        .respond(
                            StatusCode::OK,
                            Some(ct),
                            Some(answer_again.clone().into_bytes()),
                        )
                        .await;
                }
                // A digit out of band (SIP INFO) drives the IVR and reaches the agents.
                DialogState::Info(_, req, reply) => {
                    let _ = reply.reply(StatusCode::OK).await;
                    let ct = header_value(&req, "Content-Type").unwrap_or_default();
                    let body = String::from_utf8_lossy(&req.body);
                    if let Some(d) = crate::media::dtmf::parse_info_body(&ct, &body) {
                        let _ = input_tx.send(CustomerInput::InfoDigit(d));
                    }
                }
                DialogState::Options(_, _, reply)
                | DialogState::Notify(_, _, reply)
                | DialogState::Message(_, _, reply)
                | DialogState::Publish(_, _, reply) => {
                    let _ = reply.reply(StatusCode::OK).await;
                }
                // A customer's phone does not get to move the call elsewhere.
                DialogState::Refer(_, _, reply) => {
                    let _ = reply.reply(StatusCode::Forbidden).await;
                }
                _ => {}
            }
        }
    });
}
