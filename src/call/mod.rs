//! Call control: the per-call state machine ([`controller`], sans-IO, with its parties), the one
//! way in ([`start`]), the shell that runs one task per call ([`task`]) with its parties' legs
//! ([`agent_legs`]) and the API's commands ([`commands`]), the directory of live calls
//! ([`directory`]), what a call tells its followers ([`events`]), the SIP legs ([`sip_leg`]), the
//! prompts ([`prompts`]), and the trunk and callback entry paths ([`inbound`], [`callback`]).
//!
//! [`CallManager`] is what the WebSocket endpoint, the SIP dispatcher and the REST API use to start
//! and steer calls; it holds the node's shared services (media engine, ACD handle, dialog layer,
//! prompts) and the directory. Each call's own state lives in its task.

mod agent_legs;
pub mod callback;
mod commands;
mod consulted;
pub mod controller;
pub mod customer;
pub mod dialplan;
pub mod directory;
pub mod events;
pub mod id;
pub mod inbound;
pub mod internal;
pub mod party_routes;
pub mod prompts;
mod quality;
mod recorded;
pub mod recording;
pub mod sip_leg;
pub mod siprec_leg;
pub mod start;
mod supervised;
pub mod task;
mod widget_link;

use crate::acd::service::AcdHandle;
use crate::config::Config;
use crate::ivr::Menu;
use crate::lifecycle::Lifecycle;
use crate::media::engine::{EngineError, MediaEngine};
use crate::registrar::LocationStore;
use crate::widget::context::ContextMapping;
use prompts::PromptLibrary;
use rsipstack::dialog::dialog_layer::DialogLayer;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub use id::CallId;

/// How the customer reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKind {
    /// The widget, WebRTC in the browser.
    Browser,
    /// An INVITE from a trunk.
    Sip,
    /// A callback: the gateway called the customer over a trunk.
    Callback,
    /// A phone of the gateway (agent, supervisor) calling an agent, a supervisor or a queue.
    Internal,
}

impl CustomerKind {
    /// The stable string for records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerKind::Browser => "browser",
            CustomerKind::Sip => "sip",
            CustomerKind::Callback => "callback",
            CustomerKind::Internal => "internal",
        }
    }
}

pub use directory::CallSummary;

/// Why a call could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartCallError {
    /// The gateway is draining.
    #[error("the gateway is shutting down; try again shortly")]
    Draining,
    /// At the configured limit of calls at once.
    #[error("the gateway is at its limit of {0} calls; try again shortly")]
    Full(usize),
    /// The widget named a queue that does not exist.
    #[error("no queue named {0:?}")]
    UnknownQueue(String),
    /// Media could not be set up (bad offer, no ports).
    #[error(transparent)]
    Media(#[from] EngineError),
}

impl StartCallError {
    /// The widget's stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            StartCallError::Draining => "unavailable",
            StartCallError::Full(_) => "busy",
            StartCallError::UnknownQueue(_) => "unknown_queue",
            StartCallError::Media(EngineError::NoPort(..)) => "busy",
            StartCallError::Media(EngineError::Browser(_)) => "bad_offer",
        }
    }
}

/// The node's call services.
pub struct CallManager {
    /// Configuration.
    pub cfg: Arc<Config>,
    /// Media sockets and tasks.
    pub engine: MediaEngine,
    /// Queues and agents.
    pub acd: AcdHandle,
    /// rsipstack's dialogs (agent legs, inbound calls).
    pub layer: Arc<DialogLayer>,
    /// Where registered agents are.
    pub locations: Arc<dyn LocationStore>,
    /// Prompts.
    pub prompts: Arc<PromptLibrary>,
    /// IVR menus.
    pub menus: HashMap<String, Menu>,
    /// Context → headers.
    pub mapping: ContextMapping,
    /// Draining and stop.
    pub lifecycle: Lifecycle,
    /// Call detail records.
    pub records: crate::records::writer::Records,
    /// The callback service, when `[callback] enabled`.
    pub callbacks: std::sync::OnceLock<crate::callback::service::CallbackHandle>,
    /// This node's cluster, when `[cluster] redis` is set (REST requests for calls of other
    /// nodes are redirected there).
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Queues whose callers first go to an external IVR.
    external_ivr_queues: Vec<String>,
    /// The configured agents and queues, shared by every call's controller.
    known: (Arc<[String]>, Arc<[String]>),
    /// The live calls, by id.
    pub directory: directory::Directory,
    /// Signs and checks the widget's resume tokens.
    pub resume: crate::widget::resume::ResumeKey,
    ids: id::CallIds,
}

