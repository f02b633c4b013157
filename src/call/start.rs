//! One way in: every call (a browser's, a trunk caller's, a callback's) starts through [`start`],
//! with its customer leg (a browser or a SIP dialog), its context and its first menu; the rest of
//! the call does not care how the customer came.

use super::controller::CallController;
use super::customer::{Customer, CustomerInput, CUSTOMER};
use super::events::CallEvent;
use super::task::CallTask;
use super::{CallId, CallManager, CustomerKind, StartCallError};
use crate::lifecycle::CallGuard;
use crate::media::engine::MediaCommand;
use crate::media::leg::NewLeg;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{info, info_span, Instrument};

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
    /// The visitor's language, for prompts.
    pub lang: Option<String>,
    /// The widget socket's session number (a later socket may resume the call).
    pub session: u64,
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

/// Everything a call starts with.
pub struct CallStart {
    /// How the customer came (records and metrics say `browser`, `sip`, `callback`).
    pub kind: CustomerKind,
    /// The customer's leg.
    pub customer: Customer,
    /// The page's or trunk's context.
    pub context: Map<String, Value>,
    /// Headers copied onto every agent INVITE (pass-through, `X-Context-Verified`).
    pub headers: Vec<(String, String)>,
    /// The state machine, at its first menu.
    pub controller: CallController,
    /// The slot under the call limit.
    pub guard: CallGuard,
    /// Who follows the call's events (the callback service; a widget attaches itself).
    pub subscriber: Option<mpsc::UnboundedSender<CallEvent>>,
    /// The customer's language, for prompts.
    pub lang: Option<String>,
}

/// Starts a call: its media with the customer's leg, its task, its entry in the directory.
/// Returns its id, where the customer's input goes, and the task.
pub async fn start(
    mgr: &Arc<CallManager>,
    call: CallStart,
) -> (
    CallId,
    mpsc::UnboundedSender<CustomerInput>,
    tokio::task::JoinHandle<()>,
) {
    let (leg, lease, dialog) = match call.customer {
        Customer::Browser(leg, lease) => (NewLeg::Browser(leg), lease, None),
        Customer::Sip(dialog, n, lease) => (NewLeg::Rtp(n), lease, Some(dialog)),
    };
    // A browser answered on a worker's shared port lives on that worker.
    let media = mgr.engine.spawn_call_near(mgr.media_timers(), &lease);
    let _ = media
        .commands
        .send(MediaCommand::AddLeg {
            id: CUSTOMER,
            leg,
            lease,
        })
        .await;
    let id = mgr.next_id();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    mgr.directory.register(id, call.kind, cmd_tx);
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    if call.kind == CustomerKind::Browser {
        // A socket that drops and comes back finds the call's input here (by the resume token).
        mgr.directory.set_customer_input(id, input_tx.clone());
    }
    let task = CallTask::new(
        mgr.clone(),
        id,
        call.kind,
        call.controller,
        media,
        call.context,
        call.guard,
        cmd_rx,
    )
    .with_customer_dialog(dialog)
    .with_headers(call.headers)
    .with_subscriber(call.subscriber)
    .with_lang(call.lang);
    let handle = tokio::spawn(task.run(input_rx).instrument(info_span!("call", id)));
    (id, input_tx, handle)
}

/// Starts a browser call: answers the offer and starts the call.
pub async fn start_browser_call(
    mgr: &Arc<CallManager>,
    req: BrowserCall,
    subscriber: mpsc::UnboundedSender<CallEvent>,
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
            crate::lifecycle::CallRefused::Draining
            | crate::lifecycle::CallRefused::SharedStateDown => StartCallError::Draining,
            crate::lifecycle::CallRefused::Full(n) => StartCallError::Full(n),
        }
    })?;
    let (leg, lease, answer) = mgr
        .engine
        .answer_browser(Instant::now(), &req.offer)
        .await?;
    let controller = mgr.controller(
        &mgr.cfg.ivr.start,
        req.queue.clone().map(|q| (q, req.skill.clone())),
    );
    let verified = if req.verified { "yes" } else { "no" };
    let (id, input, _) = start(
        mgr,
        CallStart {
            kind: CustomerKind::Browser,
            customer: Customer::Browser(Box::new(leg), lease),
            context: req.context,
            headers: vec![("X-Context-Verified".into(), verified.into())],
            controller,
            guard,
            subscriber: None,
            lang: req.lang,
        },
    )
    .await;
    let _ = input.send(CustomerInput::Attach {
        session: req.session,
        events: subscriber,
    });
    info!(call = id, verified = req.verified, "browser call started");
    Ok(StartedCall { id, answer, input })
}
