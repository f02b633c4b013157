use super::*;

const S: Duration = Duration::from_secs(1);

fn drain(acd: &mut Acd) -> Vec<AcdOutput> {
    std::iter::from_fn(|| acd.poll_output()).collect()
}

fn offer(call: CallId, agents: &[&str]) -> AcdOutput {
    AcdOutput::Offer {
        call,
        agents: agents.iter().map(|a| a.to_string()).collect(),
    }
}

fn cancel(call: CallId, agents: &[&str]) -> AcdOutput {
    AcdOutput::Cancel {
        call,
        agents: agents.iter().map(|a| a.to_string()).collect(),
    }
}

/// Queue "support" with agents A, B, C online, A idle longest.
fn three_agents(t0: Instant, strategy: Strategy) -> Acd {
    let mut acd = Acd::new();
    acd.add_queue(
        "support",
        QueueRules {
            strategy,
            ..QueueRules::default()
        },
    );
    for (i, a) in ["A", "B", "C"].iter().enumerate() {
        acd.add_agent(a, &["support"], &[("english", 5)]);
        acd.handle_presence(t0 + S * i as u32, a, true);
    }
    drain(&mut acd);
    acd
}

#[test]
fn busy_then_no_answer_then_answer_hunts_each_agent_once() {
    let t0 = Instant::now();
    let mut acd = three_agents(t0, Strategy::LongestIdle);
    let t = t0 + 10 * S;
    acd.handle_enqueue(t, 1, "support", None);
    assert_eq!(drain(&mut acd), vec![offer(1, &["A"])]);
    acd.handle_offer_result(t + S, 1, "A", OfferResult::Rejected(486));
    assert_eq!(drain(&mut acd), vec![offer(1, &["B"])]);
    // B does not answer within the 15 s ring timeout: simulated time, no sleeping.
    let deadline = acd.poll_timeout().unwrap();
    assert_eq!(deadline, t + S + 15 * S);
    acd.handle_timeout(deadline);
    assert_eq!(drain(&mut acd), vec![cancel(1, &["B"]), offer(1, &["C"])]);
    acd.handle_offer_result(deadline + 2 * S, 1, "C", OfferResult::Answered);
    assert_eq!(
        drain(&mut acd),
        vec![AcdOutput::Connected {
            call: 1,
            agent: "C".into()
        }]
    );
    assert_eq!(acd.agent_state("C"), Some(AgentState::Busy(1)));
    assert!(matches!(
        acd.agent_state("A"),
        Some(AgentState::Available(_))
    ));
}

#[test]
fn ring_all_connects_the_first_to_answer_and_cancels_the_rest() {
    let t0 = Instant::now();
    let mut acd = three_agents(t0, Strategy::RingAll);
    acd.handle_enqueue(t0 + 10 * S, 7, "support", None);
    assert_eq!(drain(&mut acd), vec![offer(7, &["A", "B", "C"])]);
    acd.handle_offer_result(t0 + 12 * S, 7, "B", OfferResult::Answered);
    assert_eq!(
        drain(&mut acd),
        vec![
            cancel(7, &["A", "C"]),
            AcdOutput::Connected {
                call: 7,
                agent: "B".into()
            }
        ]
    );
}

#[test]
fn round_robin_and_skills_based_pick_as_configured() {
    let t0 = Instant::now();
    let mut rr = three_agents(t0, Strategy::RoundRobin);
    let mut picks = Vec::new();
    for call in 1..=4 {
        let t = t0 + S * (10 + call as u32);
        rr.handle_enqueue(t, call, "support", None);
        if let Some(AcdOutput::Offer { agents, .. }) = drain(&mut rr).pop() {
            picks.push(agents[0].clone());
            rr.handle_offer_result(t, call, &agents[0], OfferResult::Answered);
            drain(&mut rr);
            rr.handle_call_ended(t, &agents[0]);
            rr.handle_timeout(t + 60 * S);
            drain(&mut rr);
        }
    }
    assert_eq!(picks, ["A", "B", "C", "A"]);

    let mut sk = Acd::new();
    sk.add_queue(
        "support",
        QueueRules {
            strategy: Strategy::SkillsBased,
            ..QueueRules::default()
        },
    );
    sk.add_agent("novice", &["support"], &[("german", 2)]);
    sk.add_agent("expert", &["support"], &[("german", 9)]);
    sk.add_agent("english-only", &["support"], &[("english", 9)]);
    for a in ["novice", "expert", "english-only"] {
        sk.handle_presence(t0, a, true);
    }
    sk.handle_enqueue(t0 + S, 1, "support", Some("german"));
    assert_eq!(drain(&mut sk), vec![offer(1, &["expert"])]);
}