impl CallManager {
    /// The services for `cfg` (validated: menus and prompts load).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Arc<Config>,
        engine: MediaEngine,
        acd: AcdHandle,
        layer: Arc<DialogLayer>,
        locations: Arc<dyn LocationStore>,
        prompts: PromptLibrary,
        menus: HashMap<String, Menu>,
        lifecycle: Lifecycle,
        records: crate::records::writer::Records,
    ) -> Arc<CallManager> {
        let mapping = ContextMapping {
            headers: cfg
                .context
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            screen_pop: cfg.context.screen_pop.clone(),
            display_name: cfg.context.display_name.clone(),
        };
        let external_ivr_queues = cfg
            .queues
            .iter()
            .filter(|q| q.external_ivr.is_some())
            .map(|q| q.name.clone())
            .collect();
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ids = id::CallIds::new(cfg.cluster.node_id, started);
        // A token outlives the grace by a minute: the widget gets a fresh one every few seconds
        // (`pong`), so the one it holds when its socket drops is valid for the whole grace.
        let ttl = cfg.widget.resume_grace_secs + 60;
        let resume = match &cfg.widget.resume_secret {
            Some(secret) => crate::widget::resume::ResumeKey::new(secret.as_bytes(), ttl),
            None => crate::widget::resume::ResumeKey::random(ttl),
        };
        let known = (
            cfg.agents.iter().map(|a| a.id.clone()).collect(),
            cfg.queues.iter().map(|q| q.name.clone()).collect(),
        );
        Arc::new(CallManager {
            external_ivr_queues,
            known,
            cfg,
            engine,
            acd,
            layer,
            locations,
            prompts: Arc::new(prompts),
            menus,
            mapping,
            lifecycle,
            records,
            callbacks: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
            directory: directory::Directory::default(),
            resume,
            ids,
        })
    }

    /// The state machine of a new call: the IVR from menu `start`, or straight to `direct`.
    pub(crate) fn controller(
        &self,
        start: &str,
        direct: Option<(String, Option<String>)>,
    ) -> controller::CallController {
        let ivr = crate::ivr::IvrRunner::new(self.menus.clone(), start);
        self.controller_with(ivr, direct)
    }

    /// The state machine of a new call whose customer meets `ivr`.
    pub(crate) fn controller_with(
        &self,
        ivr: crate::ivr::IvrRunner,
        direct: Option<(String, Option<String>)>,
    ) -> controller::CallController {
        let mut ctl = controller::CallController::new(ivr, direct);
        ctl.set_external_ivrs(self.external_ivr_queues.clone());
        ctl.set_known(self.known.0.clone(), self.known.1.clone());
        let keys = self.cfg.supervision.keys.iter().filter_map(|(k, m)| {
            Some((k.chars().next()?, controller::supervision::Mode::parse(m)?))
        });
        ctl.set_supervisor_keys(keys.collect());
        ctl
    }

    /// Media timing rules from the config.
    pub(crate) fn media_timers(&self) -> crate::media::rtp_leg::RtpLegTimers {
        crate::media::rtp_leg::RtpLegTimers {
            media_timeout: std::time::Duration::from_secs(self.cfg.media.media_timeout_secs),
            ..Default::default()
        }
    }

    pub(crate) fn next_id(&self) -> CallId {
        self.ids.next()
    }

    /// A call turned away at the door (over `limits.max_calls`, or draining) still gets its
    /// record: the contact center sees the callers it lost (end reason `overload` or `draining`,
    /// hung up by the gateway), and the `call.refused` webhook tells the CRM.
    pub(crate) fn record_refused(&self, kind: &str, context: Map<String, Value>, reason: &str) {
        let now = task::unix_ms();
        let mut record = crate::records::cdr::CallRecord::new(self.next_id(), kind, context, now);
        record.ended(reason, &[], now);
        self.records.write(&record, "call.refused");
    }

    /// Running calls, oldest first.
    pub fn calls(&self) -> Vec<CallSummary> {
        self.directory.list()
    }
}
