//! The customer's side of a call, whatever the customer came by: its leg (a browser, or a SIP
//! dialog from a trunk or a callback), its place in the call's media, and what it sends the call
//! (candidates, digits, hang-up) in one shape for every kind.

use super::events::CallEvent;
use crate::media::engine::PortLease;
use crate::media::routes::LegId;
use crate::media::sdp::{Format, Negotiated};
use rsipstack::dialog::invite_dialog::InviteDialog;
use tokio::sync::{mpsc, oneshot};

/// The customer's media leg in every call.
pub const CUSTOMER: LegId = LegId(0);

/// What the customer's side sends the call (the WebSocket reader, or the customer's SIP dialog).
#[derive(Debug)]
pub enum CustomerInput {
    /// A trickled ICE candidate.
    Candidate(String),
    /// Keypad digits sent as a message (fallback to RFC 4733).
    Digits(String),
    /// A digit the customer's phone sent out of band (SIP INFO).
    InfoDigit(char),
    /// The customer hung up (`hangup` message, or BYE).
    Hangup,
    /// Widget session `session` now holds the call (its first socket, or one that resumed it):
    /// the call's events go to `events`, starting with its current state.
    Attach {
        /// The socket's session number.
        session: u64,
        /// Where its events go.
        events: mpsc::UnboundedSender<CallEvent>,
    },
    /// Widget session `session`'s socket closed or went silent.
    Detach {
        /// The socket's session number.
        session: u64,
    },
    /// A new offer from the browser (ICE restart); the answer, or why not, goes to `reply`.
    Reoffer {
        /// The offer.
        sdp: String,
        /// The answer SDP, or the refusal.
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// What the browser says it received (`stats`).
    Stats(crate::widget::stats::WidgetStats),
}

/// The customer's leg of a new call.
pub enum Customer {
    /// A browser: its answered leg and port.
    Browser(Box<crate::media::browser_leg::BrowserLeg>, PortLease),
    /// A SIP dialog (trunk caller or callback): the dialog, what was negotiated, the port.
    Sip(InviteDialog, Negotiated, PortLease),
}

/// The SIP side's codecs we offer agents and trunks, in preference order.
pub(super) fn offered_formats() -> Vec<Format> {
    vec![Format::pcmu(), Format::pcma()]
}