#[test]
fn wrap_up_keeps_an_agent_from_the_next_call_until_it_ends() {
    let t0 = Instant::now();
    let mut acd = Acd::new();
    acd.add_queue(
        "support",
        QueueRules {
            wrap_up: 30 * S,
            ..QueueRules::default()
        },
    );
    acd.add_agent("A", &["support"], &[]);
    acd.handle_presence(t0, "A", true);
    acd.handle_enqueue(t0, 1, "support", None);
    drain(&mut acd);
    acd.handle_offer_result(t0 + S, 1, "A", OfferResult::Answered);
    acd.handle_call_ended(t0 + 100 * S, "A");
    acd.handle_enqueue(t0 + 101 * S, 2, "support", None);
    assert!(
        drain(&mut acd)
            .iter()
            .all(|o| !matches!(o, AcdOutput::Offer { .. })),
        "in wrap-up"
    );
    assert_eq!(acd.position(2), Some(1));
    assert_eq!(acd.poll_timeout(), Some(t0 + 130 * S));
    acd.handle_timeout(t0 + 130 * S);
    assert_eq!(drain(&mut acd), vec![offer(2, &["A"])]);
}

#[test]
fn max_wait_overflows_and_no_agents_hangs_up_when_configured() {
    let t0 = Instant::now();
    let mut acd = Acd::new();
    acd.add_queue(
        "support",
        QueueRules {
            max_wait: Some(60 * S),
            on_max_wait: Overflow::Queue("sales".into()),
            ..QueueRules::default()
        },
    );
    acd.add_queue(
        "sales",
        QueueRules {
            on_no_agents: Overflow::HangUp,
            ..QueueRules::default()
        },
    );
    acd.add_agent("A", &["support"], &[]);
    acd.add_agent("S", &["sales"], &[]);
    acd.handle_presence(t0, "A", true);
    acd.handle_set_away(t0, "A", true); // logged in, but away: the call waits
    acd.handle_enqueue(t0, 1, "support", None);
    acd.handle_enqueue(t0 + 5 * S, 2, "support", None);
    assert_eq!((acd.position(1), acd.position(2)), (Some(1), Some(2)));
    assert_eq!(acd.poll_timeout(), Some(t0 + 60 * S));
    acd.handle_timeout(t0 + 60 * S);
    assert_eq!(
        drain(&mut acd),
        vec![AcdOutput::Overflowed {
            call: 1,
            action: Overflow::Queue("sales".into()),
            max_wait: true,
        }]
    );
    assert_eq!(acd.position(2), Some(1), "the next caller moves up");
    // In "sales" nobody is logged in: a new call there is hung up at once.
    acd.handle_enqueue(t0 + 61 * S, 3, "sales", None);
    assert_eq!(
        drain(&mut acd),
        vec![AcdOutput::Overflowed {
            call: 3,
            action: Overflow::HangUp,
            max_wait: false,
        }]
    );
    // The sales agent logs in: the overflowed call 1 is offered to it.
    acd.handle_presence(t0 + 62 * S, "S", true);
    assert_eq!(drain(&mut acd), vec![offer(1, &["S"])]);
}

