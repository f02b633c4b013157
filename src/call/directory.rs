//! The node's live calls by id: what the REST API reads (state, queue, parties) and the way to
//! steer a call (a [`CallCommand`] to its task, answered when the task has carried it out). A
//! cluster keeps call id → node in a shared store; the handle itself stays on the node that holds
//! the call.

use super::controller::parties::{Refusal, TransferTarget};
use super::{CallId, CustomerKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A command to a running call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// Hang up everybody.
    Hangup,
    /// Hold the customer (music; not heard) or resume.
    Hold(bool),
    /// Transfer to an agent or a queue; the current agents leave.
    Transfer(TransferTarget),
    /// Ring an agent and add it to the call.
    AddParty(String),
    /// Remove a party (BYE), or stop it ringing.
    RemoveParty(String),
    /// Play a named prompt to the customer (then the parties again).
    Play(String),
    /// Start, stop, pause or resume the call's recording.
    Recording(super::recording::Action),
    /// An agent consults another agent (a desk phone's consult call carries its dialog, `leg`;
    /// a console's has none and `from` may be left to the call's only agent).
    Consult {
        /// The transferor.
        from: Option<String>,
        /// Who is consulted.
        target: ConsultTarget,
        /// The desk phone's consult dialog.
        leg: Option<super::internal::Handover>,
    },
    /// What becomes of the consult call.
    ConsultDo(ConsultAction),
    /// An internal call rings its party or enters its queue; the caller's dialog (and our
    /// answer) waits to be answered when somebody answers.
    Dial {
        /// Where to.
        to: super::controller::dial::Dial,
        /// The caller's dialog and our SDP answer.
        pending:
            super::internal::Handover<(rsipstack::dialog::invite_dialog::InviteDialog, String)>,
    },
    /// A supervisor's phone dialled the feature code for this call: its dialog (not answered
    /// yet) joins the call in `mode`, or is refused.
    DialIn {
        /// Supervisor id.
        supervisor: String,
        /// How.
        mode: super::controller::supervision::Mode,
        /// The dialog, its media and our answer.
        leg: super::internal::Handover,
    },
    /// A supervisor joins the call in a mode (`change: false`: the phone rings) or, already in
    /// it, switches to that mode.
    Supervise {
        /// Supervisor id.
        supervisor: String,
        /// How.
        mode: super::controller::supervision::Mode,
        /// A mode change for a supervisor in the call.
        change: bool,
    },
}

/// Who a consult call goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsultTarget {
    /// This agent.
    Agent(String),
    /// The agent of this queue idle the longest.
    Queue(String),
}

/// What a console does with a consult call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsultAction {
    /// The target takes the call; the transferor leaves.
    Complete,
    /// Everybody together.
    Threeway,
    /// The transferor talks to the customer or the target, in turn.
    Swap,
    /// The target leaves; the customer is back.
    Cancel,
}

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such call (any more).
    #[error("{0}")]
    UnknownCall(String),
    /// No such party in the call.
    #[error("{0}")]
    NotFound(String),
    /// The command does not fit the call's state now.
    #[error(transparent)]
    Conflict(#[from] Refusal),
    /// The command names something that does not exist (an unknown agent or queue).
    #[error("{1}")]
    Invalid(&'static str, String),
    /// Whoever is named may not do this (a supervisor and a queue not theirs).
    #[error("{1}")]
    Forbidden(&'static str, String),
}

/// A command and where its outcome goes.
pub type CommandMsg = (CallCommand, oneshot::Sender<Result<(), CommandError>>);

/// A party as the REST API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartyView {
    /// `customer`, an agent id, or `ivr:<queue>`.
    pub party: String,
    /// `customer`, `agent`, `external_ivr`.
    pub role: &'static str,
    /// `ringing`, `connected`, `on_hold`.
    pub state: &'static str,
    /// In that state since (unix ms).
    pub since_ms: i64,
}

/// A running call as the REST API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CallSummary {
    /// Call id.
    pub id: CallId,
    /// Browser or SIP.
    pub kind: CustomerKind,
    /// `ivr`, `queued`, `ringing`, `connected`, `on_hold`, `transferring`.
    pub state: String,
    /// Queue, once chosen.
    pub queue: Option<String>,
    /// The first agent in the call.
    pub agent: Option<String>,
    /// Seconds since the call started.
    pub age_secs: u64,
    /// Everybody in the call or ringing to join it.
    pub parties: Vec<PartyView>,
    #[serde(skip)]
    started: Instant,
}

