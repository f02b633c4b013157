//! What the customer's side sends a running call: candidates, digits, hang-up, and for a browser
//! the widget's socket coming and going. A socket that drops does not end the call: the media goes
//! on, the controller waits `widget.resume_grace_secs` for a new socket to resume it (with its
//! resume token), and the new socket gets the call's current state. A new offer (an ICE restart
//! after a network change) is answered on the same leg; the browser's quality report is kept for
//! the record.

use super::customer::{CustomerInput, CUSTOMER};
use super::task::CallTask;
use crate::media::engine::MediaCommand;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// How long an ICE restart's answer may take.
const REOFFER_WAIT: Duration = Duration::from_secs(5);

impl CallTask {
    /// One message from the customer's side.
    pub(super) async fn on_customer(&mut self, m: CustomerInput) {
        let now = Instant::now();
        let cmd = match m {
            CustomerInput::Candidate(c) => MediaCommand::AddCandidate(CUSTOMER, c),
            CustomerInput::Digits(ds) => {
                for d in ds.chars() {
                    self.ctl.handle_digit(now, d);
                }
                return;
            }
            CustomerInput::InfoDigit(d) => {
                MediaCommand::InfoDigit(CUSTOMER, d, Duration::from_millis(160))
            }
            CustomerInput::Hangup => return self.ctl.handle_customer_gone(false),
            CustomerInput::Attach { session, events } => {
                return self.attach(session, events);
            }
            CustomerInput::Detach { session } => {
                let grace = Duration::from_secs(self.mgr.cfg.widget.resume_grace_secs);
                self.ctl.handle_customer_detached(now, session, grace);
                if self.ctl.is_detached() {
                    info!(
                        call = self.id,
                        session,
                        ?grace,
                        "widget socket lost; the call waits for it"
                    );
                }
                return;
            }
            CustomerInput::Reoffer { sdp, reply } => return self.reoffer(sdp, reply).await,
            CustomerInput::Stats(stats) => {
                debug!(call = self.id, ?stats, "browser's receive quality");
                self.reported = Some(stats);
                return;
            }
        };
        let _ = self.media.commands.send(cmd).await;
    }

    /// Session `session` holds the call from now on: it gets the call's state (and menu, and
    /// position) at once, then every event; a socket it replaces gets nothing more.
    fn attach(
        &mut self,
        session: u64,
        events: tokio::sync::mpsc::UnboundedSender<super::events::CallEvent>,
    ) {
        let resumed = self.ctl.is_detached() || self.widget.is_some();
        self.ctl.handle_customer_attached(session);
        let _ = events.send(self.state_event(&self.ctl.state()));
        self.widget = Some(events);
        if resumed {
            info!(call = self.id, session, "widget socket resumed the call");
        }
    }

    /// Passes a new offer to the customer's browser leg; the answer goes back to the widget.
    async fn reoffer(
        &mut self,
        sdp: String,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .media
            .commands
            .send(MediaCommand::Reoffer(CUSTOMER, sdp, tx))
            .await;
        if sent.is_err() {
            let _ = reply.send(Err("the call's media has ended".into()));
            return;
        }
        // Answered off the call's loop, so a slow media task never holds the call up.
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(REOFFER_WAIT, rx).await {
                Ok(Ok(a)) => a,
                _ => Err("the call's media did not answer".into()),
            };
            let _ = reply.send(answer);
        });
        info!(call = self.id, "browser renegotiates (ICE restart)");
    }
}