#[test]
fn abandon_while_ringing_cancels_and_frees_the_agent() {
    let t0 = Instant::now();
    let mut acd = three_agents(t0, Strategy::LongestIdle);
    acd.handle_enqueue(t0 + 10 * S, 1, "support", None);
    drain(&mut acd);
    acd.handle_abandon(t0 + 12 * S, 1);
    assert_eq!(drain(&mut acd), vec![cancel(1, &["A"])]);
    assert!(matches!(
        acd.agent_state("A"),
        Some(AgentState::Available(_))
    ));
    assert_eq!(acd.position(1), None);
}

#[test]
fn an_agent_whose_phone_goes_offline_while_ringing_is_skipped() {
    let t0 = Instant::now();
    let mut acd = three_agents(t0, Strategy::LongestIdle);
    acd.handle_enqueue(t0 + 10 * S, 1, "support", None);
    drain(&mut acd);
    acd.handle_presence(t0 + 11 * S, "A", false);
    assert_eq!(drain(&mut acd), vec![offer(1, &["B"])]);
}

/// Conference queue "support" (two agents per call) with `agents` online, the first idle longest.
fn conference_queue(t0: Instant, agents: &[&str]) -> Acd {
    let mut acd = Acd::new();
    acd.add_queue(
        "support",
        QueueRules {
            conference: 2,
            ..QueueRules::default()
        },
    );
    for (i, a) in agents.iter().enumerate() {
        acd.add_agent(a, &["support"], &[]);
        acd.handle_presence(t0 + S * i as u32, a, true);
    }
    drain(&mut acd);
    acd
}

#[test]
fn a_conference_queue_rings_two_and_connects_each_that_answers() {
    let t0 = Instant::now();
    let mut acd = conference_queue(t0, &["A", "B", "C"]);
    let t = t0 + 10 * S;
    acd.handle_enqueue(t, 1, "support", None);
    assert_eq!(
        drain(&mut acd),
        vec![offer(1, &["A", "B"])],
        "the two idle longest"
    );
    acd.handle_offer_result(t + S, 1, "B", OfferResult::Answered);
    let connected = |a: &str| AcdOutput::Connected {
        call: 1,
        agent: a.into(),
    };
    assert_eq!(drain(&mut acd), vec![connected("B")], "A is not cancelled");
    assert_eq!(acd.position(1), None, "the call left the queue");
    assert_eq!(acd.agent_state("A"), Some(AgentState::Ringing(1)));
    acd.handle_offer_result(t + 2 * S, 1, "A", OfferResult::Answered);
    assert_eq!(drain(&mut acd), vec![connected("A")]);
    assert_eq!(acd.agent_state("A"), Some(AgentState::Busy(1)));
    // A second call rings C alone (one agent left); C lets it ring out.
    acd.handle_enqueue(t + 3 * S, 2, "support", None);
    assert_eq!(drain(&mut acd), vec![offer(2, &["C"])]);
}

#[test]
fn a_conference_agent_that_rings_out_is_cancelled_and_freed() {
    let t0 = Instant::now();
    let mut acd = conference_queue(t0, &["A", "B"]);
    acd.handle_enqueue(t0 + S, 1, "support", None);
    drain(&mut acd);
    acd.handle_offer_result(t0 + 2 * S, 1, "A", OfferResult::Answered);
    drain(&mut acd);
    let deadline = acd.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 16 * S, "B's ring timeout still runs");
    acd.handle_timeout(deadline);
    assert_eq!(drain(&mut acd), vec![cancel(1, &["B"])]);
    assert!(matches!(
        acd.agent_state("B"),
        Some(AgentState::Available(_))
    ));
}

