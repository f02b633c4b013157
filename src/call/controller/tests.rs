use super::*;
use crate::ivr::Menu;
use std::collections::HashMap;

const S: Duration = Duration::from_secs(1);

fn menus() -> HashMap<String, Menu> {
    let mut options = HashMap::new();
    options.insert(
        '2',
        MenuAction::Queue {
            queue: "support".into(),
            skill: None,
        },
    );
    options.insert('0', MenuAction::HangUp);
    let mut m = HashMap::new();
    m.insert(
        "main".to_string(),
        Menu {
            prompt: "welcome".into(),
            options,
            input_timeout: 5 * S,
            retries: 1,
            invalid_prompt: Some("invalid".into()),
            on_exhausted: MenuAction::HangUp,
            labels: Vec::new(),
        },
    );
    m
}

fn call() -> CallController {
    let mut c = CallController::new(IvrRunner::new(menus(), "main"), None);
    c.set_queue_sound(QueueSound {
        music: "moh".into(),
        announce_every: Some(30 * S),
        conference: false,
        requeue_after_last_agent: false,
        announcement: None,
    });
    c
}

/// The outputs, less the party events (asserted in the party tests).
fn drain(c: &mut CallController) -> Vec<CallOutput> {
    drain_all(c)
        .into_iter()
        .filter(|o| {
            !matches!(
                o,
                CallOutput::PartyJoined { .. } | CallOutput::PartyLeft { .. }
            )
        })
        .collect()
}

pub(super) fn drain_all(c: &mut CallController) -> Vec<CallOutput> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn play(name: &str) -> CallOutput {
    CallOutput::Play(Audio::Prompt(name.into()))
}

/// Media flows, digit 2: the call is queued in "support" and hears the queue prompt.
pub(super) fn queued(t0: Instant) -> CallController {
    let mut c = call();
    c.handle_media_flowing(t0);
    c.handle_digit(t0 + S, '2');
    drain(&mut c);
    c
}

/// Queued, then agent "alice" answered: the customer talks to her.
pub(super) fn connected_call(t0: Instant) -> CallController {
    let mut c = queued(t0);
    c.handle_offer(vec!["alice".into()]);
    c.handle_agent_answered("alice");
    drain(&mut c);
    c
}

#[test]
fn no_prompt_before_media_flows() {
    let t0 = Instant::now();
    let mut c = call();
    assert!(
        drain(&mut c).is_empty(),
        "nothing plays into a leg that cannot hear"
    );
    assert_eq!(c.poll_timeout(), None);
    c.handle_media_flowing(t0);
    assert_eq!(drain(&mut c), vec![play("welcome")]);
    c.handle_media_flowing(t0 + S);
    assert!(drain(&mut c).is_empty(), "the menu starts once");
}

#[test]
fn a_recording_queue_s_announcement_comes_after_its_greeting_once() {
    let t0 = Instant::now();
    let mut c = call();
    c.set_queue_sound(QueueSound {
        music: "moh".into(),
        announce_every: None,
        conference: false,
        requeue_after_last_agent: false,
        announcement: Some("recording_notice".into()),
    });
    c.handle_media_flowing(t0);
    c.handle_digit(t0 + S, '2');
    drain(&mut c);
    c.handle_prompt_done(t0 + 3 * S);
    assert_eq!(drain(&mut c), vec![play("recording_notice")]);
    c.handle_prompt_done(t0 + 6 * S);
    assert_eq!(
        drain(&mut c),
        vec![CallOutput::Play(Audio::Music("moh".into()))]
    );
}

#[test]
fn digit_enters_the_queue_then_music_follows_the_queue_prompt() {
    let t0 = Instant::now();
    let mut c = call();
    c.handle_media_flowing(t0);
    drain(&mut c);
    c.handle_digit(t0 + S, '2');
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::Enqueue {
                queue: "support".into(),
                skill: None
            },
            CallOutput::State(CallState::Queued {
                position: None,
                estimated_wait_secs: None
            }),
            play("queued"),
        ]
    );
    c.handle_prompt_done(t0 + 5 * S);
    assert_eq!(
        drain(&mut c),
        vec![CallOutput::Play(Audio::Music("moh".into()))]
    );
    assert_eq!(c.ivr_path(), ["main", "2"]);
}

#[test]
fn input_timeout_replays_then_hangs_up_after_goodbye() {
    let t0 = Instant::now();
    let mut c = call();
    c.handle_media_flowing(t0);
    c.handle_prompt_done(t0 + 3 * S);
    drain(&mut c);
    assert_eq!(c.poll_timeout(), Some(t0 + 8 * S));
    c.handle_timeout(t0 + 8 * S);
    assert_eq!(drain(&mut c), vec![play("welcome")], "one retry");
    c.handle_prompt_done(t0 + 11 * S);
    c.handle_timeout(t0 + 16 * S);
    assert_eq!(drain(&mut c), vec![play("goodbye")]);
    c.handle_prompt_done(t0 + 18 * S);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::State(CallState::Ended(EndReason::IvrHangup)),
            CallOutput::End(EndReason::IvrHangup)
        ]
    );
    assert!(c.is_ended());
}

#[test]
fn position_updates_and_periodic_announcements_with_simulated_time() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_position(3, 540);
    assert_eq!(
        drain(&mut c),
        vec![CallOutput::State(CallState::Queued {
            position: Some(3),
            estimated_wait_secs: Some(540)
        })]
    );
    c.handle_position(3, 540);
    assert!(
        drain(&mut c).is_empty(),
        "no repeat for an unchanged position"
    );
    assert_eq!(c.poll_timeout(), Some(t0 + 31 * S));
    c.handle_timeout(t0 + 31 * S);
    assert_eq!(drain(&mut c), vec![CallOutput::Play(Audio::Position(3))]);
    c.handle_prompt_done(t0 + 33 * S);
    assert_eq!(
        drain(&mut c),
        vec![CallOutput::Play(Audio::Music("moh".into()))]
    );
    assert_eq!(c.poll_timeout(), Some(t0 + 61 * S));
}

