//! Supervisors in the controller on simulated time: joining in a mode, switching by API and by
//! key, a takeover releasing the agents and carrying the call, leaving, and what does not fit.

use super::supervision::Mode;
use super::tests::{drain_all, queued};
use super::*;

fn connected(t0: Instant) -> CallController {
    let mut c = queued(t0);
    c.set_supervisor_keys(vec![
        ('4', Mode::Monitor),
        ('5', Mode::Whisper),
        ('6', Mode::Barge),
    ]);
    c.handle_offer(vec!["A".into()]);
    c.handle_agent_answered("A");
    drain_all(&mut c);
    c
}

fn joined(c: &mut CallController, s: &str, mode: Mode) {
    c.handle_supervise(s, mode).unwrap();
    assert_eq!(drain_all(c), vec![CallOutput::Invite { agent: s.into() }]);
    c.handle_agent_answered(s);
    assert_eq!(
        drain_all(c),
        vec![CallOutput::SupervisorJoined {
            supervisor: s.into(),
            mode
        }]
    );
}

#[test]
fn a_supervisor_joins_switches_by_api_and_key_and_leaves() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    joined(&mut c, "S", Mode::Monitor);
    assert_eq!(c.supervisors(), vec![("S", Mode::Monitor)]);
    assert_eq!(c.agents(), ["A"], "a supervisor is no agent");
    assert_eq!(
        c.handle_supervise("S", Mode::Barge).unwrap_err().code,
        "already_in_call"
    );
    c.handle_supervise_mode("S", Mode::Whisper).unwrap();
    let mode = |m| CallOutput::SupervisorMode {
        supervisor: "S".into(),
        mode: m,
    };
    assert_eq!(drain_all(&mut c), vec![mode(Mode::Whisper)]);
    c.handle_supervisor_key("S", '6');
    assert_eq!(drain_all(&mut c), vec![mode(Mode::Barge)]);
    c.handle_supervisor_key("S", '6');
    c.handle_supervisor_key("S", '9');
    assert!(
        drain_all(&mut c).is_empty(),
        "same mode, unknown key: nothing"
    );
    c.handle_agent_gone(t0, "S", false);
    assert_eq!(
        drain_all(&mut c),
        vec![CallOutput::SupervisorLeft {
            supervisor: "S".into()
        }]
    );
    assert_eq!(c.state(), CallState::Connected, "the call goes on");
    assert_eq!(
        c.handle_supervise_mode("S", Mode::Monitor)
            .unwrap_err()
            .code,
        "not_in_call"
    );
}

#[test]
fn a_takeover_releases_the_agents_and_the_call_ends_with_the_supervisor() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    joined(&mut c, "S", Mode::Whisper);
    c.handle_supervise_mode("S", Mode::Takeover).unwrap();
    let out = drain_all(&mut c);
    assert!(
        out.contains(&CallOutput::Bye { agent: "A".into() }),
        "{out:?}"
    );
    assert!(out.contains(&CallOutput::AgentReleased { agent: "A".into() }));
    assert!(c.agents().is_empty());
    assert_eq!(
        c.state(),
        CallState::Connected,
        "the supervisor carries the call"
    );
    assert_eq!(
        c.handle_supervise_mode("S", Mode::Monitor)
            .unwrap_err()
            .code,
        "taken_over"
    );
    c.handle_agent_gone(t0, "A", false); // the released agent's BYE answer: nothing more
    c.handle_agent_gone(t0, "S", false);
    let out = drain_all(&mut c);
    assert_eq!(
        out.last(),
        Some(&CallOutput::End(EndReason::AgentHangup)),
        "{out:?}"
    );
}

#[test]
fn supervisors_leave_with_the_call_and_only_join_connected_calls() {
    let t0 = Instant::now();
    let mut q = queued(t0);
    assert_eq!(
        q.handle_supervise("S", Mode::Monitor).unwrap_err().code,
        "not_connected"
    );
    let mut c = connected(t0);
    assert_eq!(
        c.handle_supervise("A", Mode::Monitor).unwrap_err().code,
        "already_in_call"
    );
    joined(&mut c, "S", Mode::Monitor);
    c.handle_supervise("T", Mode::Barge).unwrap();
    drain_all(&mut c);
    assert_eq!(
        c.handle_supervise("T", Mode::Barge).unwrap_err().code,
        "already_ringing"
    );
    c.handle_customer_gone(false);
    let out = drain_all(&mut c);
    assert!(
        out.contains(&CallOutput::Bye { agent: "S".into() }),
        "{out:?}"
    );
    assert!(
        out.contains(&CallOutput::Cancel { agent: "T".into() }),
        "{out:?}"
    );
    // A phone that answers after the call ended is hung up.
    c.handle_agent_answered("T");
    assert!(!drain_all(&mut c).contains(&CallOutput::SupervisorJoined {
        supervisor: "T".into(),
        mode: Mode::Barge
    }));
}

#[test]
fn removing_a_ringing_supervisor_cancels_and_a_failure_forgets_it() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.handle_supervise("S", Mode::Monitor).unwrap();
    drain_all(&mut c);
    c.handle_remove_party(t0, "S").unwrap();
    assert_eq!(
        drain_all(&mut c),
        vec![CallOutput::Cancel { agent: "S".into() }]
    );
    assert!(!c.is_supervisor("S"));
    c.handle_supervise("S", Mode::Monitor).unwrap();
    drain_all(&mut c);
    c.handle_agent_failed(t0, "S", 486);
    assert!(drain_all(&mut c).is_empty());
    assert!(!c.is_supervisor("S"));
    assert_eq!(c.agents(), ["A"]);
}