#[test]
fn claiming_an_agent_for_a_live_call() {
    let t0 = Instant::now();
    let mut acd = three_agents(t0, Strategy::LongestIdle);
    acd.handle_enqueue(t0 + 5 * S, 1, "support", None);
    drain(&mut acd);
    acd.handle_offer_result(t0 + 6 * S, 1, "A", OfferResult::Answered);
    drain(&mut acd);
    let ring = 20 * S;
    assert_eq!(
        acd.handle_claim(t0 + 7 * S, 1, "A", ring),
        Err(ClaimError::Unavailable("A".into(), "busy"))
    );
    assert_eq!(
        acd.handle_claim(t0 + 7 * S, 1, "Z", ring),
        Err(ClaimError::UnknownAgent("Z".into()))
    );
    acd.handle_presence(t0 + 7 * S, "C", false);
    assert_eq!(
        acd.handle_claim(t0 + 7 * S, 1, "C", ring),
        Err(ClaimError::Unavailable("C".into(), "offline"))
    );
    assert_eq!(acd.handle_claim(t0 + 7 * S, 1, "B", ring), Ok(()));
    assert_eq!(acd.agent_state("B"), Some(AgentState::Ringing(1)));
    assert_eq!(
        acd.handle_claim(t0 + 7 * S, 1, "B", ring),
        Err(ClaimError::Unavailable("B".into(), "ringing")),
        "never offered twice"
    );
    // A new caller is not offered B while B rings for call 1.
    acd.handle_enqueue(t0 + 8 * S, 2, "support", None);
    assert_eq!(drain(&mut acd), vec![]);
    acd.handle_offer_result(t0 + 9 * S, 1, "B", OfferResult::Rejected(486));
    assert_eq!(
        drain(&mut acd),
        vec![offer(2, &["B"])],
        "freed, B rings for call 2"
    );
}

#[test]
fn a_consult_to_a_queue_claims_its_longest_idle_agent_not_one_in_the_call() {
    let t0 = Instant::now();
    let mut acd = three_agents(t0, Strategy::RoundRobin);
    let ring = 20 * S;
    let except = vec!["A".to_string()];
    // A (idle longest) is in the call: B, idle since t0 + 1 s, is next.
    assert_eq!(
        acd.handle_claim_from(t0 + 5 * S, 1, "support", ring, &except),
        Ok("B".into())
    );
    assert_eq!(acd.agent_state("B"), Some(AgentState::Ringing(1)));
    assert_eq!(
        acd.handle_claim_from(t0 + 5 * S, 1, "support", ring, &except),
        Ok("C".into())
    );
    assert_eq!(
        acd.handle_claim_from(t0 + 5 * S, 1, "support", ring, &except),
        Err(ClaimError::NoneAvailable("support".into()))
    );
    assert_eq!(
        acd.handle_claim_from(t0 + 5 * S, 1, "nowhere", ring, &[]),
        Err(ClaimError::NoneAvailable("nowhere".into()))
    );
}

#[test]
fn logged_in_agents_are_counted_per_queue_as_presence_changes() {
    let t0 = Instant::now();
    let mut acd = three_agents(t0, Strategy::LongestIdle);
    acd.add_queue(
        "sales",
        QueueRules {
            on_no_agents: Overflow::HangUp,
            ..QueueRules::default()
        },
    );
    acd.add_agent("D", &["support", "sales"], &[]);
    assert_eq!((acd.logged_in("support"), acd.logged_in("sales")), (3, 0));
    acd.handle_presence(t0, "D", true);
    acd.handle_presence(t0, "D", true); // a refresh changes nothing
    assert_eq!((acd.logged_in("support"), acd.logged_in("sales")), (4, 1));
    // Busy or away agents stay logged in; offline ones do not.
    acd.handle_enqueue(t0 + S, 1, "support", None);
    acd.handle_set_away(t0 + S, "D", true);
    assert_eq!(acd.logged_in("support"), 4);
    acd.handle_presence(t0 + 2 * S, "A", false);
    acd.handle_presence(t0 + 2 * S, "A", false);
    acd.handle_presence(t0 + 2 * S, "D", false);
    assert_eq!((acd.logged_in("support"), acd.logged_in("sales")), (2, 0));
    // Nobody of "sales" is logged in: its caller is hung up at once (the queue's rule).
    drain(&mut acd);
    acd.handle_enqueue(t0 + 3 * S, 2, "sales", None);
    assert!(
        matches!(
            drain(&mut acd).as_slice(),
            [AcdOutput::Overflowed { call: 2, .. }]
        ),
        "an empty queue's caller is told at once"
    );
    assert_eq!(acd.logged_in("nowhere"), 0);
}
