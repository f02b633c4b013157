//! Consult calls in the controller on simulated time: a desk phone's consult leg answered when
//! the target answers (refused when it does not), complete, three-way, swap, cancel, a REFER with
//! Replaces, and the call ending in the middle.

use super::tests::{drain_all, queued};
use super::*;
use crate::acd::OfferResult;

fn connected(t0: Instant) -> CallController {
    let mut c = queued(t0);
    c.handle_offer(vec!["A".into()]);
    c.handle_agent_answered("A");
    drain_all(&mut c);
    c
}

fn bye(a: &str) -> CallOutput {
    CallOutput::Bye { agent: a.into() }
}

#[test]
fn a_desk_phone_consult_is_answered_with_its_target_and_replaces_completes_it() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.handle_agent_hold("A", true);
    drain_all(&mut c);
    c.handle_consult("A", "B", Some("A/consult".into()))
        .unwrap();
    assert_eq!(
        drain_all(&mut c),
        vec![CallOutput::Invite { agent: "B".into() }]
    );
    assert_eq!(
        c.check_consult(Some("A")).unwrap_err().code,
        "consult_in_progress"
    );
    assert_eq!(c.consult(), None, "nobody talks before the answer");
    c.handle_agent_answered("B");
    let out = drain_all(&mut c);
    assert!(
        out.contains(&CallOutput::AcceptLeg {
            party: "A/consult".into()
        }),
        "{out:?}"
    );
    assert!(out.contains(&CallOutput::OfferResult {
        agent: "B".into(),
        result: OfferResult::Answered
    }));
    assert_eq!(
        c.consult().map(|v| (v.talker, v.target)),
        Some(("A/consult".into(), "B".into()))
    );
    assert_eq!(c.agents(), ["A"], "B is no agent of the call yet");
    assert_eq!(
        c.handle_refer_replaces("A", "C"),
        481,
        "a dialog of no consult"
    );
    assert_eq!(c.handle_refer_replaces("A", "A/consult"), 202);
    let out = drain_all(&mut c);
    for o in [
        bye("A/consult"),
        bye("A"),
        CallOutput::PartyJoined { agent: "B".into() },
    ] {
        assert!(out.contains(&o), "{o:?} in {out:?}");
    }
    let states: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            CallOutput::State(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(states, [CallState::Transferring, CallState::Connected]);
    assert_eq!(c.agents(), ["B"]);
    assert_eq!(
        c.handle_refer_replaces("B", "A"),
        481,
        "no consult any more"
    );
}

#[test]
fn a_target_that_does_not_answer_refuses_the_consult_leg_and_cancel_and_threeway_end_it() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.handle_consult("A", "B", Some("A/consult".into()))
        .unwrap();
    drain_all(&mut c);
    c.handle_agent_failed(t0, "B", 486);
    let out = drain_all(&mut c);
    assert!(
        out.contains(&CallOutput::RejectLeg {
            party: "A/consult".into(),
            status: 486
        }),
        "{out:?}"
    );
    assert_eq!(c.handle_consult_cancel().unwrap_err().code, "no_consult");

    // A console's consult holds the customer; cancel brings the customer back.
    c.handle_consult("A", "B", None).unwrap();
    assert!(c.is_held());
    drain_all(&mut c);
    assert_eq!(
        c.handle_consult_threeway().unwrap_err().code,
        "consult_not_answered"
    );
    c.handle_consult_cancel().unwrap();
    let out = drain_all(&mut c);
    assert!(
        out.contains(&CallOutput::Cancel { agent: "B".into() }),
        "{out:?}"
    );
    assert!(!c.is_held());

    c.handle_consult("A", "B", None).unwrap();
    c.handle_agent_answered("B");
    assert_eq!(
        c.consult().map(|v| v.talker),
        Some("A".into()),
        "the transferor's own leg talks"
    );
    c.handle_consult_swap().unwrap();
    assert!(
        !c.is_held() && c.consult().is_none(),
        "swapped: A talks to the customer"
    );
    c.handle_consult_swap().unwrap();
    assert!(c.is_held() && c.consult().is_some());
    c.handle_consult_threeway().unwrap();
    assert_eq!(c.agents(), ["A", "B"]);
    assert!(!c.is_held());
}

#[test]
fn the_call_ending_mid_consult_ends_the_target_and_the_consult_leg() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.handle_consult("A", "B", Some("A/consult".into()))
        .unwrap();
    c.handle_agent_answered("B");
    drain_all(&mut c);
    c.handle_customer_gone(false);
    let out = drain_all(&mut c);
    for o in [bye("B"), bye("A/consult"), bye("A")] {
        assert!(out.contains(&o), "{o:?} in {out:?}");
    }
    // The desk phone hanging up its consult call ends the target's leg.
    let mut c = connected(t0);
    c.handle_consult("A", "B", Some("A/consult".into()))
        .unwrap();
    c.handle_agent_answered("B");
    drain_all(&mut c);
    c.handle_agent_gone(t0, "A/consult", false);
    let out = drain_all(&mut c);
    assert!(
        out.contains(&bye("B")) && out.contains(&CallOutput::AgentReleased { agent: "B".into() }),
        "{out:?}"
    );
    assert_eq!(c.state(), CallState::Connected, "A and the customer go on");
}

#[test]
fn an_acd_ring_timeout_a_lost_target_and_other_transfers_end_the_consult_cleanly() {
    let t0 = Instant::now();
    // The ACD gives up on the target: the desk phone's consult dialog is refused.
    let mut c = connected(t0);
    c.handle_consult("A", "B", Some("A/consult".into()))
        .unwrap();
    drain_all(&mut c);
    c.handle_cancel(vec!["B".into()]);
    let out = drain_all(&mut c);
    assert!(
        out.contains(&CallOutput::Cancel { agent: "B".into() }),
        "{out:?}"
    );
    assert!(out.contains(&CallOutput::RejectLeg {
        party: "A/consult".into(),
        status: 480
    }));
    assert!(c.consult_parties().is_empty());
    // A console's consult whose target's media dies: its dialog gets BYE, the customer is back.
    c.handle_consult("A", "B", None).unwrap();
    c.handle_agent_answered("B");
    drain_all(&mut c);
    c.handle_agent_hold("A", false);
    assert!(
        c.is_held(),
        "a re-INVITE from A does not end the consult's hold"
    );
    assert!(
        !c.handle_transfer("A", "C"),
        "no blind transfer in the middle of a consult"
    );
    c.handle_agent_gone(t0, "B", true);
    let out = drain_all(&mut c);
    assert!(
        out.contains(&bye("B")) && out.contains(&CallOutput::AgentReleased { agent: "B".into() }),
        "{out:?}"
    );
    assert!(!c.is_held());
    // An API transfer in the middle of a consult ends it first.
    c.handle_consult("A", "B", None).unwrap();
    c.handle_agent_answered("B");
    drain_all(&mut c);
    c.handle_transfer_to(t0, super::parties::TransferTarget::Queue("support".into()))
        .unwrap();
    let out = drain_all(&mut c);
    assert!(
        out.contains(&bye("B")) && out.contains(&bye("A")),
        "{out:?}"
    );
    assert!(c.consult_parties().is_empty());
    assert_eq!(
        c.handle_consult_complete().unwrap_err().code,
        "not_connected"
    );
}
