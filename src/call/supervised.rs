//! The call task's side of supervision: what the controller decided about a supervisor
//! ([`super::controller::supervision`]) becomes a record entry with its modes, a webhook per join,
//! mode change and leave, the supervisor's own join prompt, and the recording's channels (a
//! barging or take-over supervisor is on the agents' channel; a monitor or a whisper never is).
//! The customer's widget hears of none of it.

use super::controller::supervision::Mode;
use super::events::Role;
use super::task::{unix_ms, CallTask};
use crate::media::engine::MediaCommand;
use crate::media::source::Source;
use tracing::{info, warn};

impl CallTask {
    pub(super) async fn supervisor_joined(&mut self, supervisor: String, mode: Mode) {
        info!(call = self.id, %supervisor, mode = mode.as_str(), "supervisor joined");
        let now = unix_ms();
        self.since.insert(supervisor.clone(), now);
        self.record
            .party_joined(&supervisor, Role::Supervisor.as_str(), now);
        self.record.party_mode(&supervisor, mode.as_str(), now);
        self.mgr.records.write(&self.record, "call.party_joined");
        let (Some(name), Some(leg)) = (
            self.mgr.cfg.supervision.join_prompt.clone(),
            self.leg_of(&supervisor),
        ) else {
            return;
        };
        match self.mgr.prompts.get(&name) {
            Some(p) => {
                let cmd = MediaCommand::Play(leg, Source::Prompt(p));
                let _ = self.media.commands.send(cmd).await;
            }
            None => warn!(prompt = %name, "supervision.join_prompt missing; skipped"),
        }
    }

    pub(super) fn supervisor_mode(&mut self, supervisor: String, mode: Mode) {
        info!(call = self.id, %supervisor, mode = mode.as_str(), "supervisor mode");
        self.record
            .party_mode(&supervisor, mode.as_str(), unix_ms());
        self.mgr.records.write(&self.record, "call.party_mode");
    }

    pub(super) fn supervisor_left(&mut self, supervisor: String) {
        info!(call = self.id, %supervisor, "supervisor left");
        self.since.remove(&supervisor);
        if self.record.party_left(&supervisor, unix_ms()) && !self.ctl.is_ended() {
            self.mgr.records.write(&self.record, "call.party_left");
        }
        self.drop_media(&supervisor);
    }

    /// The legs on the recording's agents' channel: the agents, and supervisors the customer hears.
    pub(super) fn right_channel_legs(
        &self,
    ) -> std::collections::BTreeSet<crate::media::routes::LegId> {
        let supervisors = self
            .ctl
            .supervisors()
            .into_iter()
            .filter(|(_, m)| m.is_heard_by_customer())
            .map(|(s, _)| s);
        self.ctl
            .agents()
            .iter()
            .map(String::as_str)
            .chain(supervisors)
            .filter_map(|p| self.leg_of(p))
            .collect()
    }
}
