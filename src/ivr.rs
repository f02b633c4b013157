//! The IVR menu runner, sans-IO: plays a menu's prompt once media flows, collects a digit, retries on
//! timeout or invalid input, and ends with an action for the call controller (enter a queue, hang up).
//! Prompts are named, not played here: the controller maps them to media sources.
//!
//! Drive it with [`IvrRunner::handle_media_flowing`], [`IvrRunner::handle_digit`],
//! [`IvrRunner::handle_prompt_done`] and [`IvrRunner::handle_timeout`]; drain
//! [`IvrRunner::poll_output`] until `None` after each.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a digit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    /// Enter this queue, with an optional skill for skills-based routing.
    Queue {
        /// Queue name.
        queue: String,
        /// Skill hint.
        skill: Option<String>,
    },
    /// Go to another menu.
    Submenu(String),
    /// Play this menu again.
    Repeat,
    /// End the call.
    HangUp,
}

/// One menu.
#[derive(Debug, Clone)]
pub struct Menu {
    /// Prompt played when the menu starts.
    pub prompt: String,
    /// Digit → action.
    pub options: HashMap<char, MenuAction>,
    /// How long to wait for a digit after the prompt ends.
    pub input_timeout: Duration,
    /// How many times the menu is replayed after a timeout or an invalid digit.
    pub retries: u32,
    /// Prompt for an invalid digit (before the menu is replayed).
    pub invalid_prompt: Option<String>,
    /// What happens when the retries are used up.
    pub on_exhausted: MenuAction,
    /// Button labels for a visual menu (digit, label), in digit order; empty: no buttons.
    pub labels: Vec<(char, String)>,
}

/// What the call controller should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrOutput {
    /// Play this prompt to the customer (stop whatever plays).
    Play(String),
    /// Another menu started (its labels are [`IvrRunner::labels`]).
    Entered,
    /// The IVR is done: carry out this action (queue or hang up).
    Done(MenuAction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for media to flow before the first prompt (never clip a prompt).
    WaitingForMedia,
    /// A prompt plays; digits are accepted (barge-in).
    Prompting,
    /// Prompt done; waiting for a digit until the deadline.
    Collecting(Instant),
    /// Finished.
    Done,
}

/// Runs the menus for one call.
#[derive(Debug)]
pub struct IvrRunner {
    menus: HashMap<String, Menu>,
    current: String,
    phase: Phase,
    attempts: u32,
    /// The path taken (menu names and digits), for the call record.
    pub path: Vec<String>,
    out: Vec<IvrOutput>,
}

impl IvrRunner {
    /// Starts at menu `start` (which must exist in `menus`).
    pub fn new(menus: HashMap<String, Menu>, start: &str) -> Self {
        IvrRunner {
            menus,
            current: start.to_string(),
            phase: Phase::WaitingForMedia,
            attempts: 0,
            path: vec![start.to_string()],
            out: Vec::new(),
        }
    }

    /// Media flows on the customer's leg: the first prompt starts now, not before.
    pub fn handle_media_flowing(&mut self) {
        if self.phase == Phase::WaitingForMedia {
            self.start_menu();
        }
    }

    /// The prompt that was playing ended.
    pub fn handle_prompt_done(&mut self, now: Instant) {
        if self.phase == Phase::Prompting {
            let timeout = self
                .menu()
                .map_or(Duration::from_secs(5), |m| m.input_timeout);
            self.phase = Phase::Collecting(now + timeout);
        }
    }

    /// A digit from the customer (accepted while the prompt plays, too).
    pub fn handle_digit(&mut self, digit: char) {
        if !matches!(self.phase, Phase::Prompting | Phase::Collecting(_)) {
            return;
        }
        self.path.push(digit.to_string());
        match self.menu().and_then(|m| m.options.get(&digit)).cloned() {
            Some(action) => self.act(action),
            None => self.retry(true),
        }
    }

