//! Whether a call is recorded, sans-IO: the queue's policy (`never`, `always`, `on_demand`), the
//! API's start / stop / pause / resume, and what the media should do about it. `always` starts
//! when the first agent answers (a recording is of a conversation, not of the menus); the API may
//! start, stop, pause and resume any call whose queue does not say `never`.

use super::controller::parties::Refusal;

/// A queue's recording policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Never recorded (the API may not start it either).
    #[default]
    Never,
    /// Recorded from the first agent's answer.
    Always,
    /// Recorded when the API (or an agent's code) asks.
    OnDemand,
}

impl Policy {
    /// From the config's string (`never`, `always`, `on_demand`).
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "never" => Some(Policy::Never),
            "always" => Some(Policy::Always),
            "on_demand" => Some(Policy::OnDemand),
            _ => None,
        }
    }
}

/// What the API asks of a call's recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start recording.
    Start,
    /// Stop (the file is finished).
    Stop,
    /// Silence from now on (a card number is being read).
    Pause,
    /// Record again.
    Resume,
}

impl Action {
    /// From the API's string.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "start" => Some(Action::Start),
            "stop" => Some(Action::Stop),
            "pause" => Some(Action::Pause),
            "resume" => Some(Action::Resume),
            _ => None,
        }
    }
}

/// What the media should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Do {
    /// Start a new file.
    Start,
    /// Finish the file.
    Stop,
    /// Pause or resume.
    Pause(bool),
}

/// One call's recording state.
#[derive(Debug, Default)]
pub struct RecordingState {
    policy: Policy,
    on: bool,
    paused: bool,
    /// Files started so far (the next one's number).
    pub files: u32,
    /// The agents' pause code, and the keys pressed towards it.
    code: Option<String>,
    keys: String,
}

fn refuse(code: &'static str, message: &str) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

impl RecordingState {
    /// The call entered a queue with `policy` (a transfer to another queue changes it).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The keys an agent presses to pause and resume.
    pub fn set_pause_code(&mut self, code: Option<String>) {
        self.code = code;
    }

    /// An agent pressed `key`: the pause code pauses a recording, and resumes a paused one.
    pub fn handle_agent_key(&mut self, key: char) -> Option<Do> {
        let code = self.code.as_deref()?;
        self.keys.push(key);
        if self.keys.len() > code.len() {
            self.keys.remove(0);
        }
        if self.keys != code || !self.on {
            return None;
        }
        self.keys.clear();
        self.paused = !self.paused;
        Some(Do::Pause(self.paused))
    }

    /// True while a file is being written.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// An agent answered: `always` starts recording (once).
    pub fn handle_agent_joined(&mut self) -> Option<Do> {
        (self.policy == Policy::Always && !self.on && self.files == 0).then(|| self.start())
    }

    fn start(&mut self) -> Do {
        self.on = true;
        self.paused = false;
        self.files += 1;
        Do::Start
    }

    /// The API asks `action`; `connected` says whether the call has an agent.
    pub fn handle_action(&mut self, action: Action, connected: bool) -> Result<Do, Refusal> {
        if self.policy == Policy::Never {
            return Err(refuse(
                "recording_not_allowed",
                "this call's queue is never recorded (record = \"never\")",
            ));
        }
        match action {
            Action::Start if self.on => {
                Err(refuse("already_recording", "the call is being recorded"))
            }
            Action::Start if !connected => Err(refuse(
                "not_connected",
                "a recording starts once an agent is in the call",
            )),
            Action::Start => Ok(self.start()),
            _ if !self.on => Err(refuse("not_recording", "the call is not being recorded")),
            Action::Stop => {
                self.on = false;
                Ok(Do::Stop)
            }
            Action::Pause if self.paused => {
                Err(refuse("already_paused", "the recording is paused"))
            }
            Action::Pause => {
                self.paused = true;
                Ok(Do::Pause(true))
            }
            Action::Resume if !self.paused => {
                Err(refuse("not_paused", "the recording is not paused"))
            }
            Action::Resume => {
                self.paused = false;
                Ok(Do::Pause(false))
            }
        }
    }

    /// The call ends: a file being written is finished.
    pub fn handle_end(&mut self) -> Option<Do> {
        std::mem::take(&mut self.on).then_some(Do::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_starts_at_the_first_answer_once() {
        let mut r = RecordingState::default();
        r.set_policy(Policy::Always);
        assert_eq!(r.handle_agent_joined(), Some(Do::Start));
        assert_eq!(r.handle_agent_joined(), None, "a second agent: same file");
        assert_eq!(r.handle_end(), Some(Do::Stop));
        assert_eq!(r.handle_end(), None);
    }

    #[test]
    fn the_api_steers_an_on_demand_call_and_gets_reasons() {
        let mut r = RecordingState::default();
        r.set_policy(Policy::OnDemand);
        assert_eq!(r.handle_agent_joined(), None);
        let code = |x: Result<Do, Refusal>| x.unwrap_err().code;
        assert_eq!(code(r.handle_action(Action::Pause, true)), "not_recording");
        assert_eq!(code(r.handle_action(Action::Start, false)), "not_connected");
        assert_eq!(r.handle_action(Action::Start, true), Ok(Do::Start));
        assert_eq!(
            code(r.handle_action(Action::Start, true)),
            "already_recording"
        );
        assert_eq!(code(r.handle_action(Action::Resume, true)), "not_paused");
        assert_eq!(r.handle_action(Action::Pause, true), Ok(Do::Pause(true)));
        assert_eq!(code(r.handle_action(Action::Pause, true)), "already_paused");
        assert_eq!(r.handle_action(Action::Resume, true), Ok(Do::Pause(false)));
        assert_eq!(r.handle_action(Action::Stop, true), Ok(Do::Stop));
        assert_eq!(code(r.handle_action(Action::Stop, true)), "not_recording");
        assert_eq!(r.handle_action(Action::Start, true), Ok(Do::Start));
        assert_eq!(r.files, 2, "a second file");
    }

    #[test]
    fn the_agents_code_pauses_and_resumes() {
        let mut r = RecordingState::default();
        r.set_policy(Policy::Always);
        r.set_pause_code(Some("*1".into()));
        assert_eq!(r.handle_agent_key('*'), None);
        assert_eq!(r.handle_agent_key('1'), None, "nothing recorded yet");
        r.handle_agent_joined();
        for k in ['5', '*'] {
            assert_eq!(r.handle_agent_key(k), None);
        }
        assert_eq!(r.handle_agent_key('1'), Some(Do::Pause(true)));
        assert_eq!(r.handle_agent_key('*'), None);
        assert_eq!(r.handle_agent_key('1'), Some(Do::Pause(false)));
        let e = r.handle_action(Action::Resume, true).unwrap_err();
        assert_eq!(e.code, "not_paused", "the code and the API share one state");
    }

    #[test]
    fn never_means_never() {
        let mut r = RecordingState::default();
        assert_eq!(r.handle_agent_joined(), None);
        let e = r.handle_action(Action::Start, true).unwrap_err();
        assert_eq!(e.code, "recording_not_allowed");
        assert_eq!(Policy::parse("on_demand"), Some(Policy::OnDemand));
        assert_eq!(Policy::parse("sometimes"), None);
        assert_eq!(Action::parse("resume"), Some(Action::Resume));
        assert_eq!(Action::parse("rewind"), None);
    }
}
