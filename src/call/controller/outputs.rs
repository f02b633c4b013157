//! What a call's controller tells the shell: its outputs, the state the widget and the API show,
//! what the customer hears, and why a call ended.

use crate::acd::OfferResult;

/// Why a call ended (the widget's `reason`, stable strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The customer hung up (widget hangup, socket closed, BYE/CANCEL from the customer's side).
    CustomerHangup,
    /// The agent hung up.
    AgentHangup,
    /// No agent is logged in for the queue and the queue says hang up.
    NoAgents,
    /// The customer waited longer than the queue allows.
    MaxWait,
    /// The IVR ended the call (hang-up option, retries used up).
    IvrHangup,
    /// The customer's media stopped (ICE consent lost, RTP timeout).
    ConnectionLost,
    /// The agent's media stopped.
    AgentLost,
    /// The gateway is shutting down.
    Shutdown,
    /// Hung up through the REST API.
    ApiHangup,
    /// Something failed inside the gateway.
    Error,
    /// The party an internal call rang did not answer (busy, no answer, offline).
    Unanswered,
}

impl EndReason {
    /// The stable string sent to the widget and written to records.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CustomerHangup => "customer_hangup",
            EndReason::AgentHangup => "agent_hangup",
            EndReason::NoAgents => "no_agents",
            EndReason::MaxWait => "max_wait",
            EndReason::IvrHangup => "ivr_hangup",
            EndReason::ConnectionLost => "connection_lost",
            EndReason::AgentLost => "agent_lost",
            EndReason::Shutdown => "shutdown",
            EndReason::ApiHangup => "api_hangup",
            EndReason::Error => "error",
            EndReason::Unanswered => "unanswered",
        }
    }
}

/// The call's state as the widget and the REST API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// In the IVR menus.
    Ivr,
    /// Waiting in a queue (1 = next), with an estimated wait.
    Queued {
        /// Position, when the ACD has told us.
        position: Option<usize>,
        /// Estimated wait in seconds.
        estimated_wait_secs: Option<u64>,
    },
    /// An agent's phone rings.
    Ringing,
    /// Talking to an agent.
    Connected,
    /// The agent (or the API) holds the call (the customer hears music).
    OnHold,
    /// The call is being transferred (to an agent who rings, or to a queue).
    Transferring,
    /// Over.
    Ended(EndReason),
}

impl CallState {
    /// The widget's `state` string.
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Ivr => "ivr",
            CallState::Queued { .. } => "queued",
            CallState::Ringing => "ringing",
            CallState::Connected => "connected",
            CallState::OnHold => "on_hold",
            CallState::Transferring => "transferring",
            CallState::Ended(_) => "ended",
        }
    }
}

/// What the customer hears from the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    /// A named prompt, once (then [`CallController::handle_prompt_done`]).
    Prompt(String),
    /// "You are caller number N", once.
    Position(usize),
    /// The queue's music, looped.
    Music(String),
    /// The parties of the call (the agents, an external IVR): the customer hears them again.
    Agent,
}

/// What the shell should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutput {
    /// Change what the customer hears.
    Play(Audio),
    /// Tell the widget (and the REST view) the new state.
    State(CallState),
    /// Enter the ACD queue.
    Enqueue {
        /// Queue name.
        queue: String,
        /// Skill hint.
        skill: Option<String>,
    },
    /// Leave the ACD queue (abandoned before an agent answered).
    Abandon,
    /// Report how an offer ended to the ACD.
    OfferResult {
        /// Agent id.
        agent: String,
        /// Answered or refused.
        result: OfferResult,
    },
    /// The agent's call is over: the ACD starts its wrap-up.
    AgentReleased {
        /// Agent id.
        agent: String,
    },
    /// INVITE this agent (with the context headers).
    Invite {
        /// Agent id (or transfer target).
        agent: String,
    },
    /// CANCEL the INVITE to this agent.
    Cancel {
        /// Agent id.
        agent: String,
    },
    /// BYE this agent's dialog.
    Bye {
        /// Agent id.
        agent: String,
    },
    /// An agent joined the call (answered and now hears and is heard).
    PartyJoined {
        /// Agent id.
        agent: String,
    },
    /// An agent left the call (hung up, was removed, or was transferred away).
    PartyLeft {
        /// Agent id.
        agent: String,
    },
    /// NOTIFY the transferring agent of the transfer's progress (sipfrag status line).
    TransferProgress {
        /// The agent who sent REFER.
        agent: String,
        /// SIP status of the INVITE to the target.
        status: u16,
    },
    /// A supervisor joined the call in `mode`.
    SupervisorJoined {
        /// Supervisor id.
        supervisor: String,
        /// How.
        mode: super::supervision::Mode,
    },
    /// A supervisor in the call changed mode.
    SupervisorMode {
        /// Supervisor id.
        supervisor: String,
        /// The new mode.
        mode: super::supervision::Mode,
    },
    /// Answer the pending dialog of `party` (a desk phone's consult call: its target answered).
    AcceptLeg {
        /// The consult leg's party name.
        party: String,
    },
    /// Refuse the pending dialog of `party` with `status`.
    RejectLeg {
        /// The consult leg's party name.
        party: String,
        /// The final status.
        status: u16,
    },
    /// A supervisor left the call.
    SupervisorLeft {
        /// Supervisor id.
        supervisor: String,
    },
    /// Hang up the customer's leg and stop; nothing more will come.
    End(EndReason),
}