#[test]
fn hunting_rejected_then_answered_connects_and_reports_to_the_acd() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::Invite { agent: "A".into() },
            CallOutput::State(CallState::Ringing)
        ]
    );
    c.handle_agent_failed(t0, "A", 486);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::OfferResult {
                agent: "A".into(),
                result: OfferResult::Rejected(486)
            },
            CallOutput::State(CallState::Queued {
                position: None,
                estimated_wait_secs: None
            })
        ]
    );
    // B rings and the ACD times it out: CANCEL.
    c.handle_offer(vec!["B".into()]);
    drain(&mut c);
    c.handle_cancel(vec!["B".into()]);
    assert_eq!(drain(&mut c)[0], CallOutput::Cancel { agent: "B".into() });
    c.handle_offer(vec!["C".into()]);
    drain(&mut c);
    c.handle_agent_answered("C");
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::OfferResult {
                agent: "C".into(),
                result: OfferResult::Answered
            },
            CallOutput::Play(Audio::Agent),
            CallOutput::State(CallState::Connected)
        ]
    );
    assert_eq!(c.agent(), Some("C"));
    assert_eq!(c.poll_timeout(), None, "no announcements while connected");
}

#[test]
fn ring_all_late_answer_is_hung_up() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into(), "B".into()]);
    drain(&mut c);
    c.handle_agent_answered("A");
    drain(&mut c);
    // The ACD cancels B; B's 200 crossed the CANCEL.
    c.handle_cancel(vec!["B".into()]);
    c.handle_agent_answered("B");
    let out = drain(&mut c);
    assert!(out.contains(&CallOutput::Bye { agent: "B".into() }));
    assert_eq!(c.agent(), Some("A"));
}

#[test]
fn customer_hangs_up_while_ringing_cancels_and_abandons() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    drain(&mut c);
    c.handle_customer_gone(false);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::Cancel { agent: "A".into() },
            CallOutput::Abandon,
            CallOutput::State(CallState::Ended(EndReason::CustomerHangup)),
            CallOutput::End(EndReason::CustomerHangup)
        ]
    );
}

#[test]
fn agent_hangup_ends_with_agent_hangup_and_releases_the_agent() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    c.handle_agent_answered("A");
    drain(&mut c);
    c.handle_agent_gone(t0, "A", false);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::AgentReleased { agent: "A".into() },
            CallOutput::State(CallState::Ended(EndReason::AgentHangup)),
            CallOutput::End(EndReason::AgentHangup)
        ]
    );
}

#[test]
fn hold_plays_music_and_unhold_bridges_again() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    c.handle_agent_answered("A");
    drain(&mut c);
    c.handle_agent_hold("A", true);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::Play(Audio::Music("moh".into())),
            CallOutput::State(CallState::OnHold)
        ]
    );
    c.handle_agent_hold("A", false);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::Play(Audio::Agent),
            CallOutput::State(CallState::Connected)
        ]
    );
}

#[test]
fn blind_transfer_bridges_the_target_notifies_and_byes_the_transferor() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    c.handle_agent_answered("A");
    drain(&mut c);
    assert!(c.handle_transfer("A", "B"));
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::Invite { agent: "B".into() },
            play("transfer"),
            CallOutput::State(CallState::Transferring)
        ]
    );
    // The transferor hangs up right after 202, as phones do: the transfer goes on.
    c.handle_agent_gone(t0, "A", false);
    assert!(drain(&mut c).is_empty());
    c.handle_agent_answered("B");
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::TransferProgress {
                agent: "A".into(),
                status: 200
            },
            CallOutput::AgentReleased { agent: "A".into() },
            CallOutput::Play(Audio::Agent),
            CallOutput::State(CallState::Connected)
        ]
    );
    assert_eq!(c.agent(), Some("B"));
}

#[test]
fn failed_transfer_returns_to_the_first_agent() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    c.handle_agent_answered("A");
    c.handle_transfer("A", "B");
    drain(&mut c);
    c.handle_agent_failed(t0, "B", 486);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::TransferProgress {
                agent: "A".into(),
                status: 486
            },
            CallOutput::Play(Audio::Agent),
            CallOutput::State(CallState::Connected)
        ]
    );
    assert_eq!(c.agent(), Some("A"));
}

#[test]
fn no_agents_overflow_plays_the_message_then_ends() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.handle_overflow(t0 + S, Overflow::HangUp, false);
    assert_eq!(drain(&mut c), vec![play("no_agents")]);
    c.handle_prompt_done(t0 + 7 * S);
    assert_eq!(
        drain(&mut c),
        vec![
            CallOutput::State(CallState::Ended(EndReason::NoAgents)),
            CallOutput::End(EndReason::NoAgents)
        ]
    );
}

#[test]
fn a_direct_queue_skips_the_menus() {
    let t0 = Instant::now();
    let mut c = CallController::new(
        IvrRunner::new(menus(), "main"),
        Some(("support".into(), Some("billing".into()))),
    );
    c.handle_media_flowing(t0);
    assert_eq!(
        drain(&mut c)[0],
        CallOutput::Enqueue {
            queue: "support".into(),
            skill: Some("billing".into())
        }
    );
}
