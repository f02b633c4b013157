//! What a call tells whoever follows it (the widget's socket, the callback service, tests): state
//! changes and parties joining and leaving. The call holds only senders of [`CallEvent`]; each
//! consumer turns them into its own messages.

use super::controller::{CallState, EndReason};
use crate::widget::protocol::{MenuOption, ServerMessage};
use serde::Serialize;

/// A party's role in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The caller (browser, trunk or callback).
    Customer,
    /// An agent of the gateway.
    Agent,
    /// A queue's external IVR.
    ExternalIvr,
    /// A supervisor (monitor, whisper, barge, takeover).
    Supervisor,
}

impl Role {
    /// The stable string for records and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::ExternalIvr => "external_ivr",
            Role::Supervisor => "supervisor",
        }
    }
}

/// Something that happened to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// The call's state changed (in the IVR: with the current menu's button labels).
    State(CallState, Vec<(char, String)>),
    /// A party joined (answered).
    PartyJoined {
        /// Agent id (or `ivr:<queue>`).
        party: String,
        /// Its role.
        role: Role,
    },
    /// A party left.
    PartyLeft {
        /// Agent id (or `ivr:<queue>`).
        party: String,
    },
    /// A party pressed a key (RFC 4733 or SIP INFO), once per press.
    Digit {
        /// `customer`, an agent id, or `ivr:<queue>`.
        party: String,
        /// The key.
        digit: char,
    },
    /// At the end: what the gateway received from a party's leg.
    Quality {
        /// `customer`, an agent id, or `ivr:<queue>`.
        party: String,
        /// Packets expected and lost, jitter.
        quality: crate::records::cdr::Quality,
    },
}

impl CallEvent {
    /// The widget's message for this event, if the widget shows it (parties stay private).
    pub fn to_widget(&self) -> Option<ServerMessage> {
        let CallEvent::State(s, labels) = self else {
            return None;
        };
        let options = (matches!(s, CallState::Ivr) && !labels.is_empty()).then(|| {
            labels
                .iter()
                .map(|(d, l)| MenuOption {
                    digit: d.to_string(),
                    label: l.clone(),
                })
                .collect()
        });
        let (position, estimated_wait_secs, reason) = match s {
            CallState::Queued {
                position,
                estimated_wait_secs,
            } => (*position, *estimated_wait_secs, None),
            CallState::Ended(r) => (None, None, Some(EndReason::as_str(*r).to_string())),
            _ => (None, None, None),
        };
        Some(ServerMessage::State {
            state: s.name().into(),
            position,
            estimated_wait_secs,
            reason,
            options,
        })
    }
}
