//! Supervisors in a call, sans-IO: one rings to join a connected call in a mode (`monitor`: hears
//! everybody, heard by nobody; `whisper`: heard by the agents only; `barge`: heard by everybody;
//! `takeover`: the agents are released and the supervisor talks to the customer), changes mode
//! (the API, or a key on the phone), and leaves. Who hears whom follows from the modes
//! ([`crate::call::party_routes`]); this module decides who is in the call and in which mode.

use super::parties::{refuse, Refusal};
use super::{CallController, CallOutput, EndReason, Phase};
use std::time::Instant;

/// How a supervisor is in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Hears the customer and the agents; nobody hears the supervisor.
    Monitor,
    /// Hears everybody; only the agents hear the supervisor (coaching).
    Whisper,
    /// Hears everybody and is heard by everybody.
    Barge,
    /// The agents are released; the supervisor and the customer talk.
    Takeover,
}

impl Mode {
    /// From the API's and the config's name.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "monitor" => Some(Mode::Monitor),
            "whisper" => Some(Mode::Whisper),
            "barge" => Some(Mode::Barge),
            "takeover" => Some(Mode::Takeover),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Monitor => "monitor",
            Mode::Whisper => "whisper",
            Mode::Barge => "barge",
            Mode::Takeover => "takeover",
        }
    }

    /// The customer hears this supervisor (and so do the recording's agent channel and recorders).
    pub fn is_heard_by_customer(self) -> bool {
        matches!(self, Mode::Barge | Mode::Takeover)
    }
}

/// A supervisor ringing for, or in, the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Supervisor {
    id: String,
    mode: Mode,
    joined: bool,
}

impl CallController {
    /// The keys a supervisor's phone switches modes with.
    pub fn set_supervisor_keys(&mut self, keys: Vec<(char, Mode)>) {
        self.supervisor_keys = keys;
    }

    /// The supervisors in the call (answered), with their modes, in order of joining.
    pub fn supervisors(&self) -> Vec<(&str, Mode)> {
        self.supervisors
            .iter()
            .filter(|s| s.joined)
            .map(|s| (s.id.as_str(), s.mode))
            .collect()
    }

    /// True when `party` is a supervisor ringing for or in the call.
    pub fn is_supervisor(&self, party: &str) -> bool {
        self.supervisors.iter().any(|s| s.id == party)
    }

