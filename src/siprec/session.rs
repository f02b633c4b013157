//! One recording session toward an external recorder (RFC 7866), sans-IO: which recorder of the
//! queue's failover list to INVITE, when to give up on one (a refusal, an answer we cannot use, no
//! answer in time, a recorder that ends the session) and try the next, when the media is forked,
//! and when the recorder must hear of a change (pause, resume, agents changing) by re-INVITE, one
//! at a time. The recording's failure never touches the call: the worst outcome is [`Output::Failed`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the shell should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// INVITE this recorder, with the session as it is now (paused or not, the metadata).
    Invite(String),
    /// Re-INVITE the recorder with the session as it is now.
    Reinvite,
    /// Start (`true`) or stop sending the call's media to the recorder.
    Fork(bool),
    /// End the current recorder's dialog (CANCEL while it rings, BYE once answered).
    HangUp,
    /// No recorder took the recording; why, recorder by recorder.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Inviting { deadline: Instant },
    Up,
    Failed,
    Stopped,
}

/// The session; see the module docs.
#[derive(Debug)]
pub struct SiprecSession {
    recorders: Vec<String>,
    /// Index of the recorder tried last (`next - 1`) and of the next one to try.
    next: usize,
    state: State,
    paused: bool,
    /// The recorder's view is behind ours: a re-INVITE is due once the current one is done.
    dirty: bool,
    reinvite_out: bool,
    answer_within: Duration,
    failures: Vec<String>,
    /// The recorder that took the recording last.
    took: Option<String>,
    out: VecDeque<Output>,
}

impl SiprecSession {
    /// A session over `recorders` (tried in order), each given `answer_within` to answer.
    pub fn new(recorders: Vec<String>, answer_within: Duration) -> Self {
        SiprecSession {
            recorders,
            next: 0,
            state: State::Idle,
            paused: false,
            dirty: false,
            reinvite_out: false,
            answer_within,
            failures: Vec::new(),
            took: None,
            out: VecDeque::new(),
        }
    }

    /// Starts the session (paused or not).
    pub fn start(&mut self, now: Instant, paused: bool) {
        if self.state == State::Idle {
            self.paused = paused;
            self.try_next(now);
        }
    }

    fn current(&self) -> &str {
        self.next
            .checked_sub(1)
            .and_then(|i| self.recorders.get(i))
            .map_or("", String::as_str)
    }

    fn fail_current(&mut self, why: &str) {
        let line = format!("{}: {why}", self.current());
        self.failures.push(line);
    }

    fn try_next(&mut self, now: Instant) {
        self.dirty = false;
        self.reinvite_out = false;
        match self.recorders.get(self.next) {
            Some(r) => {
                self.state = State::Inviting {
                    deadline: now + self.answer_within,
                };
                self.out.push_back(Output::Invite(r.clone()));
                self.next += 1;
            }
            None => {
                self.state = State::Failed;
                let why = if self.failures.is_empty() {
                    "no recorder is configured".to_string()
                } else {
                    format!(
                        "no recorder took the recording ({})",
                        self.failures.join("; ")
                    )
                };
                self.out.push_back(Output::Failed(why));
            }
        }
    }

    /// The recorder answered 2xx with an answer we can use: the media goes to it.
    pub fn handle_answered(&mut self) {
        if !matches!(self.state, State::Inviting { .. }) {
            return;
        }
        self.state = State::Up;
        self.took = Some(self.current().to_string());
        self.out.push_back(Output::Fork(true));
        if std::mem::take(&mut self.dirty) {
            self.reinvite_out = true;
            self.out.push_back(Output::Reinvite);
        }
    }

    /// The recorder answered 2xx but its answer is of no use (`why`): it is left, the next tried.
    pub fn handle_unusable(&mut self, now: Instant, why: &str) {
        if matches!(self.state, State::Inviting { .. }) {
            self.fail_current(why);
            self.out.push_back(Output::HangUp);
            self.try_next(now);
        }
    }

    /// The recorder refused (a final error status, 408 for no response at all): the next is tried.
    pub fn handle_refused(&mut self, now: Instant, status: u16) {
        if matches!(self.state, State::Inviting { .. }) {
            self.fail_current(&status.to_string());
            self.try_next(now);
        }
    }

    /// The recorder ended the session (BYE, or its dialog died): the next recorder takes over.
    pub fn handle_ended(&mut self, now: Instant) {
        if self.state == State::Up {
            self.fail_current("ended the session");
            self.out.push_back(Output::Fork(false));
            self.try_next(now);
        }
    }

    /// A re-INVITE got its final `status`. 408 and 481 mean the dialog is gone (RFC 3261 §14.1,
    /// §12.2.1.2); any other failure leaves the session as it was (§14.1).
    pub fn handle_reinvite_done(&mut self, now: Instant, status: u16) {
        if self.state != State::Up {
            return;
        }
        self.reinvite_out = false;
        if matches!(status, 408 | 481) {
            self.fail_current(&format!("{status} to a re-INVITE"));
            self.out.push_back(Output::Fork(false));
            self.out.push_back(Output::HangUp);
            self.try_next(now);
        } else if std::mem::take(&mut self.dirty) {
            self.reinvite_out = true;
            self.out.push_back(Output::Reinvite);
        }
    }

    /// Pause (`true`: the streams become `inactive`) or resume.
    pub fn set_paused(&mut self, paused: bool) {
        if self.paused != paused {
            self.paused = paused;
            self.changed();
        }
    }

    /// True while paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The participants changed (an agent joined, left, a transfer).
    pub fn metadata_changed(&mut self) {
        self.changed();
    }

