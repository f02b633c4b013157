use super::*;

fn policy() -> RegistrarPolicy {
    RegistrarPolicy {
        min_expires: 60,
        max_expires: 3600,
        default_expires: 600,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max_failures: 3,
    }
}

fn register(agent: &str, uri: &str, expires: Option<u32>, cseq: u32) -> RegisterRequest {
    RegisterRequest {
        agent: agent.into(),
        call_id: "call-1".into(),
        cseq,
        expires_header: expires,
        contacts: vec![ContactRequest {
            uri: uri.into(),
            expires: None,
        }],
        wildcard: false,
        source: "127.0.0.1:5070".parse().unwrap(),
        transport: "udp".into(),
        path: vec![],
    }
}

fn drain(r: &mut Registrar) -> Vec<RegistrarOutput> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

#[test]
fn register_grants_and_caps_expiry_and_reports_online() {
    let t0 = Instant::now();
    let mut r = Registrar::new(policy());
    let out = r.handle_register(
        t0,
        register("1001", "sip:1001@127.0.0.1:5070", Some(7200), 1),
    );
    assert_eq!(
        out,
        RegisterOutcome::Ok(vec![("sip:1001@127.0.0.1:5070".into(), 3600)])
    );
    let events = drain(&mut r);
    assert!(events.contains(&RegistrarOutput::Online("1001".into())));
    assert!(r.is_online("1001"));
}

#[test]
fn too_brief_is_refused_with_min_expires() {
    let mut r = Registrar::new(policy());
    let out = r.handle_register(Instant::now(), register("1001", "sip:a@h", Some(10), 1));
    assert_eq!(out, RegisterOutcome::IntervalTooBrief(60));
    assert!(!r.is_online("1001"));
}

#[test]
fn multiple_contacts_then_unregister_one_then_wildcard() {
    let t0 = Instant::now();
    let mut r = Registrar::new(policy());
    r.handle_register(t0, register("1001", "sip:desk@h", Some(600), 1));
    let mut second = register("1001", "sip:soft@h", Some(300), 2);
    second.call_id = "call-2".into();
    let out = r.handle_register(t0, second);
    assert_eq!(
        out,
        RegisterOutcome::Ok(vec![("sip:desk@h".into(), 600), ("sip:soft@h".into(), 300)])
    );
    let out = r.handle_register(t0, register("1001", "sip:desk@h", Some(0), 3));
    assert_eq!(out, RegisterOutcome::Ok(vec![("sip:soft@h".into(), 300)]));
    drain(&mut r);
    let mut all = register("1001", "*", Some(0), 4);
    all.contacts.clear();
    all.wildcard = true;
    assert_eq!(r.handle_register(t0, all), RegisterOutcome::Ok(vec![]));
    assert!(drain(&mut r).contains(&RegistrarOutput::Offline("1001".into())));
}

#[test]
fn wildcard_without_expires_zero_is_bad() {
    let mut r = Registrar::new(policy());
    let mut all = register("1001", "*", Some(60), 1);
    all.contacts.clear();
    all.wildcard = true;
    assert!(matches!(
        r.handle_register(Instant::now(), all),
        RegisterOutcome::BadRequest(_)
    ));
}

#[test]
fn out_of_order_cseq_for_same_call_id_is_refused() {
    let t0 = Instant::now();
    let mut r = Registrar::new(policy());
    r.handle_register(t0, register("1001", "sip:a@h", None, 5));
    assert_eq!(
        r.handle_register(t0, register("1001", "sip:a@h", None, 4)),
        RegisterOutcome::OutOfOrder
    );
}

#[test]
fn binding_expires_on_simulated_time() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarPolicy {
        keepalive_interval: None,
        ..policy()
    });
    r.handle_register(t0, register("1001", "sip:a@h", Some(60), 1));
    drain(&mut r);
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    r.handle_timeout(t0 + Duration::from_secs(59));
    assert!(r.is_online("1001"));
    r.handle_timeout(t0 + Duration::from_secs(60));
    assert!(!r.is_online("1001"));
    assert!(drain(&mut r).contains(&RegistrarOutput::Offline("1001".into())));
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn keepalives_are_sent_and_three_failures_drop_the_contact() {
    let t0 = Instant::now();
    let mut r = Registrar::new(policy());
    r.handle_register(t0, register("1001", "sip:a@h", Some(3600), 1));
    drain(&mut r);
    let mut now = t0;
    for round in 0..3 {
        now = r.poll_timeout().unwrap();
        assert_eq!(now, t0 + Duration::from_secs(30 * (round + 1)));
        r.handle_timeout(now);
        let out = drain(&mut r);
        assert!(
            matches!(&out[..], [RegistrarOutput::SendKeepalive { uri, .. }] if uri == "sip:a@h")
        );
        assert!(r.is_online("1001"));
        // Nothing more is due until this keepalive's outcome is known (only the expiry remains).
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(3600)));
        r.handle_keepalive(now, "1001", "sip:a@h", false);
    }
    assert!(!r.is_online("1001"));
    assert!(drain(&mut r).contains(&RegistrarOutput::Offline("1001".into())));
    let _ = now;
}

#[test]
fn an_answered_keepalive_resets_failures() {
    let t0 = Instant::now();
    let mut r = Registrar::new(policy());
    r.handle_register(t0, register("1001", "sip:a@h", Some(3600), 1));
    for i in 0..10 {
        let now = t0 + Duration::from_secs(30 * (i + 1));
        r.handle_timeout(now);
        r.handle_keepalive(now, "1001", "sip:a@h", i % 3 != 2);
    }
    assert!(r.is_online("1001"));
}