    /// A supervisor joins the connected call in `mode`: the phone rings.
    pub fn handle_supervise(&mut self, id: &str, mode: Mode) -> Result<(), Refusal> {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return Err(refuse(
                "not_connected",
                format!(
                    "the call is {}: supervisors join connected calls",
                    self.state().name()
                ),
            ));
        }
        match self.supervisors.iter().find(|s| s.id == id) {
            Some(s) if s.joined => {
                return Err(refuse(
                    "already_in_call",
                    format!("{id} is in the call (change the mode with PUT)"),
                ))
            }
            Some(_) => return Err(refuse("already_ringing", format!("{id} is ringing"))),
            None => {}
        }
        if self.agents.iter().any(|a| a == id) || self.ringing().any(|a| a == id) {
            return Err(refuse("already_in_call", format!("{id} is in the call")));
        }
        self.supervisors.push(Supervisor {
            id: id.into(),
            mode,
            joined: false,
        });
        self.out.push_back(CallOutput::Invite { agent: id.into() });
        Ok(())
    }

    /// A supervisor's own phone dialled in (the feature code): in the call at once, in `mode`.
    pub fn handle_supervisor_dialled_in(&mut self, id: &str, mode: Mode) -> Result<(), Refusal> {
        self.handle_supervise(id, mode)?;
        // No INVITE to send: the supervisor called us.
        self.out
            .retain(|o| !matches!(o, CallOutput::Invite { agent } if agent == id));
        self.supervisor_answered(id);
        Ok(())
    }

    /// A supervisor in the call changes mode. A takeover is final.
    pub fn handle_supervise_mode(&mut self, id: &str, mode: Mode) -> Result<(), Refusal> {
        let Some(s) = self.supervisors.iter_mut().find(|s| s.id == id && s.joined) else {
            return Err(refuse(
                "not_in_call",
                format!("{id} is not supervising this call"),
            ));
        };
        if s.mode == mode {
            return Ok(());
        }
        if s.mode == Mode::Takeover {
            return Err(refuse(
                "taken_over",
                format!("{id} took the call over: it is the supervisor's call now"),
            ));
        }
        s.mode = mode;
        self.out.push_back(CallOutput::SupervisorMode {
            supervisor: id.into(),
            mode,
        });
        if mode == Mode::Takeover {
            self.take_over();
        }
        Ok(())
    }

    /// A supervisor pressed `key` on the phone: a mode key switches; any other is ignored.
    pub fn handle_supervisor_key(&mut self, id: &str, key: char) {
        let mode = self
            .supervisor_keys
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, m)| *m);
        if let Some(m) = mode {
            // A key that does not fit (after a takeover) changes nothing.
            let _ = self.handle_supervise_mode(id, m);
        }
    }

    /// A supervisor's phone answered: it joins, if the call is still connected.
    pub(super) fn supervisor_answered(&mut self, id: &str) -> bool {
        let Some(i) = self.supervisors.iter().position(|s| s.id == id) else {
            return false;
        };
        if self.supervisors[i].joined {
            return true;
        }
        if !matches!(self.phase, Phase::Connected { .. }) {
            self.supervisors.remove(i);
            self.out.push_back(CallOutput::Bye { agent: id.into() });
            return true;
        }
        self.supervisors[i].joined = true;
        let mode = self.supervisors[i].mode;
        self.out.push_back(CallOutput::SupervisorJoined {
            supervisor: id.into(),
            mode,
        });
        if mode == Mode::Takeover {
            self.take_over();
        }
        true
    }

    /// A supervisor's phone refused or failed before answering.
    pub(super) fn supervisor_failed(&mut self, id: &str) -> bool {
        let before = self.supervisors.len();
        self.supervisors.retain(|s| s.id != id || s.joined);
        before != self.supervisors.len()
    }

    /// A supervisor hung up (or its media died, `lost`). One who had taken the call over was its
    /// last party: the call ends (or waits in the queue again) as after an agent.
    pub(super) fn supervisor_gone(&mut self, now: Instant, id: &str, lost: bool) -> bool {
        let Some(i) = self.supervisors.iter().position(|s| s.id == id) else {
            return false;
        };
        let s = self.supervisors.remove(i);
        if !s.joined {
            return true;
        }
        if lost {
            self.out.push_back(CallOutput::Bye { agent: id.into() });
        }
        self.out
            .push_back(CallOutput::SupervisorLeft { supervisor: s.id });
        if s.mode == Mode::Takeover {
            let reason = if lost {
                EndReason::AgentLost
            } else {
                EndReason::AgentHangup
            };
            self.last_agent_left(now, reason);
        }
        true
    }

    /// The API removes a supervisor (BYE, or CANCEL while it rings).
    pub(super) fn remove_supervisor(&mut self, now: Instant, id: &str) -> bool {
        let Some(s) = self.supervisors.iter().find(|s| s.id == id) else {
            return false;
        };
        if !s.joined {
            self.out.push_back(CallOutput::Cancel { agent: id.into() });
            return self.supervisor_failed(id);
        }
        self.out.push_back(CallOutput::Bye { agent: id.into() });
        self.supervisor_gone(now, id, false)
    }

    /// True while a supervisor who took the call over is in it (the call goes on without agents).
    pub(super) fn taken_over(&self) -> bool {
        self.supervisors
            .iter()
            .any(|s| s.joined && s.mode == Mode::Takeover)
    }

    /// The agents are released (BYE, wrap-up); agents ringing to join stop, a consult ends, and
    /// a held customer is back (to talk to the supervisor).
    fn take_over(&mut self) {
        self.cancel_joining();
        self.drop_consult();
        self.set_held(false);
        for agent in self.agents.clone() {
            self.out.push_back(CallOutput::Bye {
                agent: agent.clone(),
            });
            self.leave(&agent);
        }
    }

    /// Every supervisor leaves (the call ends, or the customer waits in the queue again).
    pub(super) fn release_supervisors(&mut self) {
        for s in std::mem::take(&mut self.supervisors) {
            if s.joined {
                self.out.push_back(CallOutput::Bye {
                    agent: s.id.clone(),
                });
                self.out
                    .push_back(CallOutput::SupervisorLeft { supervisor: s.id });
            } else {
                self.out.push_back(CallOutput::Cancel { agent: s.id });
            }
        }
    }
}