    /// When the input timeout fires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Collecting(at) => Some(at),
            _ => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Collecting(at) = self.phase {
            if now >= at {
                self.retry(false);
            }
        }
    }

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<IvrOutput> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.remove(0))
        }
    }

    /// The current menu's button labels (empty when it has none, or once the IVR is done).
    pub fn labels(&self) -> &[(char, String)] {
        match (self.phase, self.menu()) {
            (Phase::Done, _) | (_, None) => &[],
            (_, Some(m)) => &m.labels,
        }
    }

    fn menu(&self) -> Option<&Menu> {
        self.menus.get(&self.current)
    }

    fn start_menu(&mut self) {
        match self.menu().map(|m| m.prompt.clone()) {
            Some(prompt) => {
                self.phase = Phase::Prompting;
                self.out.push(IvrOutput::Play(prompt));
            }
            None => self.finish(MenuAction::HangUp),
        }
    }

    fn act(&mut self, action: MenuAction) {
        match action {
            MenuAction::Submenu(name) => {
                self.current = name.clone();
                self.path.push(name);
                self.attempts = 0;
                self.out.push(IvrOutput::Entered);
                self.start_menu();
            }
            MenuAction::Repeat => self.start_menu(),
            done => self.finish(done),
        }
    }

    /// A timeout or an invalid digit: replay the menu, or give up after the retries.
    fn retry(&mut self, invalid: bool) {
        let Some(menu) = self.menu().cloned() else {
            return self.finish(MenuAction::HangUp);
        };
        self.attempts += 1;
        if self.attempts > menu.retries {
            return self.finish(menu.on_exhausted);
        }
        if invalid {
            if let Some(p) = menu.invalid_prompt {
                self.out.push(IvrOutput::Play(p));
            }
        }
        self.start_menu();
    }

    fn finish(&mut self, action: MenuAction) {
        self.phase = Phase::Done;
        self.out.push(IvrOutput::Done(action));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn menus() -> HashMap<String, Menu> {
        let main = Menu {
            prompt: "welcome".into(),
            options: HashMap::from([
                (
                    '1',
                    MenuAction::Queue {
                        queue: "sales".into(),
                        skill: None,
                    },
                ),
                (
                    '2',
                    MenuAction::Queue {
                        queue: "support".into(),
                        skill: Some("english".into()),
                    },
                ),
                ('3', MenuAction::Submenu("billing".into())),
                ('9', MenuAction::Repeat),
                ('0', MenuAction::HangUp),
            ]),
            input_timeout: 5 * S,
            retries: 2,
            invalid_prompt: Some("invalid".into()),
            on_exhausted: MenuAction::HangUp,
            labels: vec![('1', "Sales".into()), ('2', "Support".into())],
        };
        let billing = Menu {
            prompt: "billing".into(),
            options: HashMap::from([(
                '1',
                MenuAction::Queue {
                    queue: "billing".into(),
                    skill: None,
                },
            )]),
            input_timeout: 5 * S,
            retries: 0,
            invalid_prompt: None,
            on_exhausted: MenuAction::Queue {
                queue: "support".into(),
                skill: None,
            },
            labels: Vec::new(),
        };
        HashMap::from([("main".into(), main), ("billing".into(), billing)])
    }

    fn drain(ivr: &mut IvrRunner) -> Vec<IvrOutput> {
        std::iter::from_fn(|| ivr.poll_output()).collect()
    }

    #[test]
    fn no_prompt_before_media_flows_then_digit_two_queues_for_support() {
        let mut ivr = IvrRunner::new(menus(), "main");
        ivr.handle_digit('2');
        assert_eq!(
            drain(&mut ivr),
            vec![],
            "nothing before media flows, digits ignored"
        );
        ivr.handle_media_flowing();
        assert_eq!(drain(&mut ivr), vec![IvrOutput::Play("welcome".into())]);
        ivr.handle_digit('2'); // barge-in during the prompt
        assert_eq!(
            drain(&mut ivr),
            vec![IvrOutput::Done(MenuAction::Queue {
                queue: "support".into(),
                skill: Some("english".into())
            })]
        );
        assert_eq!(ivr.path, ["main", "2"]);
    }

    #[test]
    fn timeouts_and_invalid_digits_retry_then_give_up() {
        let t0 = Instant::now();
        let mut ivr = IvrRunner::new(menus(), "main");
        ivr.handle_media_flowing();
        ivr.handle_prompt_done(t0);
        assert_eq!(ivr.poll_timeout(), Some(t0 + 5 * S));
        ivr.handle_timeout(t0 + 5 * S); // 1st retry
        ivr.handle_digit('7'); // invalid: 2nd retry
        ivr.handle_prompt_done(t0 + 10 * S);
        ivr.handle_timeout(t0 + 15 * S); // retries used up
        assert_eq!(
            drain(&mut ivr),
            vec![
                IvrOutput::Play("welcome".into()),
                IvrOutput::Play("welcome".into()),
                IvrOutput::Play("invalid".into()),
                IvrOutput::Play("welcome".into()),
                IvrOutput::Done(MenuAction::HangUp),
            ]
        );
        assert_eq!(ivr.poll_timeout(), None);
    }

    #[test]
    fn submenu_repeat_and_exhausted_fallback() {
        let t0 = Instant::now();
        let mut ivr = IvrRunner::new(menus(), "main");
        let buttons = [('1', "Sales".to_string()), ('2', "Support".to_string())];
        assert_eq!(ivr.labels(), buttons, "the start menu's buttons");
        ivr.handle_media_flowing();
        ivr.handle_digit('9');
        ivr.handle_digit('3');
        assert_eq!(
            drain(&mut ivr),
            vec![
                IvrOutput::Play("welcome".into()),
                IvrOutput::Play("welcome".into()),
                IvrOutput::Entered,
                IvrOutput::Play("billing".into())
            ]
        );
        assert!(ivr.labels().is_empty(), "billing has no buttons");
        ivr.handle_prompt_done(t0);
        ivr.handle_timeout(t0 + 5 * S);
        assert_eq!(
            drain(&mut ivr),
            vec![IvrOutput::Done(MenuAction::Queue {
                queue: "support".into(),
                skill: None
            })]
        );
        assert_eq!(ivr.path, ["main", "9", "3", "billing"]);
    }
}
