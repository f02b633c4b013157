//! The callback dialer: places a callback's call over the trunk and, once the customer answers,
//! runs it as an ordinary call whose IVR is the callback greeting ("... press 1 to speak to an
//! agent"). 180/183 are progress only: early media from the carrier reaches no one (the customer's
//! media starts after the 200), and nothing but a 2xx counts as an answer.

use super::customer::{offered_formats, Customer, CustomerInput};
use super::sip_leg::{LegEvent, LegTarget, SipLeg};
use super::start::CallStart;
use super::{CallManager, CustomerKind};
use crate::callback::service::{Dialer, Outcome, Progress};
use crate::callback::store::Callback;
use crate::ivr::{IvrRunner, Menu, MenuAction};
use crate::media::sdp::{read_answer, Direction, SdpSession};
use crate::widget::protocol::ServerMessage;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::rsip::{self, Header, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

/// Dials callbacks through the configured trunk.
pub struct TrunkDialer {
    /// Call control.
    pub mgr: Arc<CallManager>,
}

/// The IVR of an answered callback: the greeting, the confirming digit into the queue, one more
/// try, then goodbye.
fn confirm_menu(mgr: &CallManager, queue: &str) -> IvrRunner {
    let c = &mgr.cfg.callback;
    let mut options = HashMap::new();
    options.insert(
        c.confirm_digit,
        MenuAction::Queue {
            queue: queue.into(),
            skill: None,
        },
    );
    let menu = Menu {
        prompt: c.greeting.clone(),
        options,
        input_timeout: Duration::from_secs(c.confirm_timeout_secs),
        retries: 1,
        invalid_prompt: None,
        on_exhausted: MenuAction::HangUp,
        labels: Vec::new(),
    };
    IvrRunner::new(HashMap::from([("callback".to_string(), menu)]), "callback")
}

#[async_trait::async_trait]
impl Dialer for TrunkDialer {
    async fn dial(
        &self,
        cb: Callback,
        progress: mpsc::UnboundedSender<Progress>,
        widget: Option<mpsc::UnboundedSender<ServerMessage>>,
    ) -> Outcome {
        let mgr = &self.mgr;
        let span = info_span!("callback", id = %cb.id);
        async move {
            match place(mgr, cb, progress, widget).await {
                Ok(o) | Err(o) => o,
            }
        }
        .instrument(span)
        .await
    }

    fn can_dial(&self) -> bool {
        !self.mgr.lifecycle.is_draining()
    }
}

async fn place(
    mgr: &Arc<CallManager>,
    cb: Callback,
    progress: mpsc::UnboundedSender<Progress>,
    widget: Option<mpsc::UnboundedSender<ServerMessage>>,
) -> Result<Outcome, Outcome> {
    let cfg = &mgr.cfg.callback;
    let trunk = match &cfg.trunk {
        Some(n) => mgr.cfg.trunks.iter().find(|t| &t.name == n),
        None => mgr.cfg.trunks.first(),
    }
    .ok_or(Outcome::TrunkError)?;
    let guard = mgr.lifecycle.start_call().ok_or(Outcome::TrunkError)?;
    let proxy = crate::sip::trunk::proxy_addr(trunk).await.map_err(|e| {
        warn!(error = %e, "trunk proxy unreachable");
        Outcome::TrunkError
    })?;
    let proxy_uri = crate::sip::uri::parse_proxy(&trunk.proxy).map_err(|_| Outcome::TrunkError)?;
    // Without a configured domain the proxy itself (with its port) is the URIs' host, so every
    // request of the dialog, CANCEL included, goes to it.
    let domain = trunk.domain.clone().unwrap_or_else(|| {
        let default = if proxy_uri.transport == rsip::Transport::Tls {
            5061
        } else {
            5060
        };
        if proxy_uri.port == default {
            proxy_uri.host.clone()
        } else {
            format!("{}:{}", proxy_uri.host, proxy_uri.port)
        }
    });
    let caller_id = cfg
        .caller_id
        .clone()
        .or_else(|| trunk.numbers.first().cloned())
        .unwrap_or_else(|| "clicktocall".into());
    let uri = |user: &str| {
        rsip::Uri::try_from(format!("sip:{user}@{domain}").as_str()).map_err(|e| {
            warn!(error = %e, "cannot build a trunk URI");
            Outcome::TrunkError
        })
    };
    let dialled = crate::callback::number::dial_string(
        &cb.number,
        trunk.dial_format,
        &trunk.dial_prefix,
        &cfg.plan(),
    );
    let callee = uri(&dialled)?;
    let caller = uri(&caller_id)?;
    let cust = mgr
        .engine
        .lease_with_rtcp()
        .await
        .map_err(|_| Outcome::TrunkError)?;
    let mut sdp = SdpSession::new(rand::random::<u32>().into());
    let offer = sdp.offer(
        cust.advertised,
        &offered_formats(),
        true,
        20,
        Direction::SendRecv,
    );
    let contact = mgr
        .layer
        .build_local_contact(Some("clicktocall".into()), None)
        .map_err(|_| Outcome::TrunkError)?;
    let credential = trunk.username.clone().map(|username| Credential {
        username,
        password: trunk.password.clone().unwrap_or_default(),
        realm: None,
        auth_username: None,
    });
    let opt = InviteOption {
        caller,
        callee: callee.clone(),
        contact,
        content_type: Some("application/sdp".into()),
        offer: Some(offer.clone().into_bytes()),
        credential,
        support_prack: trunk.prack,
        ..Default::default()
    };
    let target = LegTarget {
        party: "customer".into(),
        uri: callee,
        destination: Some(proxy),
        transport: proxy_uri.transport.to_string().to_ascii_lowercase(),
        tcp_fallback: false,
        route: vec![],
    };
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let leg = SipLeg::invite(&mgr.layer, &target, opt, ev_tx).map_err(|e| {
        warn!(error = %e, "callback INVITE not sent");
        Outcome::TrunkError
    })?;
    info!(number = %cb.number, trunk = %trunk.name, "callback INVITE sent");

    // Until the answer: ringing is progress; a final error is the outcome; the ring timeout CANCELs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(cfg.ring_timeout_secs);
    let stop = mgr.lifecycle.end_calls_token();
    let answer = loop {
        tokio::select! {
            ev = ev_rx.recv() => match ev {
                Some(LegEvent::Ringing { .. }) => { let _ = progress.send(Progress::Ringing); }
                Some(LegEvent::Answered { sdp, .. }) => break sdp,
                Some(LegEvent::Failed { status, .. }) => {
                    let o = Outcome::from_status(status);
                    info!(status, outcome = o.as_str(), "callback not answered");
                    return Err(o);
                }
                Some(_) => {}
                None => return Err(Outcome::TrunkError),
            },
            _ = tokio::time::sleep_until(deadline) => {
                info!("callback rang out; cancelling");
                leg.hang_up().await;
                return Err(Outcome::NoAnswer);
            }
            _ = stop.cancelled() => {
                leg.hang_up().await;
                return Err(Outcome::TrunkError);
            }
        }
    };
    let negotiated = match read_answer(&answer, &offered_formats()) {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, "callback answer unusable; hanging up");
            leg.hang_up().await;
            return Err(Outcome::TrunkError);
        }
    };
    let _ = progress.send(Progress::Answered);
    info!(remote = ?negotiated.remote, codec = %negotiated.codec.name, "customer answered the callback");

    let ctl = mgr.controller_with(confirm_menu(mgr, &cb.queue), None);
    let mut context = cb.context.clone();
    context.insert("callback".into(), serde_json::Value::String(cb.id.clone()));
    context
        .entry("caller")
        .or_insert_with(|| serde_json::Value::String(cb.number.clone()));
    let (states_tx, mut states_rx) = mpsc::unbounded_channel();
    let verified = if cb.verified { "yes" } else { "no" };
    let start = CallStart {
        kind: CustomerKind::Callback,
        customer: Customer::Sip(leg.dialog(), negotiated, cust),
        context,
        headers: vec![("X-Context-Verified".into(), verified.into())],
        controller: ctl,
        guard,
        subscriber: Some(states_tx),
        lang: None,
    };
    let (id, input_tx, call) = super::start::start(mgr, start).await;
    debug!(call = id, "callback call started");

    // The customer's side of the dialog after the answer: BYE ends the call, a re-INVITE gets
    // our offer again, INFO carries digits; a customer's phone may not transfer the call.
    let offer_again = offer;
    tokio::spawn(async move {
        while let Some(ev) = ev_rx.recv().await {
            match ev {
                LegEvent::Ended { .. } => {
                    let _ = input_tx.send(CustomerInput::Hangup);
                    break;
                }
                LegEvent::Offer { reply, .. } => {
                    let ct = vec![Header::ContentType("application/sdp".into())];
                    let _ = reply
                        .respond(
                            StatusCode::OK,
                            Some(ct),
                            Some(offer_again.clone().into_bytes()),
                        )
                        .await;
                }
                LegEvent::Info {
                    content_type,
                    body,
                    reply,
                    ..
                } => {
                    let _ = reply.reply(StatusCode::OK).await;
                    if let Some(d) = crate::media::dtmf::parse_info_body(&content_type, &body) {
                        let _ = input_tx.send(CustomerInput::InfoDigit(d));
                    }
                }
                LegEvent::Refer { reply, .. } => {
                    let _ = reply.reply(StatusCode::Forbidden).await;
                }
                _ => {}
            }
        }
    });

    // The call's states go to the requester's widget; leaving the IVR for the queue confirms.
    let mut confirmed = false;
    while let Some(ev) = states_rx.recv().await {
        let Some(m) = ev.to_widget() else { continue };
        if let ServerMessage::State { state, .. } = &m {
            if !confirmed && matches!(state.as_str(), "queued" | "ringing" | "connected") {
                confirmed = true;
                let _ = progress.send(Progress::Confirmed);
            }
        }
        if let Some(w) = &widget {
            let _ = w.send(m);
        }
    }
    let _ = call.await;
    debug!(confirmed, "callback call over");
    Ok(if confirmed {
        Outcome::Completed
    } else {
        Outcome::Unconfirmed
    })
}
