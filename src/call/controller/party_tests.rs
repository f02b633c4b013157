//! The controller's parties on simulated time: agents joining and leaving a connected call, the
//! conference queue's further agents, the API's commands and the REFER verdicts.

use super::parties::TransferTarget;
use super::tests::{drain_all, queued};
use super::*;

fn joined(a: &str) -> CallOutput {
    CallOutput::PartyJoined { agent: a.into() }
}

fn left(a: &str) -> CallOutput {
    CallOutput::PartyLeft { agent: a.into() }
}

/// Queued in "support", A answered: connected with A.
fn connected(t0: Instant) -> CallController {
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    c.handle_agent_answered("A");
    drain_all(&mut c);
    c
}

#[test]
fn an_added_agent_joins_and_the_call_goes_on_when_one_leaves() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    assert_eq!(c.check_add_party("A").unwrap_err().code, "already_in_call");
    c.handle_add_party("B").unwrap();
    assert_eq!(
        drain_all(&mut c),
        vec![CallOutput::Invite { agent: "B".into() }]
    );
    assert_eq!(c.handle_add_party("B").unwrap_err().code, "already_ringing");
    assert_eq!(c.ringing().collect::<Vec<_>>(), ["B"]);
    c.handle_agent_answered("B");
    let out = drain_all(&mut c);
    assert!(out.contains(&joined("B")), "{out:?}");
    assert!(
        !out.iter().any(|o| matches!(o, CallOutput::State(_))),
        "still connected: {out:?}"
    );
    assert_eq!(c.agents(), ["A", "B"]);
    c.handle_agent_gone(t0, "A", false);
    assert_eq!(
        drain_all(&mut c),
        vec![CallOutput::AgentReleased { agent: "A".into() }, left("A")]
    );
    assert_eq!(c.state(), CallState::Connected);
    assert_eq!(c.agent(), Some("B"));
    c.handle_agent_gone(t0, "B", false);
    let out = drain_all(&mut c);
    assert_eq!(out.last(), Some(&CallOutput::End(EndReason::AgentHangup)));
}

#[test]
fn the_last_agent_leaving_requeues_where_the_queue_says_so() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.set_queue_sound(QueueSound {
        music: "moh".into(),
        announce_every: None,
        conference: false,
        requeue_after_last_agent: true,
        announcement: None,
    });
    c.handle_remove_party(t0, "A").unwrap();
    let out = drain_all(&mut c);
    assert_eq!(out[0], CallOutput::Bye { agent: "A".into() });
    assert!(out.contains(&CallOutput::Enqueue {
        queue: "support".into(),
        skill: None
    }));
    assert!(matches!(c.state(), CallState::Queued { .. }));
    assert_eq!(
        c.handle_remove_party(t0, "A").unwrap_err().code,
        "not_in_call"
    );
}

#[test]
fn a_conference_queue_joins_the_second_agent_that_answers() {
    let t0 = Instant::now();
    let mut c = queued(t0);
    c.set_queue_sound(QueueSound {
        music: "moh".into(),
        announce_every: None,
        conference: true,
        requeue_after_last_agent: false,
        announcement: None,
    });
    c.handle_offer(vec!["A".into(), "B".into()]);
    drain_all(&mut c);
    c.handle_agent_answered("A");
    drain_all(&mut c);
    c.handle_agent_answered("B");
    let out = drain_all(&mut c);
    assert!(out.contains(&joined("B")), "{out:?}");
    assert!(out.contains(&CallOutput::OfferResult {
        agent: "B".into(),
        result: OfferResult::Answered
    }));
    assert_eq!(c.agents(), ["A", "B"]);
    // The customer leaves: both get BYE and are released.
    c.handle_customer_gone(false);
    let byes: Vec<_> = drain_all(&mut c)
        .into_iter()
        .filter(|o| matches!(o, CallOutput::Bye { .. }))
        .collect();
    assert_eq!(byes.len(), 2);
}

#[test]
fn api_hold_transfer_and_hangup_fit_the_state_or_are_refused() {
    let t0 = Instant::now();
    let mut q = queued(t0);
    assert_eq!(q.handle_hold(true).unwrap_err().code, "not_connected");
    assert_eq!(q.check_transfer().unwrap_err().code, "not_connected");
    let mut c = connected(t0);
    c.handle_hold(true).unwrap();
    assert!(c.is_held());
    assert_eq!(
        drain_all(&mut c),
        vec![
            CallOutput::Play(Audio::Music("moh".into())),
            CallOutput::State(CallState::OnHold)
        ]
    );
    c.handle_hold(true).unwrap();
    assert!(
        drain_all(&mut c).is_empty(),
        "holding twice changes nothing"
    );
    c.handle_transfer_to(t0, TransferTarget::Agent("B".into()))
        .unwrap();
    let out = drain_all(&mut c);
    assert_eq!(out[0], CallOutput::Bye { agent: "A".into() });
    assert!(out.contains(&CallOutput::Invite { agent: "B".into() }));
    assert!(out.contains(&CallOutput::State(CallState::Transferring)));
    // The target does not answer: the customer waits in the queue again.
    c.handle_agent_failed(t0, "B", 480);
    assert!(matches!(c.state(), CallState::Queued { .. }));
    c.handle_hangup().unwrap();
    assert_eq!(
        drain_all(&mut c).last(),
        Some(&CallOutput::End(EndReason::ApiHangup))
    );
    assert_eq!(c.handle_hangup().unwrap_err().code, "ended");
}

#[test]
fn refer_verdicts_come_from_the_controller() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.set_known(
        vec!["A".into(), "B".into()].into(),
        vec!["support".into()].into(),
    );
    assert_eq!(c.handle_refer(t0, "A", Some("Z")), 403, "unknown target");
    assert_eq!(c.handle_refer(t0, "A", None), 403, "no target");
    assert_eq!(
        c.handle_refer(t0, "B", Some("A")),
        491,
        "B is not in the call"
    );
    assert_eq!(c.handle_refer(t0, "A", Some("B")), 202);
    assert_eq!(
        c.handle_refer(t0, "A", Some("B")),
        491,
        "already transferring"
    );
    assert_eq!(offer_outcome(486), "busy");
    assert_eq!(offer_outcome(487), "no_answer");
    assert_eq!(offer_outcome(503), "rejected");
}

#[test]
fn an_agent_ringing_to_join_is_cancelled_and_freed_when_the_customer_leaves() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.handle_add_party("B").unwrap();
    drain_all(&mut c);
    c.handle_customer_gone(false);
    let out = drain_all(&mut c);
    assert!(
        out.contains(&CallOutput::Cancel { agent: "B".into() }),
        "{out:?}"
    );
    assert!(
        out.contains(&CallOutput::OfferResult {
            agent: "B".into(),
            result: OfferResult::Rejected(487)
        }),
        "the ACD frees B at once: {out:?}"
    );
}