struct Entry {
    summary: CallSummary,
    commands: mpsc::UnboundedSender<CommandMsg>,
    /// A browser call's input, for a widget socket that resumes it.
    customer: Option<mpsc::UnboundedSender<super::customer::CustomerInput>>,
}

/// The live calls of this node.
#[derive(Default)]
pub struct Directory {
    calls: Mutex<BTreeMap<CallId, Entry>>,
}

/// How long a command may take before the API gives up waiting (the call goes on regardless).
const COMMAND_WAIT: Duration = Duration::from_secs(5);

impl Directory {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<CallId, Entry>> {
        // A poisoned map only means a task panicked mid-update; the map itself is intact.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new call, steered through `commands`.
    pub fn register(
        &self,
        id: CallId,
        kind: CustomerKind,
        commands: mpsc::UnboundedSender<CommandMsg>,
    ) {
        let summary = CallSummary {
            id,
            kind,
            state: "ivr".into(),
            queue: None,
            agent: None,
            age_secs: 0,
            parties: Vec::new(),
            started: Instant::now(),
        };
        let entry = Entry {
            summary,
            commands,
            customer: None,
        };
        self.lock().insert(id, entry);
    }

    /// Where a browser call's customer input goes (a resumed socket sends there).
    pub fn set_customer_input(
        &self,
        id: CallId,
        input: mpsc::UnboundedSender<super::customer::CustomerInput>,
    ) {
        if let Some(e) = self.lock().get_mut(&id) {
            e.customer = Some(input);
        }
    }

    /// A running browser call's input; `None` once the call is over (or for other calls).
    pub fn customer_input(
        &self,
        id: CallId,
    ) -> Option<mpsc::UnboundedSender<super::customer::CustomerInput>> {
        self.lock().get(&id).and_then(|e| e.customer.clone())
    }

    /// The call's state, queue and parties changed.
    pub fn update(&self, id: CallId, state: &str, queue: Option<&str>, parties: Vec<PartyView>) {
        if let Some(e) = self.lock().get_mut(&id) {
            let s = &mut e.summary;
            s.state = state.into();
            s.queue = queue.map(str::to_string);
            s.agent = parties
                .iter()
                .find(|p| p.role == "agent" && p.state != "ringing")
                .map(|p| p.party.clone());
            s.parties = parties;
        }
    }

    /// The call is over.
    pub fn unregister(&self, id: CallId) {
        self.lock().remove(&id);
    }

    /// Running calls, oldest first.
    pub fn list(&self) -> Vec<CallSummary> {
        let now = Instant::now();
        self.lock()
            .values()
            .map(|e| with_age(&e.summary, now))
            .collect()
    }

    /// The call `party` is connected in (an agent, a supervisor), if any.
    pub fn call_with_party(&self, party: &str) -> Option<CallId> {
        self.lock().iter().find_map(|(id, e)| {
            let s = &e.summary;
            let here = s
                .parties
                .iter()
                .any(|p| p.party == party && p.state != "ringing");
            here.then_some(*id)
        })
    }

    /// One running call.
    pub fn get(&self, id: CallId) -> Option<CallSummary> {
        let now = Instant::now();
        self.lock().get(&id).map(|e| with_age(&e.summary, now))
    }

    /// Sends `cmd` to call `id` and waits for its outcome.
    pub async fn command(&self, id: CallId, cmd: CallCommand) -> Result<(), CommandError> {
        let gone = || CommandError::UnknownCall(format!("no call {id} (it may have just ended)"));
        let tx = self.lock().get(&id).map(|e| e.commands.clone());
        let tx = tx.ok_or_else(gone)?;
        let (reply, rx) = oneshot::channel();
        tx.send((cmd, reply)).map_err(|_| gone())?;
        match tokio::time::timeout(COMMAND_WAIT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(CommandError::Conflict(Refusal {
                code: "timeout",
                message: "the call did not answer in time".into(),
            })),
        }
    }
}

fn with_age(s: &CallSummary, now: Instant) -> CallSummary {
    let mut s = s.clone();
    s.age_secs = now.saturating_duration_since(s.started).as_secs();
    s
}