    fn changed(&mut self) {
        match self.state {
            State::Up if self.reinvite_out => self.dirty = true,
            State::Up => {
                self.reinvite_out = true;
                self.out.push_back(Output::Reinvite);
            }
            State::Inviting { .. } => self.dirty = true,
            _ => {}
        }
    }

    /// The recording ends.
    pub fn stop(&mut self) {
        match self.state {
            State::Inviting { .. } => self.out.push_back(Output::HangUp),
            State::Up => {
                self.out.push_back(Output::Fork(false));
                self.out.push_back(Output::HangUp);
            }
            _ => {}
        }
        self.state = State::Stopped;
    }

    /// When the recorder being invited is given up on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Inviting { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Gives up on a recorder that did not answer in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Inviting { deadline } = self.state {
            if now >= deadline {
                self.fail_current(&format!(
                    "no answer in {} s",
                    self.answer_within.as_secs_f32()
                ));
                self.out.push_back(Output::HangUp);
                self.try_next(now);
            }
        }
    }

    /// What to do next.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The recorder that took the recording (the last one, after a failover).
    pub fn recorder(&self) -> Option<&str> {
        self.took.as_deref()
    }

    /// What went wrong on the way, recorder by recorder (`sip:a: 503`).
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// True when no recorder took it.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    fn session() -> (SiprecSession, Instant) {
        let s = SiprecSession::new(vec!["sip:a".into(), "sip:b".into()], WAIT);
        (s, Instant::now())
    }

    fn drain(s: &mut SiprecSession) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    #[test]
    fn the_first_recorder_takes_it_and_the_end_says_bye() {
        let (mut s, t0) = session();
        s.start(t0, false);
        assert_eq!(drain(&mut s), vec![Output::Invite("sip:a".into())]);
        assert_eq!(s.poll_timeout(), Some(t0 + WAIT));
        s.handle_answered();
        assert_eq!(drain(&mut s), vec![Output::Fork(true)]);
        assert_eq!(s.recorder(), Some("sip:a"));
        assert_eq!(s.poll_timeout(), None);
        s.stop();
        assert_eq!(drain(&mut s), vec![Output::Fork(false), Output::HangUp]);
    }

    #[test]
    fn a_refusal_an_unusable_answer_and_silence_each_move_on_and_then_it_fails() {
        let (mut s, t0) = session();
        s.start(t0, false);
        drain(&mut s);
        let t1 = t0 + Duration::from_secs(1);
        s.handle_refused(t1, 503);
        assert_eq!(drain(&mut s), vec![Output::Invite("sip:b".into())]);
        s.handle_timeout(t0 + WAIT); // a's deadline, not b's
        assert!(drain(&mut s).is_empty());
        s.handle_timeout(t1 + WAIT);
        let out = drain(&mut s);
        assert_eq!(out[0], Output::HangUp);
        let Output::Failed(why) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(
            why,
            "no recorder took the recording (sip:a: 503; sip:b: no answer in 5 s)"
        );
        assert!(s.is_failed() && s.recorder().is_none());
        let (mut s, t0) = session();
        s.start(t0, false);
        s.handle_unusable(t0, "the recorder refused stream 2");
        assert_eq!(
            drain(&mut s),
            vec![
                Output::Invite("sip:a".into()),
                Output::HangUp,
                Output::Invite("sip:b".into())
            ]
        );
        assert_eq!(s.failures(), ["sip:a: the recorder refused stream 2"]);
    }

    #[test]
    fn pauses_and_changes_are_one_reinvite_at_a_time() {
        let (mut s, t0) = session();
        s.start(t0, false);
        s.set_paused(true); // before the answer: sent once it is up
        s.handle_answered();
        assert_eq!(
            drain(&mut s),
            vec![
                Output::Invite("sip:a".into()),
                Output::Fork(true),
                Output::Reinvite
            ]
        );
        s.set_paused(false);
        s.metadata_changed();
        assert!(drain(&mut s).is_empty(), "one re-INVITE at a time");
        s.handle_reinvite_done(t0, 200);
        assert_eq!(drain(&mut s), vec![Output::Reinvite], "both changes in one");
        s.handle_reinvite_done(t0, 200);
        s.set_paused(false);
        assert!(drain(&mut s).is_empty(), "no change, no re-INVITE");
        s.set_paused(true);
        s.handle_reinvite_done(t0, 500);
        assert_eq!(drain(&mut s), vec![Output::Reinvite]);
        assert!(s.paused());
    }

    #[test]
    fn a_recorder_that_leaves_is_replaced_by_the_next() {
        let (mut s, t0) = session();
        s.start(t0, false);
        s.handle_answered();
        drain(&mut s);
        s.handle_ended(t0);
        assert_eq!(
            drain(&mut s),
            vec![Output::Fork(false), Output::Invite("sip:b".into())]
        );
        s.handle_answered();
        s.metadata_changed();
        s.handle_reinvite_done(t0, 481);
        let out = drain(&mut s);
        assert_eq!(
            &out[..3],
            [Output::Fork(true), Output::Reinvite, Output::Fork(false)]
        );
        assert!(
            matches!(&out[4], Output::Failed(w) if w.contains("sip:a: ended the session") && w.contains("sip:b: 481 to a re-INVITE"))
        );
        // Late news of a gone session changes nothing.
        s.handle_answered();
        s.handle_refused(t0, 500);
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn stopping_while_it_rings_cancels() {
        let (mut s, t0) = session();
        s.start(t0, false);
        drain(&mut s);
        s.stop();
        assert_eq!(drain(&mut s), vec![Output::HangUp]);
        s.handle_answered();
        s.stop();
        assert!(drain(&mut s).is_empty());
        let mut none = SiprecSession::new(vec![], WAIT);
        none.start(t0, false);
        assert_eq!(
            drain(&mut none),
            vec![Output::Failed("no recorder is configured".into())]
        );
    }
}
